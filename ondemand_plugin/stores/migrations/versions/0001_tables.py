"""The tables of the first Alembic release, and the adoption of an earlier database.

Releases before Alembic numbered their migrations in a one-row table ``schema_version`` (the
number applied, 1 to 5). Such a database is adopted: what its version lacks is created (tables,
the two columns of version 3, indexes) and every row is kept. ``schema_version`` stays, set to
``LAST_NUMBERED + 1``, so that a worker still running an earlier release refuses this database
("newer than this plugin's") instead of migrating it again.

A later revision that changes a table must freeze these tables here first (copy their
definitions into this file), since ``schema.py`` then describes the newer shape.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ondemand_plugin.stores.schema import metadata

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# The last migration number of the releases before Alembic.
LAST_NUMBERED = 5


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    existing = set(inspector.get_table_names())
    for table in metadata.sorted_tables:
        if table.name not in existing:
            table.create(bind)
            continue
        columns = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in columns:
                op.add_column(table.name, column._copy())
        for index in table.indexes:
            index.create(bind, checkfirst=True)
    if "schema_version" in existing:
        op.execute(
            sa.text("UPDATE schema_version SET version = :version").bindparams(
                version=LAST_NUMBERED + 1
            )
        )
    else:
        version = op.create_table(
            "schema_version", sa.Column("version", sa.Integer, nullable=False)
        )
        op.bulk_insert(version, [{"version": LAST_NUMBERED + 1}])


def downgrade() -> None:
    raise NotImplementedError("The plugin's schema only moves forward.")
