"""The tables, defined once for every backend (SQLAlchemy Core ``MetaData``).

Types differ per backend only where the database itself differs, and keep what each backend
stored before (a database of an earlier release is adopted as it is):

- Timestamps: ``timestamptz`` on PostgreSQL, ``DATETIME(6)`` in UTC on MariaDB/MySQL, and on
  SQLite fixed-width text (``TIMESTAMP_FORMAT``), whose text order is time order.
- Text that is a key or ordered: ``text COLLATE "C"`` on PostgreSQL and ``utf8mb4_bin`` on
  MariaDB, so that every backend orders it byte for byte alike. MariaDB cannot index TEXT without
  a prefix length, so indexed columns are ``VARCHAR(n)`` there: the lengths below are the longest
  value MariaDB keeps (a key is at most 3,072 bytes, 4 bytes a character).
- MariaDB has no partial indexes: there, as on SQLite, ``status`` leads the recovery indexes.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql

metadata = sa.MetaData()

ID_LENGTH = 100
KEY_LENGTH = 200
ADDRESS_LENGTH = 320
NAME_LENGTH = 64


def key(length: int, *, ordered: bool = True) -> sa.types.TypeEngine[str]:
    """Text that is (part of) a key: VARCHAR on MariaDB, text elsewhere."""
    on_postgresql = sa.Text(collation="C") if ordered else sa.Text()
    return (
        sa.Text()
        .with_variant(on_postgresql, "postgresql")
        .with_variant(mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_bin"), "mysql")
    )


def moment() -> sa.types.TypeEngine[Any]:
    return (
        sa.Text()
        .with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql")
        .with_variant(mysql.DATETIME(fsp=6), "mysql")
    )


def flag() -> sa.types.TypeEngine[Any]:
    return sa.Integer().with_variant(sa.Boolean(), "postgresql", "mysql")


def long_text() -> sa.types.TypeEngine[str]:
    return sa.Text().with_variant(mysql.MEDIUMTEXT(charset="utf8mb4"), "mysql")


def sequence() -> sa.Column[int]:
    """An ever-growing row number: SQLite's rowid (AUTOINCREMENT), an identity elsewhere."""
    return sa.Column(
        "seq",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        sa.Identity(always=True),
        primary_key=True,
    )


def practice(*, primary_key: bool = False) -> sa.Column[str]:
    """The practice a row belongs to: every table has it, and every read names it."""
    return sa.Column("practice_id", key(ID_LENGTH), primary_key=primary_key, nullable=False)


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
    sa.Column("amount", long_text()),
    sa.Column("link_token_hash", key(KEY_LENGTH, ordered=False)),
    sa.Column("link_expires_at", moment()),
    sa.Column("link_cancelled_by", long_text()),
    sa.Column("link_opened_at", moment()),
    sa.Column("paid_at", moment()),
    sa.Column("paid_cents", sa.BigInteger()),
    sa.Column("request", long_text().with_variant(postgresql.JSON(), "postgresql")),
)
_n = notifications.c
sa.Index("notifications_idempotency", _n.practice_id, _n.idempotency_key, unique=True)
sa.Index(
    "notifications_history", _n.practice_id, _n.guarantor_id, _n.occurred_at.desc(), _n.id.desc()
)
sa.Index("notifications_provider", _n.channel, _n.provider_message_id)
sa.Index("notifications_recipient", _n.recipient, _n.mode)
# Pacing counts a practice's recent sends to an address, and the audit and the monthly report
# read a practice's sends over a span in order: both are ranges read off these, with no sort.
sa.Index("notifications_pacing", _n.practice_id, _n.recipient, _n.occurred_at)
sa.Index("notifications_audit", _n.practice_id, _n.occurred_at, _n.id)
# A pay link is found by its token's hash.
sa.Index("notifications_link", _n.link_token_hash, unique=True)
# ``ddl_if`` takes a tuple of dialect names too, which its annotation does not say.
WITHOUT_PARTIAL_INDEXES: Any = ("sqlite", "mysql")
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

# A recipient's reply that was neither an opt-out, an opt-in nor HELP: kept for the practice's
# staff, in the history of the guarantor whose notification it answers (the latest the practice
# sent to that address). A reply kept before revision 0004 that answered none has no guarantor.
replies = sa.Table(
    "patient_replies",
    metadata,
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
_r = replies.c
sa.Index(
    "patient_replies_history",
    _r.practice_id,
    _r.guarantor_id,
    _r.occurred_at.desc(),
    _r.id.desc(),
)

# The consent ledger: every change of a recipient's consent, kept forever, never updated.
consent_changes = sa.Table(
    "consent_changes",
    metadata,
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
    sa.Index("consent_changes_practice", "practice_id", "changed_at", "seq"),
    sqlite_autoincrement=True,
)

payments = sa.Table(
    "payments",
    metadata,
    practice(primary_key=True),
    sa.Column("reference", key(KEY_LENGTH), primary_key=True),
    sa.Column("guarantor_id", key(ID_LENGTH), nullable=False),
    sa.Column("notification_id", key(ID_LENGTH), nullable=False),
    sa.Column("amount_cents", sa.BigInteger(), nullable=False),
    sa.Column("paid_at", moment(), nullable=False),
)
