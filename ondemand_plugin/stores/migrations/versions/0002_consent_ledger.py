"""The consent ledger, and the indexes that pacing and the audit read.

``consent_changes`` keeps every change of a recipient's consent, forever. Pacing counts a
practice's recent sends to an address (``notifications_pacing``); the audit reads a practice's
sends over a span (``notifications_audit``).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ondemand_plugin.stores.schema import flag, long_text, moment, practice, sequence

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consent_changes",
        sequence(),
        practice(),
        sa.Column("mode", long_text(), nullable=False),
        sa.Column("address", long_text(), nullable=False),
        sa.Column("opted_out", flag(), nullable=False),
        sa.Column("source", long_text(), nullable=False),
        sa.Column("actor", long_text(), nullable=False),
        sa.Column("words", long_text()),
        sa.Column("sender", long_text()),
        sa.Column("changed_at", moment(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "consent_changes_practice", "consent_changes", ["practice_id", "changed_at", "seq"]
    )
    op.create_index(
        "notifications_pacing", "notifications", ["practice_id", "recipient", "occurred_at"]
    )
    op.create_index("notifications_audit", "notifications", ["practice_id", "occurred_at", "id"])


def downgrade() -> None:
    raise NotImplementedError("The plugin's schema only moves forward.")
