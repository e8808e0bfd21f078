"""The shared store for many workers on many machines: PostgreSQL through a connection pool.

Same semantics as the SQLite store: the database itself enforces the idempotency key
(``INSERT ... ON CONFLICT DO NOTHING``), statuses move forward in one ``UPDATE``, and history is
read newest first through one index. Timestamps are ``timestamptz`` (microseconds, like the
SQLite text); text that is ordered or compared as a key uses the "C" collation so that every
backend orders it byte for byte alike.
"""

from __future__ import annotations

import select
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import attrs
import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Json
from psycopg_pool import ConnectionPool, PoolTimeout

from hookspecs.types import Template
from ondemand_plugin.clock import parse_timestamp, utc_now
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
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        practice_id text COLLATE "C" NOT NULL,
        enabled boolean NOT NULL,
        changed_by text NOT NULL,
        reason text,
        changed_at timestamptz NOT NULL
    );
    CREATE INDEX addon_changes_practice ON addon_changes (practice_id, seq);
    CREATE TABLE addon_state (
        practice_id text COLLATE "C" PRIMARY KEY,
        enabled boolean NOT NULL
    );
    CREATE TABLE templates (
        practice_id text COLLATE "C" NOT NULL,
        id text COLLATE "C" NOT NULL,
        label text COLLATE "C" NOT NULL,
        mode text NOT NULL,
        active boolean NOT NULL,
        sender_email text,
        subject text,
        body text NOT NULL,
        updated_at timestamptz NOT NULL,
        PRIMARY KEY (practice_id, id)
    );
    CREATE TABLE notifications (
        id text COLLATE "C" PRIMARY KEY,
        practice_id text COLLATE "C" NOT NULL,
        guarantor_id text COLLATE "C" NOT NULL,
        idempotency_key text COLLATE "C" NOT NULL,
        request_hash text NOT NULL,
        occurred_at timestamptz NOT NULL,
        mode text NOT NULL,
        recipient text NOT NULL,
        sent_to_type text NOT NULL,
        sent_to_id text NOT NULL,
        sent_to_name text NOT NULL,
        sent_by_id text NOT NULL,
        sent_by_name text NOT NULL,
        status text NOT NULL,
        status_changed_at timestamptz NOT NULL,
        balance text NOT NULL,
        payment_allowed boolean NOT NULL,
        template_label text,
        channel text,
        provider_message_id text,
        detail text NOT NULL,
        result json
    );
    CREATE UNIQUE INDEX notifications_idempotency ON notifications (practice_id, idempotency_key);
    CREATE INDEX notifications_history
        ON notifications (practice_id, guarantor_id, occurred_at DESC, id DESC);
    """,
    """
    CREATE INDEX notifications_provider ON notifications (channel, provider_message_id);
    CREATE INDEX notifications_recipient ON notifications (recipient, mode);
    CREATE INDEX notifications_unsettled ON notifications (occurred_at, id)
        WHERE status IN ('sending', 'unknown');
    CREATE TABLE opt_outs (
        practice_id text COLLATE "C" NOT NULL,
        mode text NOT NULL,
        address text NOT NULL,
        opted_out boolean NOT NULL,
        source text NOT NULL,
        changed_at timestamptz NOT NULL,
        PRIMARY KEY (practice_id, mode, address)
    );
    """,
    """
    ALTER TABLE notifications ADD COLUMN route_channels text[], ADD COLUMN looked_up_at timestamptz;
    CREATE INDEX notifications_lookups ON notifications (looked_up_at NULLS FIRST, occurred_at, id)
        WHERE status = 'unknown';
    """,
    """
    CREATE TABLE inbound_messages (
        channel text COLLATE "C" NOT NULL,
        message_id text COLLATE "C" NOT NULL,
        handled_at timestamptz NOT NULL,
        PRIMARY KEY (channel, message_id)
    );
    """,
    """
    CREATE TABLE replies (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        practice_id text COLLATE "C" NOT NULL,
        channel text NOT NULL,
        sender text NOT NULL,
        address text NOT NULL,
        text text NOT NULL,
        occurred_at timestamptz NOT NULL
    );
    CREATE INDEX replies_practice ON replies (practice_id, occurred_at);
    """,
    """
    ALTER TABLE notifications ADD COLUMN amount text, ADD COLUMN link_token_hash text COLLATE "C",
        ADD COLUMN link_expires_at timestamptz, ADD COLUMN link_cancelled_by text,
        ADD COLUMN link_opened_at timestamptz, ADD COLUMN paid_at timestamptz,
        ADD COLUMN paid_cents bigint, ADD COLUMN request jsonb;
    CREATE UNIQUE INDEX notifications_link ON notifications (link_token_hash);
    CREATE INDEX notifications_practice ON notifications (practice_id, occurred_at);
    CREATE TABLE payments (
        practice_id text COLLATE "C" NOT NULL,
        reference text COLLATE "C" NOT NULL,
        guarantor_id text NOT NULL,
        notification_id text NOT NULL,
        amount_cents bigint NOT NULL,
        paid_at timestamptz NOT NULL,
        PRIMARY KEY (practice_id, reference)
    );
    """,
)

POOL_MAX_SIZE = 10
CONNECT_TIMEOUT_SECONDS = 10
# How long a request waits for a pooled connection before it is refused (store_unavailable): when
# the database is away, the dialog and a send say so within 2 seconds instead of hanging.
POOL_TIMEOUT_SECONDS = 1.5
# A pool's own attempts to connect while the database is away: each gives up after this long
# (their slots are then free), and the next request starts a new one. So the pool comes back within
# seconds of the database, however long it was away.
RECONNECT_SECONDS = 5.0

_NOTIFICATION_COLUMNS = ", ".join(NOTIFICATION_COLUMNS)
_NOTIFICATION_VALUES = ", ".join(["%s"] * len(NOTIFICATION_COLUMNS))


def history_query(paged: bool) -> str:
    """The history page's query: newest first, read off ``notifications_history`` in order."""
    after = " AND (occurred_at, id) < (%s, %s)" if paged else ""
    return (
        f"SELECT {_NOTIFICATION_COLUMNS} FROM notifications "
        f"WHERE practice_id = %s AND guarantor_id = %s{after} "
        "ORDER BY occurred_at DESC, id DESC LIMIT %s"
    )


