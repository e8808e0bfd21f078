"""The embedded default store: one SQLite file in WAL mode, one connection per thread."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs

from hookspecs.types import Template
from ondemand_plugin.clock import format_timestamp, parse_timestamp, utc_now
from ondemand_plugin.errors import ConfigError, StoreUnavailable
from ondemand_plugin.rules.statuses import statuses_below
from ondemand_plugin.stores.base import (
    NOTIFICATION_COLUMNS,
    AddonChange,
    Completion,
    NotificationRecord,
    OptOut,
    Payment,
    Reply,
)

# Applied in order, each once; the number of those applied is the schema version.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE addon_changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        practice_id TEXT NOT NULL,
        enabled INTEGER NOT NULL,
        changed_by TEXT NOT NULL,
        reason TEXT,
        changed_at TEXT NOT NULL
    );
    CREATE INDEX addon_changes_practice ON addon_changes (practice_id, seq);
    CREATE TABLE addon_state (
        practice_id TEXT PRIMARY KEY,
        enabled INTEGER NOT NULL
    );
    CREATE TABLE templates (
        practice_id TEXT NOT NULL,
        id TEXT NOT NULL,
        label TEXT NOT NULL,
        mode TEXT NOT NULL,
        active INTEGER NOT NULL,
        sender_email TEXT,
        subject TEXT,
        body TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (practice_id, id)
    );
    CREATE TABLE notifications (
        id TEXT PRIMARY KEY,
        practice_id TEXT NOT NULL,
        guarantor_id TEXT NOT NULL,
        idempotency_key TEXT NOT NULL,
        request_hash TEXT NOT NULL,
        occurred_at TEXT NOT NULL,
        mode TEXT NOT NULL,
        recipient TEXT NOT NULL,
        sent_to_type TEXT NOT NULL,
        sent_to_id TEXT NOT NULL,
        sent_to_name TEXT NOT NULL,
        sent_by_id TEXT NOT NULL,
        sent_by_name TEXT NOT NULL,
        status TEXT NOT NULL,
        status_changed_at TEXT NOT NULL,
        balance TEXT NOT NULL,
        payment_allowed INTEGER NOT NULL,
        template_label TEXT,
        channel TEXT,
        provider_message_id TEXT,
        detail TEXT NOT NULL,
        result TEXT
    );
    CREATE UNIQUE INDEX notifications_idempotency ON notifications (practice_id, idempotency_key);
    CREATE INDEX notifications_history
        ON notifications (practice_id, guarantor_id, occurred_at DESC, id DESC);
    """,
    """
    CREATE INDEX notifications_provider ON notifications (channel, provider_message_id);
    CREATE INDEX notifications_recipient ON notifications (recipient, mode);
    CREATE INDEX notifications_unsettled ON notifications (status, occurred_at);
    CREATE TABLE opt_outs (
        practice_id TEXT NOT NULL,
        mode TEXT NOT NULL,
        address TEXT NOT NULL,
        opted_out INTEGER NOT NULL,
        source TEXT NOT NULL,
        changed_at TEXT NOT NULL,
        PRIMARY KEY (practice_id, mode, address)
    );
    """,
    """
    ALTER TABLE notifications ADD COLUMN route_channels TEXT;
    ALTER TABLE notifications ADD COLUMN looked_up_at TEXT;
    CREATE INDEX notifications_lookups ON notifications (status, looked_up_at, occurred_at, id);
    """,
    """
    CREATE TABLE inbound_messages (
        channel TEXT NOT NULL,
        message_id TEXT NOT NULL,
        handled_at TEXT NOT NULL,
        PRIMARY KEY (channel, message_id)
    );
    """,
    """
    CREATE TABLE replies (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        practice_id TEXT NOT NULL,
        channel TEXT NOT NULL,
        sender TEXT NOT NULL,
        address TEXT NOT NULL,
        text TEXT NOT NULL,
        occurred_at TEXT NOT NULL
    );
    CREATE INDEX replies_practice ON replies (practice_id, occurred_at);
    """,
    """
    ALTER TABLE notifications ADD COLUMN amount TEXT;
    ALTER TABLE notifications ADD COLUMN link_token_hash TEXT;
    ALTER TABLE notifications ADD COLUMN link_expires_at TEXT;
    ALTER TABLE notifications ADD COLUMN link_cancelled_by TEXT;
    ALTER TABLE notifications ADD COLUMN link_opened_at TEXT;
    ALTER TABLE notifications ADD COLUMN paid_at TEXT;
    ALTER TABLE notifications ADD COLUMN paid_cents INTEGER;
    ALTER TABLE notifications ADD COLUMN request TEXT;
    CREATE UNIQUE INDEX notifications_link ON notifications (link_token_hash);
    CREATE INDEX notifications_practice ON notifications (practice_id, occurred_at);
    CREATE TABLE payments (
        practice_id TEXT NOT NULL,
        reference TEXT NOT NULL,
        guarantor_id TEXT NOT NULL,
        notification_id TEXT NOT NULL,
        amount_cents INTEGER NOT NULL,
        paid_at TEXT NOT NULL,
        PRIMARY KEY (practice_id, reference)
    );
    """,
)

