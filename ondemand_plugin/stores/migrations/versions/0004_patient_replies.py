"""Patient replies in the guarantor's history: ``patient_replies`` takes the place of ``replies``.

A reply now has an id (the history pages by occurred_at and id, as it does notifications), and
belongs to the guarantor of the notification it answers: the latest one the practice sent to the
address when the reply came. Every reply kept before is copied with the guarantor and notification
found so; one that answered no notification of its practice is kept with neither, and is in no
guarantor's history.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

from ondemand_plugin.stores.schema import ID_LENGTH, key, long_text, moment, practice

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# The tables this revision reads, as revisions 0001 and 0003 left them.
old_replies = sa.table(
    "replies",
    sa.column("seq"),
    sa.column("practice_id"),
    sa.column("channel"),
    sa.column("sender"),
    sa.column("address"),
    sa.column("text"),
    sa.column("occurred_at"),
)
notifications = sa.table(
    "notifications",
    sa.column("id"),
    sa.column("practice_id"),
    sa.column("guarantor_id"),
    sa.column("recipient"),
    sa.column("occurred_at"),
)


def upgrade() -> None:
    patient_replies = op.create_table(
        "patient_replies",
        sa.Column("id", key(ID_LENGTH), primary_key=True),
        practice(),
        sa.Column("guarantor_id", key(ID_LENGTH)),
        sa.Column("notification_id", key(ID_LENGTH, ordered=False)),
        sa.Column("channel", long_text(), nullable=False),
        sa.Column("sender", long_text(), nullable=False),
        sa.Column("address", long_text(), nullable=False),
        sa.Column("text", long_text(), nullable=False),
        sa.Column("occurred_at", moment(), nullable=False),
    )
    op.create_index(
        "patient_replies_history",
        "patient_replies",
        [
            "practice_id",
            "guarantor_id",
            sa.text("occurred_at DESC"),
            sa.text("id DESC"),
        ],
    )
    bind = op.get_bind()
    kept = bind.execute(sa.select(old_replies).order_by(old_replies.c.seq)).mappings().all()
    if kept:
        op.bulk_insert(patient_replies, [_with_guarantor(bind, dict(row)) for row in kept])
    op.drop_table("replies")


def _with_guarantor(bind: sa.Connection, reply: dict[str, object]) -> dict[str, object]:
    answered = bind.execute(
        sa.select(notifications.c.id, notifications.c.guarantor_id)
        .where(
            (notifications.c.practice_id == reply["practice_id"])
            & (notifications.c.recipient == reply["address"])
            & (notifications.c.occurred_at <= reply["occurred_at"])
        )
        .order_by(notifications.c.occurred_at.desc(), notifications.c.id.desc())
        .limit(1)
    ).first()
    del reply["seq"]
    reply["id"] = "rpl_" + secrets.token_hex(12)
    reply["notification_id"] = answered.id if answered else None
    reply["guarantor_id"] = answered.guarantor_id if answered else None
    return reply


def downgrade() -> None:
    raise NotImplementedError("The plugin's schema only moves forward.")