class PostgresStore:
    """``Store`` on a PostgreSQL database (or a schema of one). Safe for threads and processes."""

    def __init__(self, url: str) -> None:
        self._where = _server_description(url)
        with _connect(url, self._where) as connection:
            _migrate(connection, self._where)
        self._pool: ConnectionPool[psycopg.Connection[DictRow]] = ConnectionPool(
            url,
            min_size=1,
            max_size=POOL_MAX_SIZE,
            timeout=POOL_TIMEOUT_SECONDS,
            reconnect_timeout=RECONNECT_SECONDS,
            kwargs={
                "autocommit": True,
                "row_factory": dict_row,
                "connect_timeout": _connect_timeout(url),
            },
            check=_check_idle_connection,
            open=True,
            name="ondemand",
        )

    def __repr__(self) -> str:
        return f"PostgresStore({self._where!r})"

    # Connections and transactions

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[DictRow]]:
        try:
            with self._pool.connection() as connection:
                yield connection
        except (PoolTimeout, psycopg.OperationalError) as error:
            raise self._unavailable(error) from error

    def _unavailable(self, error: Exception) -> StoreUnavailable:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        return StoreUnavailable(f"PostgreSQL at {self._where}", reason)

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection[DictRow]]:
        with self._connection() as connection, connection.transaction():
            yield connection

    def _one(self, query: str, parameters: tuple[Any, ...]) -> DictRow | None:
        with self._connection() as connection:
            return connection.execute(query, parameters).fetchone()

    def _all(self, query: str, parameters: tuple[Any, ...]) -> list[DictRow]:
        with self._connection() as connection:
            return connection.execute(query, parameters).fetchall()

    def schema_version(self) -> int:
        row = self._one("SELECT version FROM schema_version", ())
        assert row is not None
        return int(row["version"])

    def close(self) -> None:
        self._pool.close()

    # The add-on switch

    def enabled_practices(self) -> frozenset[str]:
        rows = self._all("SELECT practice_id FROM addon_state WHERE enabled", ())
        return frozenset(row["practice_id"] for row in rows)

    def record_addon_change(self, change: AddonChange) -> None:
        with self._transaction() as connection:
            connection.execute(
                "INSERT INTO addon_changes (practice_id, enabled, changed_by, reason, changed_at) "
                "VALUES (%s, %s, %s, %s, %s)",
                (
                    change.practice_id,
                    change.enabled,
                    change.changed_by,
                    change.reason,
                    change.changed_at,
                ),
            )
            connection.execute(
                "INSERT INTO addon_state (practice_id, enabled) VALUES (%s, %s) "
                "ON CONFLICT (practice_id) DO UPDATE SET enabled = excluded.enabled",
                (change.practice_id, change.enabled),
            )

    def addon_log(self, practice_id: str) -> list[AddonChange]:
        rows = self._all(
            "SELECT * FROM addon_changes WHERE practice_id = %s ORDER BY seq", (practice_id,)
        )
        return [
            AddonChange(
                practice_id=row["practice_id"],
                enabled=row["enabled"],
                changed_by=row["changed_by"],
                reason=row["reason"],
                changed_at=_utc(row["changed_at"]),
            )
            for row in rows
        ]

    # Templates

    def list_templates(self, practice_id: str) -> list[Template]:
        rows = self._all(
            "SELECT * FROM templates WHERE practice_id = %s ORDER BY label, id", (practice_id,)
        )
        return [_template(row) for row in rows]

    def get_template(self, practice_id: str, template_id: str) -> Template | None:
        row = self._one(
            "SELECT * FROM templates WHERE practice_id = %s AND id = %s",
            (practice_id, template_id),
        )
        return _template(row) if row else None

    def save_template(self, practice_id: str, template: Template) -> None:
        with self._connection() as connection:
            connection.execute(
                "INSERT INTO templates (practice_id, id, label, mode, active, sender_email, "
                "subject, body, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (practice_id, id) DO UPDATE SET label = excluded.label, "
                "mode = excluded.mode, active = excluded.active, "
                "sender_email = excluded.sender_email, subject = excluded.subject, "
                "body = excluded.body, updated_at = excluded.updated_at",
                (
                    practice_id,
                    template.id,
                    template.label,
                    template.mode,
                    template.active,
                    template.sender_email,
                    template.subject,
                    template.body,
                    utc_now(),
                ),
            )

    def delete_template(self, practice_id: str, template_id: str) -> bool:
        with self._connection() as connection:
            cursor = connection.execute(
                "DELETE FROM templates WHERE practice_id = %s AND id = %s",
                (practice_id, template_id),
            )
            return cursor.rowcount > 0

    # Notifications

    def claim_notification(self, record: NotificationRecord) -> NotificationRecord | None:
        with self._connection() as connection:
            while True:
                # A concurrent claim of the same key makes this INSERT wait for it to commit,
                # then do nothing; the SELECT, a statement of its own, then sees the winner's
                # row. Each statement commits on its own: a claim is one round trip when it wins.
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
                    "WHERE practice_id = %s AND idempotency_key = %s",
                    (record.practice_id, record.idempotency_key),
                ).fetchone()
                # None: the winner released its claim between the two statements; claim again.
                if row is not None:
                    return _notification(row)

    def release_claim(self, practice_id: str, notification_id: str) -> bool:
        with self._connection() as connection:
            cursor = connection.execute(
                "DELETE FROM notifications "
                "WHERE practice_id = %s AND id = %s AND status = 'sending'",
                (practice_id, notification_id),
            )
            return cursor.rowcount == 1

    def complete_notification(
        self, practice_id: str, notification_id: str, completion: Completion
    ) -> None:
        behind = "status = ANY(%(lower)s)"
        with self._connection() as connection:
            connection.execute(
                "UPDATE notifications SET "
                f"status = CASE WHEN {behind} THEN %(status)s ELSE status END, "
                f"status_changed_at = CASE WHEN {behind} THEN %(now)s ELSE status_changed_at END, "
                f"detail = CASE WHEN {behind} THEN %(detail)s ELSE detail END, "
                "channel = %(channel)s, provider_message_id = %(provider_message_id)s, "
                "result = %(result)s WHERE practice_id = %(practice_id)s AND id = %(id)s",
                {
                    "lower": statuses_below(completion.status),
                    "status": completion.status,
                    "now": utc_now(),
                    "detail": completion.detail,
                    "channel": completion.channel,
                    "provider_message_id": completion.provider_message_id,
                    "result": Json(completion.result),
                    "practice_id": practice_id,
                    "id": notification_id,
                },
            )

    def notification_by_key(
        self, practice_id: str, idempotency_key: str
    ) -> NotificationRecord | None:
        row = self._one(
            f"SELECT {_NOTIFICATION_COLUMNS} FROM notifications "
            "WHERE practice_id = %s AND idempotency_key = %s",
            (practice_id, idempotency_key),
        )
        return _notification(row) if row else None

    def notification_by_id(
        self, practice_id: str, notification_id: str
    ) -> NotificationRecord | None:
        row = self._one(
            f"SELECT {_NOTIFICATION_COLUMNS} FROM notifications WHERE practice_id = %s AND id = %s",
            (practice_id, notification_id),
        )
        return _notification(row) if row else None

    def notification_by_provider_id(
        self, channel: str, provider_message_id: str
    ) -> NotificationRecord | None:
        row = self._one(
            f"SELECT {_NOTIFICATION_COLUMNS} FROM notifications "
            "WHERE channel = %s AND provider_message_id = %s",
            (channel, provider_message_id),
        )
        return _notification(row) if row else None

    def advance_status(
        self, practice_id: str, notification_id: str, status: str, detail: str
    ) -> bool:
        lower = statuses_below(status)
        with self._connection() as connection:
            cursor = connection.execute(
                "UPDATE notifications SET status = %s, status_changed_at = %s, detail = %s "
                "WHERE practice_id = %s AND id = %s AND status = ANY(%s)",
                (status, utc_now(), detail, practice_id, notification_id, lower),
            )
            return cursor.rowcount == 1

    def unsettled_notifications(
        self, occurred_before: datetime, limit: int
    ) -> list[NotificationRecord]:
        rows = self._all(
            f"SELECT {_NOTIFICATION_COLUMNS} FROM notifications "
            "WHERE status IN ('sending', 'unknown') AND occurred_at < %s "
            "ORDER BY occurred_at, id LIMIT %s",
            (occurred_before, limit),
        )
        return [_notification(row) for row in rows]

    def sending_notifications(
        self, occurred_before: datetime, limit: int
    ) -> list[NotificationRecord]:
        rows = self._all(
            f"SELECT {_NOTIFICATION_COLUMNS} FROM notifications "
            "WHERE status = 'sending' AND occurred_at < %s ORDER BY occurred_at, id LIMIT %s",
            (occurred_before, limit),
        )
        return [_notification(row) for row in rows]

    def unknown_notifications(
        self, occurred_before: datetime, limit: int
    ) -> list[NotificationRecord]:
        rows = self._all(
            f"SELECT {_NOTIFICATION_COLUMNS} FROM notifications "
            "WHERE status = 'unknown' AND occurred_at < %s "
            "ORDER BY looked_up_at NULLS FIRST, occurred_at, id LIMIT %s",
            (occurred_before, limit),
        )
        return [_notification(row) for row in rows]

    def record_lookup(self, practice_id: str, notification_id: str, detail: str) -> bool:
        with self._connection() as connection:
            cursor = connection.execute(
                "UPDATE notifications SET detail = %s, looked_up_at = %s "
                "WHERE practice_id = %s AND id = %s AND status = 'unknown'",
                (detail, utc_now(), practice_id, notification_id),
            )
            return cursor.rowcount == 1

    def practices_that_notified(self, mode: str, address: str) -> list[str]:
        rows = self._all(
            "SELECT DISTINCT practice_id FROM notifications "
            "WHERE recipient = %s AND mode = %s ORDER BY practice_id",
            (address, mode),
        )
        return [row["practice_id"] for row in rows]

    def set_opt_out(self, opt_out: OptOut) -> None:
        with self._connection() as connection:
            connection.execute(
                "INSERT INTO opt_outs (practice_id, mode, address, opted_out, source, changed_at) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (practice_id, mode, address) "
                "DO UPDATE SET opted_out = excluded.opted_out, source = excluded.source, "
                "changed_at = excluded.changed_at",
                (
                    opt_out.practice_id,
                    opt_out.mode,
                    opt_out.address,
                    opt_out.opted_out,
                    opt_out.source,
                    opt_out.changed_at,
                ),
            )

    def is_opted_out(self, practice_id: str, mode: str, address: str) -> bool:
        row = self._one(
            "SELECT opted_out FROM opt_outs WHERE practice_id = %s AND mode = %s AND address = %s",
            (practice_id, mode, address),
        )
        return bool(row and row["opted_out"])

    def inbound_message_seen(self, channel: str, message_id: str) -> bool:
        row = self._one(
            "SELECT 1 AS seen FROM inbound_messages WHERE channel = %s AND message_id = %s",
            (channel, message_id),
        )
        return row is not None

    def record_inbound_message(self, channel: str, message_id: str, handled_at: datetime) -> None:
        with self._connection() as connection:
            connection.execute(
                "INSERT INTO inbound_messages (channel, message_id, handled_at) "
                "VALUES (%s, %s, %s) ON CONFLICT (channel, message_id) DO NOTHING",
                (channel, message_id, handled_at),
            )

    def record_reply(self, reply: Reply) -> None:
        with self._connection() as connection:
            connection.execute(
                "INSERT INTO replies (practice_id, channel, sender, address, text, occurred_at) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                (
                    reply.practice_id,
                    reply.channel,
                    reply.sender,
                    reply.address,
                    reply.text,
                    reply.occurred_at,
                ),
            )

    def replies(self, practice_id: str, limit: int) -> list[Reply]:
        with self._connection() as connection:
            rows = connection.execute(
                "SELECT practice_id, channel, sender, address, text, occurred_at FROM replies "
                "WHERE practice_id = %s ORDER BY occurred_at DESC, seq DESC LIMIT %s",
                (practice_id, limit),
            ).fetchall()
        return [Reply(**row) for row in rows]

    def notification_by_link(self, token_hash: str) -> NotificationRecord | None:
        row = self._one(
            f"SELECT {_NOTIFICATION_COLUMNS} FROM notifications WHERE link_token_hash = %s",
            (token_hash,),
        )
        return _notification(row) if row else None

    def record_link_opened(
        self, practice_id: str, notification_id: str, opened_at: datetime
    ) -> bool:
        with self._connection() as connection:
            cursor = connection.execute(
                "UPDATE notifications SET link_opened_at = %s "
                "WHERE practice_id = %s AND id = %s AND link_opened_at IS NULL",
                (opened_at, practice_id, notification_id),
            )
            return cursor.rowcount == 1

    def cancel_link(
        self, practice_id: str, notification_id: str, cancelled_by: str, at: datetime
    ) -> bool:
        with self._connection() as connection:
            cursor = connection.execute(
                "UPDATE notifications SET link_expires_at = %s, link_cancelled_by = %s "
                "WHERE practice_id = %s AND id = %s AND link_expires_at > %s",
                (at, cancelled_by, practice_id, notification_id, at),
            )
            return cursor.rowcount == 1

    def payment_target(
        self, practice_id: str, guarantor_id: str, now: datetime
    ) -> NotificationRecord | None:
        row = self._one(
            f"SELECT {_NOTIFICATION_COLUMNS} FROM notifications "
            "WHERE practice_id = %s AND guarantor_id = %s "
            "AND (link_opened_at IS NOT NULL OR link_expires_at > %s) "
            "ORDER BY occurred_at DESC, id DESC LIMIT 1",
            (practice_id, guarantor_id, now),
        )
        return _notification(row) if row else None

    def record_payment(self, payment: Payment) -> bool:
        with self._transaction() as connection:
            cursor = connection.execute(
                "INSERT INTO payments (practice_id, reference, guarantor_id, notification_id, "
                "amount_cents, paid_at) VALUES (%s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (practice_id, reference) DO NOTHING",
                (
                    payment.practice_id,
                    payment.reference,
                    payment.guarantor_id,
                    payment.notification_id,
                    payment.amount_cents,
                    payment.paid_at,
                ),
            )
            if cursor.rowcount == 0:
                return False
            # One statement adds to the sum, so two payments landing together both count.
            connection.execute(
                "UPDATE notifications SET paid_cents = COALESCE(paid_cents, 0) + %s, "
                "paid_at = LEAST(paid_at, %s) WHERE practice_id = %s AND id = %s",
                (
                    payment.amount_cents,
                    payment.paid_at,
                    payment.practice_id,
                    payment.notification_id,
                ),
            )
        return True

    def notifications_between(
        self, practice_id: str, start: datetime, end: datetime
    ) -> list[NotificationRecord]:
        rows = self._all(
            f"SELECT {_NOTIFICATION_COLUMNS} FROM notifications "
            "WHERE practice_id = %s AND occurred_at >= %s AND occurred_at < %s "
            "ORDER BY occurred_at, id",
            (practice_id, start, end),
        )
        return [_notification(row) for row in rows]

    def history(
        self,
        practice_id: str,
        guarantor_id: str,
        before: tuple[str, str] | None,
        limit: int,
    ) -> list[NotificationRecord]:
        parameters: tuple[Any, ...] = (practice_id, guarantor_id)
        if before is not None:
            occurred_at, notification_id = before
            parameters += (parse_timestamp(occurred_at), notification_id)
        rows = self._all(history_query(before is not None), (*parameters, limit))
        return [_notification(row) for row in rows]


