"""Tracked pay links and payments: the notification's amount, link, opening, payments and request;
the payments table.

The columns and the table are frozen below as this revision made them (``schema.py`` describes the
newest shape). A database whose ``notifications`` already has some of them keeps them: only what is
missing is added.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from ondemand_plugin.stores.schema import ID_LENGTH, KEY_LENGTH, key, long_text, moment, practice

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def new_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("amount", long_text()),
        sa.Column("link_token_hash", key(KEY_LENGTH, ordered=False)),
        sa.Column("link_expires_at", moment()),
        sa.Column("link_cancelled_by", long_text()),
        sa.Column("link_opened_at", moment()),
        sa.Column("paid_at", moment()),
        sa.Column("paid_cents", sa.BigInteger()),
        sa.Column("request", long_text().with_variant(postgresql.JSON(), "postgresql")),
    ]


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    present = {column["name"] for column in inspector.get_columns("notifications")}
    missing = [column for column in new_columns() if column.name not in present]
    if missing:
        with op.batch_alter_table("notifications") as batch:
            for column in missing:
                batch.add_column(column)
    indexes = {index["name"] for index in inspector.get_indexes("notifications")}
    if "notifications_link" not in indexes:
        op.create_index("notifications_link", "notifications", ["link_token_hash"], unique=True)
    if "payments" not in inspector.get_table_names():
        op.create_table(
            "payments",
            practice(primary_key=True),
            sa.Column("reference", key(KEY_LENGTH), primary_key=True),
            sa.Column("guarantor_id", key(ID_LENGTH), nullable=False),
            sa.Column("notification_id", key(ID_LENGTH), nullable=False),
            sa.Column("amount_cents", sa.BigInteger(), nullable=False),
            sa.Column("paid_at", moment(), nullable=False),
        )


def downgrade() -> None:
    raise NotImplementedError("The plugin's schema only moves forward.")
