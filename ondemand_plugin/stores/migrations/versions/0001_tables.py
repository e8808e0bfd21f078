"""The tables of the first Alembic release, and the adoption of an earlier database.

Releases before Alembic numbered their migrations in a one-row table ``schema_version`` (the
number applied, 1 to 5). Such a database is adopted: what its version lacks is created (tables,
the two columns of version 3, indexes) and every row is kept. ``schema_version`` stays, set to
``LAST_NUMBERED + 1``, so that a worker still running an earlier release refuses this database
("newer than this plugin's") instead of migrating it again.

The tables are frozen below as this revision made them: ``schema.py`` describes the newest shape,
which later revisions reach. A later revision that changes a table does not rely on ``schema.py``
either, but says what it adds. The column types come from ``schema.py``'s helpers (how each
backend stores a key, a moment, a flag), which no revision changes.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from ondemand_plugin.stores.schema import (
    ADDRESS_LENGTH,
    ID_LENGTH,
    KEY_LENGTH,
    NAME_LENGTH,
    WITHOUT_PARTIAL_INDEXES,
    flag,
    key,
    long_text,
    moment,
    practice,
    sequence,
)

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# The last migration number of the releases before Alembic.
LAST_NUMBERED = 5


# The tables of this revision, as it made them.
metadata = sa.MetaData()

addon_changes = sa.Table(
    "addon_changes",
    metadata,
    sequence(),
    practice(),
    sa.Column("enabled", flag(), nullable=False),
    sa.Column("changed_by", long_text(), nullable=False),
    sa.Column("reason", long_text()),
    sa.Column("changed_at", moment(), nullable=False),
    sa.Index("addon_changes_practice", "practice_id", "seq"),
    sqlite_autoincrement=True,
)

addon_state = sa.Table(
    "addon_state",
    metadata,
    practice(primary_key=True),
    sa.Column("enabled", flag(), nullable=False),
)

templates = sa.Table(
    "templates",
    metadata,
    practice(primary_key=True),
    sa.Column("id", key(ID_LENGTH), primary_key=True),
    sa.Column("label", key(KEY_LENGTH), nullable=False),
    sa.Column("mode", long_text(), nullable=False),
    sa.Column("active", flag(), nullable=False),
    sa.Column("sender_email", long_text()),
    sa.Column("subject", long_text()),
    sa.Column("body", long_text(), nullable=False),
    sa.Column("updated_at", moment(), nullable=False),
)

notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("id", key(ID_LENGTH), primary_key=True),
    practice(),
    sa.Column("guarantor_id", key(ID_LENGTH), nullable=False),
    sa.Column("idempotency_key", key(KEY_LENGTH), nullable=False),
    sa.Column("request_hash", long_text(), nullable=False),
    sa.Column("occurred_at", moment(), nullable=False),
    sa.Column("mode", key(NAME_LENGTH, ordered=False), nullable=False),
    sa.Column("recipient", key(ADDRESS_LENGTH, ordered=False), nullable=False),
    sa.Column("sent_to_type", long_text(), nullable=False),
    sa.Column("sent_to_id", long_text(), nullable=False),
    sa.Column("sent_to_name", long_text(), nullable=False),
    sa.Column("sent_by_id", long_text(), nullable=False),
    sa.Column("sent_by_name", long_text(), nullable=False),
    sa.Column("status", key(NAME_LENGTH, ordered=False), nullable=False),
    sa.Column("status_changed_at", moment(), nullable=False),
    sa.Column("balance", long_text(), nullable=False),
    sa.Column("payment_allowed", flag(), nullable=False),
    sa.Column("template_label", long_text()),
    sa.Column("channel", key(NAME_LENGTH, ordered=False)),
    sa.Column("provider_message_id", key(KEY_LENGTH, ordered=False)),
    sa.Column("detail", long_text(), nullable=False),
    sa.Column("result", long_text().with_variant(postgresql.JSON(), "postgresql")),
    sa.Column(
        "route_channels", long_text().with_variant(postgresql.ARRAY(sa.Text()), "postgresql")
    ),
    sa.Column("looked_up_at", moment()),
)
_n = notifications.c
sa.Index("notifications_idempotency", _n.practice_id, _n.idempotency_key, unique=True)
sa.Index(
    "notifications_history", _n.practice_id, _n.guarantor_id, _n.occurred_at.desc(), _n.id.desc()
)
sa.Index("notifications_provider", _n.channel, _n.provider_message_id)
sa.Index("notifications_recipient", _n.recipient, _n.mode)
# Recovery reads only the few unsettled rows: PostgreSQL indexes just those (partial indexes);
# the others, which have none, lead with the status.
sa.Index(
    "notifications_unsettled",
    _n.occurred_at,
    _n.id,
    postgresql_where=_n.status.in_(["sending", "unknown"]),
).ddl_if(dialect="postgresql")
sa.Index("notifications_unsettled", _n.status, _n.occurred_at).ddl_if(
    dialect=WITHOUT_PARTIAL_INDEXES
)
sa.Index(
    "notifications_lookups",
    _n.looked_up_at.nulls_first(),
    _n.occurred_at,
    _n.id,
    postgresql_where=_n.status == "unknown",
).ddl_if(dialect="postgresql")
sa.Index("notifications_lookups", _n.status, _n.looked_up_at, _n.occurred_at, _n.id).ddl_if(
    dialect=WITHOUT_PARTIAL_INDEXES
)

opt_outs = sa.Table(
    "opt_outs",
    metadata,
    practice(primary_key=True),
    sa.Column("mode", key(NAME_LENGTH, ordered=False), primary_key=True),
    sa.Column("address", key(ADDRESS_LENGTH, ordered=False), primary_key=True),
    sa.Column("opted_out", flag(), nullable=False),
    sa.Column("source", long_text(), nullable=False),
    sa.Column("changed_at", moment(), nullable=False),
)

inbound_messages = sa.Table(
    "inbound_messages",
    metadata,
    sa.Column("channel", key(NAME_LENGTH), primary_key=True),
    sa.Column("message_id", key(KEY_LENGTH), primary_key=True),
    sa.Column("handled_at", moment(), nullable=False),
)

replies = sa.Table(
    "replies",
    metadata,
    sequence(),
    practice(),
    sa.Column("channel", long_text(), nullable=False),
    sa.Column("sender", long_text(), nullable=False),
    sa.Column("address", long_text(), nullable=False),
    sa.Column("text", long_text(), nullable=False),
    sa.Column("occurred_at", moment(), nullable=False),
    sa.Index("replies_practice", "practice_id", "occurred_at"),
    sqlite_autoincrement=True,
)


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