def _check_idle_connection(connection: psycopg.Connection[Any]) -> None:
    """A pooled connection's check before use, with no round trip while it is healthy: an idle
    connection has nothing to read unless the server closed it (a restart, a failover, an idle
    timeout) or sent a notice. Only then is it asked, and a closed one is replaced before use."""
    if connection.closed:
        raise psycopg.OperationalError("the connection is closed")
    poll = select.poll()
    poll.register(connection.fileno(), select.POLLIN)
    if poll.poll(0):
        ConnectionPool.check_connection(connection)


def _connect_timeout(url: str) -> int:
    """The URL's connect_timeout, else ours: libpq's default waits as long as the network does,
    and a pool's attempt that hangs keeps it from coming back when the database does."""
    given = conninfo_to_dict(url).get("connect_timeout")
    return int(given) if given is not None else CONNECT_TIMEOUT_SECONDS


def _server_description(url: str) -> str:
    """Where the URL points, without its password: for errors and repr."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        raise ConfigError(
            "The database_url is not a PostgreSQL URL libpq can read; use "
            "postgresql://user@host:5432/database.",
            field="database_url",
        ) from None
    return f"{parts.get('host', 'localhost')}:{parts.get('port', 5432)}/{parts.get('dbname', '')}"


def _connect(url: str, where: str) -> psycopg.Connection[DictRow]:
    try:
        return psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_SECONDS, row_factory=dict_row)
    except psycopg.OperationalError as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ConfigError(
            f"The On-Demand plugin cannot connect to the PostgreSQL database at {where} "
            f"({reason}). Check database_url and that the server accepts connections.",
            field="database_url",
        ) from None


def _migrate(connection: psycopg.Connection[DictRow], where: str) -> None:
    """Bring the schema up to date, once, even when many workers start at the same moment."""
    with connection.transaction():
        schema = connection.execute("SELECT current_schema() AS name").fetchone()
        if schema is None or schema["name"] is None:
            raise ConfigError(
                f"The schema that database_url's search_path names does not exist in {where}. "
                "Create it (CREATE SCHEMA ...) or name an existing one.",
                field="database_url",
            )
        # Held until this transaction ends: workers that start together migrate one at a time,
        # and each one after the first finds the work done.
        connection.execute(
            "SELECT pg_advisory_xact_lock(hashtext('ondemand_plugin migrations ' || %s))",
            (schema["name"],),
        )
        connection.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
        row = connection.execute("SELECT version FROM schema_version").fetchone()
        applied = row["version"] if row else 0
        if applied > len(MIGRATIONS):
            raise ConfigError(
                f"The database at {where} has schema version {applied}, newer than this "
                f"plugin's {len(MIGRATIONS)}. Upgrade the plugin on this worker.",
                field="database_url",
            )
        for script in MIGRATIONS[applied:]:
            connection.execute(script)
        if row is None:
            connection.execute("INSERT INTO schema_version VALUES (%s)", (len(MIGRATIONS),))
        else:
            connection.execute("UPDATE schema_version SET version = %s", (len(MIGRATIONS),))


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def _template(row: DictRow) -> Template:
    return Template(
        id=row["id"],
        label=row["label"],
        mode=row["mode"],
        active=row["active"],
        sender_email=row["sender_email"],
        subject=row["subject"],
        body=row["body"],
    )


def _notification_row(record: NotificationRecord) -> tuple[Any, ...]:
    values = attrs.asdict(record, recurse=False)
    values["result"] = Json(record.result) if record.result is not None else None
    values["request"] = Json(record.request) if record.request is not None else None
    if record.route_channels is not None:
        values["route_channels"] = list(record.route_channels)
    return tuple(values[column] for column in NOTIFICATION_COLUMNS)


def _notification(row: DictRow) -> NotificationRecord:
    values = {column: row[column] for column in NOTIFICATION_COLUMNS}
    values.update(
        occurred_at=_utc(row["occurred_at"]),
        status_changed_at=_utc(row["status_changed_at"]),
        route_channels=tuple(row["route_channels"]) if row["route_channels"] is not None else None,
    )
    for column in ("looked_up_at", "link_expires_at", "link_opened_at", "paid_at"):
        values[column] = _utc(row[column]) if row[column] else None
    return NotificationRecord(**values)
