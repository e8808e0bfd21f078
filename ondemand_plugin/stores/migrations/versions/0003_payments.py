"""Tracked pay links and payments: the notification's amount, link, opening, payments and request;
the payments table.

Added as 0001 adopts an earlier database: whatever is missing is created (0001 creates the tables
of ``schema.py`` as they are now, so a new database has them already).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ondemand_plugin.stores.schema import notifications, payments

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

NEW_COLUMNS = (
    "amount",
    "link_token_hash",
    "link_expires_at",
    "link_cancelled_by",
    "link_opened_at",
    "paid_at",
    "paid_cents",
    "request",
)


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    present = {column["name"] for column in inspector.get_columns("notifications")}
    missing = [name for name in NEW_COLUMNS if name not in present]
    if missing:
        with op.batch_alter_table("notifications") as batch:
            for name in missing:
                batch.add_column(notifications.c[name]._copy())
    for index in notifications.indexes:
        if index.name == "notifications_link":
            index.create(bind, checkfirst=True)
    if "payments" not in inspector.get_table_names():
        payments.create(bind)


def downgrade() -> None:
    raise NotImplementedError("The plugin's schema only moves forward.")