_NOTIFICATION_COLUMNS = ", ".join(NOTIFICATION_COLUMNS)
# The record's optional moments, kept as timestamp text.
_OPTIONAL_MOMENTS = ("looked_up_at", "link_expires_at", "link_opened_at", "paid_at")
_NOTIFICATION_VALUES = ", ".join(["?"] * len(NOTIFICATION_COLUMNS))

# How long a statement waits for another process's write lock before it is refused.
LOCK_TIMEOUT_SECONDS = 30.0
# The database cannot be used just now (its file or folder gone, the disk failing or full, a lock
# held past the timeout), as against a mistake in a statement: the first are store_unavailable.
_UNAVAILABLE = {
    sqlite3.SQLITE_BUSY,
    sqlite3.SQLITE_LOCKED,
    sqlite3.SQLITE_READONLY,
    sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_FULL,
    sqlite3.SQLITE_CANTOPEN,
}


class _Connection(sqlite3.Connection):
    """A connection whose statements say ``store_unavailable`` when the database cannot be used,
    as every backend's do."""

    path: Path

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        try:
            return super().execute(sql, parameters)
        except sqlite3.Error as error:
            if _is_unavailable(error):
                raise _refusal(error, self.path) from error
            raise


def _is_unavailable(error: sqlite3.Error) -> bool:
    # The primary result code is the low byte (SQLITE_IOERR_WRITE is an SQLITE_IOERR); errors the
    # sqlite3 module raises itself carry none.
    code = getattr(error, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in _UNAVAILABLE


def _refusal(error: sqlite3.Error, path: Path) -> StoreUnavailable:
    return StoreUnavailable(f"SQLite at {path}", str(error))


class SQLiteStore:
    """``Store`` on a SQLite file. Safe to share between threads and processes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connections: dict[threading.Thread, sqlite3.Connection] = {}
        self._connections_lock = threading.Lock()
        self._migrate()

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    # Connections and transactions

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            try:
                connection = sqlite3.connect(
                    self.path,
                    timeout=LOCK_TIMEOUT_SECONDS,
                    isolation_level=None,
                    check_same_thread=False,
                    factory=_Connection,
                )
            except sqlite3.Error as error:
                if _is_unavailable(error):
                    raise _refusal(error, self.path) from error
                raise
            connection.path = self.path
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA foreign_keys=ON")
            self._local.connection = connection
            with self._connections_lock:
                self._close_connections_of_ended_threads()
                self._connections[threading.current_thread()] = connection
        return connection

    def _close_connections_of_ended_threads(self) -> None:
        """Hosts run requests on pools whose threads come and go: a connection per thread that
        ever ran would pile up open files."""
        for thread in [thread for thread in self._connections if not thread.is_alive()]:
            self._connections.pop(thread).close()

    def open_connections(self) -> int:
        with self._connections_lock:
            return len(self._connections)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def _migrate(self) -> None:
        with self._transaction() as connection:
            connection.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER)")
            row = connection.execute("SELECT version FROM schema_version").fetchone()
            applied = row["version"] if row else 0
            if applied > len(MIGRATIONS):
                raise ConfigError(
                    f"The database {self.path} has schema version {applied}, newer than this "
                    f"plugin's {len(MIGRATIONS)}. Upgrade the plugin on this worker.",
                    field="database_url",
                )
            for script in MIGRATIONS[applied:]:
                for statement in script.split(";"):
                    if statement.strip():
                        connection.execute(statement)
            if row is None:
                connection.execute("INSERT INTO schema_version VALUES (?)", (len(MIGRATIONS),))
            else:
                connection.execute("UPDATE schema_version SET version = ?", (len(MIGRATIONS),))

    def schema_version(self) -> int:
        row = self._connection().execute("SELECT version FROM schema_version").fetchone()
        return int(row["version"])

    def close(self) -> None:
        with self._connections_lock:
            for connection in self._connections.values():
                connection.close()
            self._connections.clear()
        self._local = threading.local()

    # The add-on switch

    def enabled_practices(self) -> frozenset[str]:
        rows = self._connection().execute("SELECT practice_id FROM addon_state WHERE enabled = 1")
        return frozenset(row["practice_id"] for row in rows)

    def record_addon_change(self, change: AddonChange) -> None:
        with self._transaction() as connection:
            connection.execute(
                "INSERT INTO addon_changes (practice_id, enabled, changed_by, reason, changed_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    change.practice_id,
                    int(change.enabled),
                    change.changed_by,
                    change.reason,
                    format_timestamp(change.changed_at),
                ),
            )
            connection.execute(
                "INSERT INTO addon_state (practice_id, enabled) VALUES (?, ?) "
                "ON CONFLICT (practice_id) DO UPDATE SET enabled = excluded.enabled",
                (change.practice_id, int(change.enabled)),
            )

    def addon_log(self, practice_id: str) -> list[AddonChange]:
        rows = self._connection().execute(
            "SELECT * FROM addon_changes WHERE practice_id = ? ORDER BY seq", (practice_id,)
        )
        return [
            AddonChange(
                practice_id=row["practice_id"],
                enabled=bool(row["enabled"]),
                changed_by=row["changed_by"],
                reason=row["reason"],
                changed_at=parse_timestamp(row["changed_at"]),
            )
            for row in rows
        ]

    # Templates

    def list_templates(self, practice_id: str) -> list[Template]:
        rows = self._connection().execute(
            "SELECT * FROM templates WHERE practice_id = ? ORDER BY label, id", (practice_id,)
        )
        return [_template(row) for row in rows]

    def get_template(self, practice_id: str, template_id: str) -> Template | None:
        row = (
            self._connection()
            .execute(
                "SELECT * FROM templates WHERE practice_id = ? AND id = ?",
                (practice_id, template_id),
            )
            .fetchone()
        )
        return _template(row) if row else None

    def save_template(self, practice_id: str, template: Template) -> None:
        with self._transaction() as connection:
            connection.execute(
                "INSERT INTO templates (practice_id, id, label, mode, active, sender_email, "
                "subject, body, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (practice_id, id) DO UPDATE SET label = excluded.label, "
                "mode = excluded.mode, active = excluded.active, "
                "sender_email = excluded.sender_email, subject = excluded.subject, "
                "body = excluded.body, updated_at = excluded.updated_at",
                (
                    practice_id,
                    template.id,
                    template.label,
                    template.mode,
                    int(template.active),
                    template.sender_email,
                    template.subject,
                    template.body,
                    format_timestamp(utc_now()),
                ),
            )

    def delete_template(self, practice_id: str, template_id: str) -> bool:
        with self._transaction() as connection:
            cursor = connection.execute(
                "DELETE FROM templates WHERE practice_id = ? AND id = ?",
                (practice_id, template_id),
            )
        return cursor.rowcount > 0

    # Notifications

    def claim_notification(self, record: NotificationRecord) -> NotificationRecord | None:
        with self._transaction() as connection:
            cursor = connection.execute(
                f"INSERT INTO notifications ({_NOTIFICATION_COLUMNS}) "
                f"VALUES ({_NOTIFICATION_VALUES}) "
                "ON CONFLICT (practice_id, idempotency_key) DO NOTHING",
                _notification_row(record),
            )
            if cursor.rowcount == 1:
                return None
            row = connection.execute(
                f"SELECT {_NOTIFICATION_COLUMNS} FROM notifications "
                "WHERE practice_id = ? AND idempotency_key = ?",
                (record.practice_id, record.idempotency_key),
            ).fetchone()
        return _notification(row)

    def release_claim(self, practice_id: str, notification_id: str) -> bool:
        with self._transaction() as connection:
            cursor = connection.execute(
                "DELETE FROM notifications WHERE practice_id = ? AND id = ? AND status = 'sending'",
                (practice_id, notification_id),
            )
        return cursor.rowcount == 1

    def complete_notification(
        self, practice_id: str, notification_id: str, completion: Completion
    ) -> None:
        lower = statuses_below(completion.status)
        behind = f"status IN ({', '.join('?' for _ in lower)})"
        with self._transaction() as connection:
            connection.execute(
                f"UPDATE notifications SET status = CASE WHEN {behind} THEN ? ELSE status END, "
                f"status_changed_at = CASE WHEN {behind} THEN ? ELSE status_changed_at END, "
                f"detail = CASE WHEN {behind} THEN ? ELSE detail END, "
                "channel = ?, provider_message_id = ?, result = ? "
                "WHERE practice_id = ? AND id = ?",
                (
                    *lower,
                    completion.status,
                    *lower,
                    format_timestamp(utc_now()),
                    *lower,
                    completion.detail,
                    completion.channel,
                    completion.provider_message_id,
                    json.dumps(completion.result),
                    practice_id,
                    notification_id,
                ),
            )

    def notification_by_key(
        self, practice_id: str, idempotency_key: str
    ) -> NotificationRecord | None:
        row = (
            self._connection()
            .execute(
                f"SELECT {_NOTIFICATION_COLUMNS} FROM notifications "
                "WHERE practice_id = ? AND idempotency_key = ?",
                (practice_id, idempotency_key),
            )
            .fetchone()
        )
        return _notification(row) if row else None

    def notification_by_id(
        self, practice_id: str, notification_id: str
    ) -> NotificationRecord | None:
        row = (
            self._connection()
            .execute(
                f"SELECT {_NOTIFICATION_COLUMNS} FROM notifications "
                "WHERE practice_id = ? AND id = ?",
                (practice_id, notification_id),
            )
            .fetchone()
        )
        return _notification(row) if row else None

    def notification_by_provider_id(
        self, channel: str, provider_message_id: str
    ) -> NotificationRecord | None:
        row = (
            self._connection()
            .execute(
                f"SELECT {_NOTIFICATION_COLUMNS} FROM notifications "
                "WHERE channel = ? AND provider_message_id = ?",
                (channel, provider_message_id),
            )
            .fetchone()
        )
        return _notification(row) if row else None

    def advance_status(
        self, practice_id: str, notification_id: str, status: str, detail: str
    ) -> bool:
        lower = statuses_below(status)
        marks = ", ".join("?" for _ in lower)
        with self._transaction() as connection:
            cursor = connection.execute(
                "UPDATE notifications SET status = ?, status_changed_at = ?, detail = ? "
                f"WHERE practice_id = ? AND id = ? AND status IN ({marks})",
                (status, format_timestamp(utc_now()), detail, practice_id, notification_id, *lower),
            )
        return cursor.rowcount == 1

    def unsettled_notifications(
        self, occurred_before: datetime, limit: int
    ) -> list[NotificationRecord]:
        rows = self._connection().execute(
            f"SELECT {_NOTIFICATION_COLUMNS} FROM notifications "
            "WHERE status IN ('sending', 'unknown') AND occurred_at < ? "
            "ORDER BY occurred_at, id LIMIT ?",
            (format_timestamp(occurred_before), limit),
        )
        return [_notification(row) for row in rows]

    def sending_notifications(
        self, occurred_before: datetime, limit: int
    ) -> list[NotificationRecord]:
        rows = self._connection().execute(
            f"SELECT {_NOTIFICATION_COLUMNS} FROM notifications "
            "WHERE status = 'sending' AND occurred_at < ? ORDER BY occurred_at, id LIMIT ?",
            (format_timestamp(occurred_before), limit),
        )
        return [_notification(row) for row in rows]

    def unknown_notifications(
        self, occurred_before: datetime, limit: int
    ) -> list[NotificationRecord]:
        rows = self._connection().execute(
            f"SELECT {_NOTIFICATION_COLUMNS} FROM notifications "
            "WHERE status = 'unknown' AND occurred_at < ? "
            "ORDER BY looked_up_at NULLS FIRST, occurred_at, id LIMIT ?",
            (format_timestamp(occurred_before), limit),
        )
        return [_notification(row) for row in rows]

    def record_lookup(self, practice_id: str, notification_id: str, detail: str) -> bool:
        with self._transaction() as connection:
            cursor = connection.execute(
                "UPDATE notifications SET detail = ?, looked_up_at = ? "
                "WHERE practice_id = ? AND id = ? AND status = 'unknown'",
                (detail, format_timestamp(utc_now()), practice_id, notification_id),
            )
        return cursor.rowcount == 1

    def practices_that_notified(self, mode: str, address: str) -> list[str]:
        rows = self._connection().execute(
            "SELECT DISTINCT practice_id FROM notifications "
            "WHERE recipient = ? AND mode = ? ORDER BY practice_id",
            (address, mode),
        )
        return [row["practice_id"] for row in rows]

    def set_opt_out(self, opt_out: OptOut) -> None:
        with self._transaction() as connection:
            connection.execute(
                "INSERT INTO opt_outs (practice_id, mode, address, opted_out, source, changed_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (practice_id, mode, address) DO UPDATE SET "
                "opted_out = excluded.opted_out, source = excluded.source, "
                "changed_at = excluded.changed_at",
                (
                    opt_out.practice_id,
                    opt_out.mode,
                    opt_out.address,
                    int(opt_out.opted_out),
                    opt_out.source,
                    format_timestamp(opt_out.changed_at),
                ),
            )

    def is_opted_out(self, practice_id: str, mode: str, address: str) -> bool:
        row = (
            self._connection()
            .execute(
                "SELECT opted_out FROM opt_outs WHERE practice_id = ? AND mode = ? AND address = ?",
                (practice_id, mode, address),
            )
            .fetchone()
        )
        return bool(row and row["opted_out"])

    def inbound_message_seen(self, channel: str, message_id: str) -> bool:
        row = (
            self._connection()
            .execute(
                "SELECT 1 FROM inbound_messages WHERE channel = ? AND message_id = ?",
                (channel, message_id),
            )
            .fetchone()
        )
        return row is not None

    def record_inbound_message(self, channel: str, message_id: str, handled_at: datetime) -> None:
        with self._transaction() as connection:
            connection.execute(
                "INSERT INTO inbound_messages (channel, message_id, handled_at) VALUES (?, ?, ?) "
                "ON CONFLICT (channel, message_id) DO NOTHING",
                (channel, message_id, format_timestamp(handled_at)),
            )

    def record_reply(self, reply: Reply) -> None:
        with self._transaction() as connection:
            connection.execute(
                "INSERT INTO replies (practice_id, channel, sender, address, text, occurred_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    reply.practice_id,
                    reply.channel,
                    reply.sender,
                    reply.address,
                    reply.text,
                    format_timestamp(reply.occurred_at),
                ),
            )

    def replies(self, practice_id: str, limit: int) -> list[Reply]:
        rows = self._connection().execute(
            "SELECT practice_id, channel, sender, address, text, occurred_at FROM replies "
            "WHERE practice_id = ? ORDER BY occurred_at DESC, seq DESC LIMIT ?",
            (practice_id, limit),
        )
        return [
            Reply(**{**dict(row), "occurred_at": parse_timestamp(row["occurred_at"])})
            for row in rows
        ]

    def notification_by_link(self, token_hash: str) -> NotificationRecord | None:
        row = (
            self._connection()
            .execute(
                f"SELECT {_NOTIFICATION_COLUMNS} FROM notifications WHERE link_token_hash = ?",
                (token_hash,),
            )
            .fetchone()
        )
        return _notification(row) if row else None

    def record_link_opened(
        self, practice_id: str, notification_id: str, opened_at: datetime
    ) -> bool:
        with self._transaction() as connection:
            cursor = connection.execute(
                "UPDATE notifications SET link_opened_at = ? "
                "WHERE practice_id = ? AND id = ? AND link_opened_at IS NULL",
                (format_timestamp(opened_at), practice_id, notification_id),
            )
        return cursor.rowcount == 1

    def cancel_link(
        self, practice_id: str, notification_id: str, cancelled_by: str, at: datetime
    ) -> bool:
        moment = format_timestamp(at)
        with self._transaction() as connection:
            cursor = connection.execute(
                "UPDATE notifications SET link_expires_at = ?, link_cancelled_by = ? "
                "WHERE practice_id = ? AND id = ? AND link_expires_at > ?",
                (moment, cancelled_by, practice_id, notification_id, moment),
            )
        return cursor.rowcount == 1

    def payment_target(
        self, practice_id: str, guarantor_id: str, now: datetime
    ) -> NotificationRecord | None:
        row = (
            self._connection()
            .execute(
                f"SELECT {_NOTIFICATION_COLUMNS} FROM notifications "
                "WHERE practice_id = ? AND guarantor_id = ? "
                "AND (link_opened_at IS NOT NULL OR link_expires_at > ?) "
                "ORDER BY occurred_at DESC, id DESC LIMIT 1",
                (practice_id, guarantor_id, format_timestamp(now)),
            )
            .fetchone()
        )
        return _notification(row) if row else None

    def record_payment(self, payment: Payment) -> bool:
        paid_at = format_timestamp(payment.paid_at)
        with self._transaction() as connection:
            cursor = connection.execute(
                "INSERT INTO payments (practice_id, reference, guarantor_id, notification_id, "
                "amount_cents, paid_at) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (practice_id, reference) DO NOTHING",
                (
                    payment.practice_id,
                    payment.reference,
                    payment.guarantor_id,
                    payment.notification_id,
                    payment.amount_cents,
                    paid_at,
                ),
            )
            if cursor.rowcount == 0:
                return False
            connection.execute(
                "UPDATE notifications SET paid_cents = COALESCE(paid_cents, 0) + ?, paid_at = "
                "CASE WHEN paid_at IS NULL OR paid_at > ? THEN ? ELSE paid_at END "
                "WHERE practice_id = ? AND id = ?",
                (
                    payment.amount_cents,
                    paid_at,
                    paid_at,
                    payment.practice_id,
                    payment.notification_id,
                ),
            )
        return True

    def notifications_between(
        self, practice_id: str, start: datetime, end: datetime
    ) -> list[NotificationRecord]:
        rows = self._connection().execute(
            f"SELECT {_NOTIFICATION_COLUMNS} FROM notifications "
            "WHERE practice_id = ? AND occurred_at >= ? AND occurred_at < ? "
            "ORDER BY occurred_at, id",
            (practice_id, format_timestamp(start), format_timestamp(end)),
        )
        return [_notification(row) for row in rows]

    def history(
        self,
        practice_id: str,
        guarantor_id: str,
        before: tuple[str, str] | None,
        limit: int,
    ) -> list[NotificationRecord]:
        query = (
            f"SELECT {_NOTIFICATION_COLUMNS} FROM notifications "
            "WHERE practice_id = ? AND guarantor_id = ?"
        )
        parameters: list[Any] = [practice_id, guarantor_id]
        if before is not None:
            query += " AND (occurred_at, id) < (?, ?)"
            parameters.extend(before)
        query += " ORDER BY occurred_at DESC, id DESC LIMIT ?"
        parameters.append(limit)
        rows = self._connection().execute(query, parameters)
        return [_notification(row) for row in rows]


def _template(row: sqlite3.Row) -> Template:
    return Template(
        id=row["id"],
        label=row["label"],
        mode=row["mode"],
        active=bool(row["active"]),
        sender_email=row["sender_email"],
        subject=row["subject"],
        body=row["body"],
    )


def _notification_row(record: NotificationRecord) -> tuple[Any, ...]:
    values = attrs.asdict(record, recurse=False)
    values.update(
        occurred_at=format_timestamp(record.occurred_at),
        status_changed_at=format_timestamp(record.status_changed_at),
        payment_allowed=int(record.payment_allowed),
        result=json.dumps(record.result) if record.result is not None else None,
        route_channels=(
            json.dumps(list(record.route_channels)) if record.route_channels is not None else None
        ),
    )
    values["request"] = json.dumps(record.request) if record.request is not None else None
    for column in _OPTIONAL_MOMENTS:
        moment = getattr(record, column)
        values[column] = format_timestamp(moment) if moment is not None else None
    return tuple(values[column] for column in NOTIFICATION_COLUMNS)


def _notification(row: sqlite3.Row) -> NotificationRecord:
    values = {column: row[column] for column in NOTIFICATION_COLUMNS}
    values.update(
        occurred_at=parse_timestamp(row["occurred_at"]),
        status_changed_at=parse_timestamp(row["status_changed_at"]),
        payment_allowed=bool(row["payment_allowed"]),
        result=json.loads(row["result"]) if row["result"] else None,
        route_channels=(
            tuple(json.loads(row["route_channels"])) if row["route_channels"] is not None else None
        ),
    )
    values["request"] = json.loads(row["request"]) if row["request"] else None
    for column in _OPTIONAL_MOMENTS:
        values[column] = parse_timestamp(row[column]) if row[column] else None
    return NotificationRecord(**values)
