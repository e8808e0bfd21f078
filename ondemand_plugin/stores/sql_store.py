"""``Store`` on any SQL backend, written once in SQLAlchemy Core.

Every statement is built here, compiled once for the backend's dialect when the store opens, and
run on the driver's connection with named parameters (see ``backend.py`` for why). What the
backends do differently in SQL is said where it happens: upserts (``ON CONFLICT`` on SQLite and
PostgreSQL, ``ON DUPLICATE KEY UPDATE`` on MariaDB) and ``NULLS FIRST``, which MariaDB lacks (it
sorts NULL first anyway).

Guarantees on every backend: the database enforces the idempotency key (an insert that does
nothing on conflict); statuses move forward in one ``UPDATE``; a send is at most two short
transactions (the claim, the completion), each one statement; history is read newest first
through ``notifications_history``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

from hookspecs.types import Template
from ondemand_plugin.clock import parse_timestamp, utc_now
from ondemand_plugin.rules.statuses import STATUS_RANK, statuses_below
from ondemand_plugin.stores.backend import Backend
from ondemand_plugin.stores.base import (
    NOTIFICATION_COLUMNS,
    AddonChange,
    Completion,
    ConsentChange,
    NotificationRecord,
    OptOut,
    Payment,
    Reply,
)
from ondemand_plugin.stores.schema import (
    addon_changes,
    addon_state,
    consent_changes,
    inbound_messages,
    notifications,
    opt_outs,
    payments,
    replies,
    templates,
)

_n = notifications.c
# What an open end of a span stands for: moments every backend keeps (MariaDB's DATETIME
# starts at year 1000).
_EARLIEST = datetime(1000, 1, 1, tzinfo=UTC)
_LATEST = datetime(9999, 12, 31, tzinfo=UTC)
_NOTIFICATION = [_n[name] for name in NOTIFICATION_COLUMNS]
# The record's moments that may be unset.
_OPTIONAL_MOMENTS = ("looked_up_at", "link_expires_at", "link_opened_at", "paid_at")
_TEMPLATE = [templates.c[name] for name in ("id", "label", "mode", "active", "sender_email")] + [
    templates.c.subject,
    templates.c.body,
]
_CONSENT = [
    consent_changes.c[name]
    for name in (
        "practice_id",
        "mode",
        "address",
        "opted_out",
        "source",
        "actor",
        "words",
        "sender",
        "changed_at",
    )
]
_REPLY_COLUMNS = (
    "id",
    "practice_id",
    "guarantor_id",
    "notification_id",
    "channel",
    "sender",
    "address",
    "text",
    "occurred_at",
)
_r = replies.c


def _p(name: str) -> sa.BindParameter[Any]:
    return sa.bindparam(name)


def _values(table: sa.Table, names: Sequence[str]) -> dict[str, sa.BindParameter[Any]]:
    return {name: _p(name) for name in names}


def _insert(dialect: str, table: sa.Table, names: Sequence[str]) -> Any:
    """An INSERT of named parameters, in the dialect's own construct (for its upsert clause)."""
    construct = {"sqlite": sqlite.insert, "postgresql": postgresql.insert, "mysql": mysql.insert}
    return construct[dialect](table).values(_values(table, names))


def _upsert(dialect: str, table: sa.Table, names: Sequence[str], keys: Sequence[str]) -> Any:
    """Insert a row, or update the row with its key to the new values."""
    statement = _insert(dialect, table, names)
    changed = [name for name in names if name not in keys]
    if dialect == "mysql":
        return statement.on_duplicate_key_update(
            {name: statement.inserted[name] for name in changed}
        )
    return statement.on_conflict_do_update(
        index_elements=list(keys), set_={name: statement.excluded[name] for name in changed}
    )


def _insert_once(dialect: str, table: sa.Table, names: Sequence[str], keys: Sequence[str]) -> Any:
    """Insert a row unless one holds its key: then nothing happens and no row counts."""
    statement = _insert(dialect, table, names)
    if dialect == "mysql":
        # Sets a key column to itself: no change, so MariaDB counts no row (the store's
        # connections do not ask for "found rows").
        return statement.on_duplicate_key_update({keys[-1]: table.c[keys[-1]]})
    return statement.on_conflict_do_nothing(index_elements=list(keys))


def _status_in(statuses: Sequence[str]) -> ColumnElement[bool]:
    # Constants each, not one "expanding" list: the SQL is compiled once, complete.
    return _n.status.in_([sa.literal(status) for status in statuses])


def _behind(status: str) -> ColumnElement[bool]:
    return _status_in(statuses_below(status))


def _statements(dialect: str) -> dict[str, Any]:
    """Every statement the store runs, by name; the status-dependent ones once per status."""
    by_practice_and_id = (_n.practice_id == _p("practice_id")) & (_n.id == _p("id"))
    select_notifications = sa.select(*_NOTIFICATION)
    looked_up_first = _n.looked_up_at if dialect == "mysql" else _n.looked_up_at.nulls_first()
    statements: dict[str, Any] = {
        "enabled_practices": sa.select(addon_state.c.practice_id).where(
            addon_state.c.enabled == sa.true()
        ),
        "record_addon_change": sa.insert(addon_changes).values(
            _values(addon_changes, ("practice_id", "enabled", "changed_by", "reason", "changed_at"))
        ),
        "set_addon_state": _upsert(
            dialect, addon_state, ("practice_id", "enabled"), ("practice_id",)
        ),
        "addon_log": sa.select(
            addon_changes.c.practice_id,
            addon_changes.c.enabled,
            addon_changes.c.changed_by,
            addon_changes.c.reason,
            addon_changes.c.changed_at,
        )
        .where(addon_changes.c.practice_id == _p("practice_id"))
        .order_by(addon_changes.c.seq),
        "list_templates": sa.select(*_TEMPLATE)
        .where(templates.c.practice_id == _p("practice_id"))
        .order_by(templates.c.label, templates.c.id),
        "get_template": sa.select(*_TEMPLATE).where(
            (templates.c.practice_id == _p("practice_id")) & (templates.c.id == _p("id"))
        ),
        "save_template": _upsert(
            dialect,
            templates,
            (
                "practice_id",
                "id",
                "label",
                "mode",
                "active",
                "sender_email",
                "subject",
                "body",
                "updated_at",
            ),
            ("practice_id", "id"),
        ),
        "delete_template": sa.delete(templates).where(
            (templates.c.practice_id == _p("practice_id")) & (templates.c.id == _p("id"))
        ),
        "claim": _insert_once(
            dialect, notifications, NOTIFICATION_COLUMNS, ("practice_id", "idempotency_key")
        ),
        "by_key": select_notifications.where(
            (_n.practice_id == _p("practice_id")) & (_n.idempotency_key == _p("key"))
        ),
        "by_id": select_notifications.where(by_practice_and_id),
        "by_provider_id": select_notifications.where(
            (_n.channel == _p("channel")) & (_n.provider_message_id == _p("provider_message_id"))
        ),
        "release_claim": sa.delete(notifications).where(
            by_practice_and_id & (_n.status == "sending")
        ),
        "unsettled": select_notifications.where(
            _status_in(["sending", "unknown"]) & (_n.occurred_at < _p("before"))
        )
        .order_by(_n.occurred_at, _n.id)
        .limit(_p("limit")),
        "sending": select_notifications.where(
            (_n.status == "sending") & (_n.occurred_at < _p("before"))
        )
        .order_by(_n.occurred_at, _n.id)
        .limit(_p("limit")),
        "unknown": select_notifications.where(
            (_n.status == "unknown") & (_n.occurred_at < _p("before"))
        )
        .order_by(looked_up_first, _n.occurred_at, _n.id)
        .limit(_p("limit")),
        "record_lookup": sa.update(notifications)
        .where(by_practice_and_id & (_n.status == "unknown"))
        .values(detail=_p("detail"), looked_up_at=_p("now")),
        "practices_that_notified": sa.select(_n.practice_id)
        .distinct()
        .where((_n.recipient == _p("address")) & (_n.mode == _p("mode")))
        .order_by(_n.practice_id),
        "set_opt_out": _upsert(
            dialect,
            opt_outs,
            ("practice_id", "mode", "address", "opted_out", "source", "changed_at"),
            ("practice_id", "mode", "address"),
        ),
        "is_opted_out": sa.select(opt_outs.c.opted_out).where(
            (opt_outs.c.practice_id == _p("practice_id"))
            & (opt_outs.c.mode == _p("mode"))
            & (opt_outs.c.address == _p("address"))
        ),
        "inbound_message_seen": sa.select(sa.literal_column("1")).where(
            (inbound_messages.c.channel == _p("channel"))
            & (inbound_messages.c.message_id == _p("message_id"))
        ),
        "record_inbound_message": _insert_once(
            dialect,
            inbound_messages,
            ("channel", "message_id", "handled_at"),
            ("channel", "message_id"),
        ),
        "record_reply": sa.insert(replies).values(_values(replies, _REPLY_COLUMNS)),
        "latest_notification_to": select_notifications.where(
            (_n.practice_id == _p("practice_id")) & (_n.recipient == _p("address"))
        )
        .order_by(_n.occurred_at.desc(), _n.id.desc())
        .limit(1),
        "by_link": select_notifications.where(_n.link_token_hash == _p("token_hash")),
        "record_link_opened": sa.update(notifications)
        .where(by_practice_and_id & _n.link_opened_at.is_(None))
        .values(link_opened_at=_p("now")),
        "cancel_link": sa.update(notifications)
        .where(by_practice_and_id & (_n.link_expires_at > _p("now")))
        .values(link_expires_at=_p("now"), link_cancelled_by=_p("cancelled_by")),
        "payment_target": select_notifications.where(
            (_n.practice_id == _p("practice_id"))
            & (_n.guarantor_id == _p("guarantor_id"))
            & (_n.link_opened_at.is_not(None) | (_n.link_expires_at > _p("now")))
        )
        .order_by(_n.occurred_at.desc(), _n.id.desc())
        .limit(1),
        "record_payment": _insert_once(
            dialect,
            payments,
            (
                "practice_id",
                "reference",
                "guarantor_id",
                "notification_id",
                "amount_cents",
                "paid_at",
            ),
            ("practice_id", "reference"),
        ),
        # One statement adds a payment, so two landing together both count.
        "add_payment": sa.update(notifications)
        .where(by_practice_and_id)
        .values(
            paid_cents=sa.func.coalesce(_n.paid_cents, 0) + _p("amount_cents"),
            paid_at=sa.case(
                (_n.paid_at.is_(None) | (_n.paid_at > _p("paid_at")), _p("paid_at")),
                else_=_n.paid_at,
            ),
        ),
        "record_consent_change": sa.insert(consent_changes).values(
            _values(consent_changes, [column.name for column in _CONSENT])
        ),
        "consent_changes": sa.select(*_CONSENT)
        .where(
            (consent_changes.c.practice_id == _p("practice_id"))
            & (consent_changes.c.changed_at >= _p("start"))
            & (consent_changes.c.changed_at < _p("end"))
        )
        .order_by(consent_changes.c.changed_at, consent_changes.c.seq),
        # Pacing reads the addresses one at a time (``notifications_pacing``): the list has no
        # fixed length, and each statement is compiled once, complete.
        "notifications_to": select_notifications.where(
            (_n.practice_id == _p("practice_id"))
            & (_n.recipient == _p("address"))
            & (_n.occurred_at >= _p("since"))
        ),
        "notifications_between": select_notifications.where(
            (_n.practice_id == _p("practice_id"))
            & (_n.occurred_at >= _p("start"))
            & (_n.occurred_at < _p("end"))
        ).order_by(_n.occurred_at, _n.id),
    }
    history = select_notifications.where(
        (_n.practice_id == _p("practice_id")) & (_n.guarantor_id == _p("guarantor_id"))
    ).order_by(_n.occurred_at.desc(), _n.id.desc())
    statements["history"] = history.limit(_p("limit"))
    # Keyset paging: "(occurred_at, id) < (before)". Written as a range on occurred_at that every
    # backend reads off the index (MariaDB does not for a row comparison), plus the tie-break.
    statements["history_before"] = history.where(
        (_n.occurred_at <= _p("occurred_at"))
        & ((_n.occurred_at < _p("occurred_at")) | (_n.id < _p("id")))
    ).limit(_p("limit"))
    # A reply is shown with the mode and time of the notification it answers.
    reply_history = (
        sa.select(*(_r[name] for name in _REPLY_COLUMNS), _n.mode, _n.occurred_at)
        .join(
            notifications,
            (_n.practice_id == _r.practice_id) & (_n.id == _r.notification_id),
        )
        .where((_r.practice_id == _p("practice_id")) & (_r.guarantor_id == _p("guarantor_id")))
        .order_by(_r.occurred_at.desc(), _r.id.desc())
    )
    statements["reply_history"] = reply_history.limit(_p("limit"))
    statements["reply_history_before"] = reply_history.where(
        (_r.occurred_at <= _p("occurred_at"))
        & ((_r.occurred_at < _p("occurred_at")) | (_r.id < _p("id")))
    ).limit(_p("limit"))
    for status in STATUS_RANK:
        statements[f"advance_status {status}"] = (
            sa.update(notifications)
            .where(by_practice_and_id & _behind(status))
            .values(status=_p("status"), status_changed_at=_p("now"), detail=_p("detail"))
        )
        behind = _behind(status)
        statements[f"complete {status}"] = (
            sa.update(notifications)
            .where(by_practice_and_id)
            # The status last: MariaDB's later assignments see the earlier ones' new values.
            .ordered_values(
                (_n.status_changed_at, sa.case((behind, _p("now")), else_=_n.status_changed_at)),
                (_n.detail, sa.case((behind, _p("detail")), else_=_n.detail)),
                (_n.channel, _p("channel")),
                (_n.provider_message_id, _p("provider_message_id")),
                (_n.result, _p("result")),
                (_n.status, sa.case((behind, _p("status")), else_=_n.status)),
            )
        )
    return statements


class _Compiled:
    """A statement's SQL for one dialect, with the values it carries itself (its constants)."""

    __slots__ = ("constants", "sql")

    def __init__(self, statement: Any, dialect: sa.Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql: str = compiled.string
        self.constants: dict[str, Any] = {
            name: value for name, value in compiled.params.items() if value is not None
        }

    def parameters(self, given: Mapping[str, Any]) -> Mapping[str, Any]:
        return {**self.constants, **given} if self.constants else given


class SQLStore:
    """``Store`` on a SQL database. Safe to share between threads and processes."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        backend.migrate()
        backend.open()
        dialect = backend.dialect
        self._sql = {
            name: _Compiled(statement, dialect)
            for name, statement in _statements(dialect.name).items()
        }
        self._time = backend.to_time

    def __repr__(self) -> str:
        return f"SQLStore({self.backend.where!r})"

    def close(self) -> None:
        self.backend.close()

    def sql(self, name: str) -> str:
        """The SQL a statement of this store runs as (named parameters), for EXPLAIN."""
        return self._sql[name].sql

    # Running statements

    def _run(self, name: str, **parameters: Any) -> int:
        """Run a write on its own (it commits by itself); how many rows it changed."""
        statement = self._sql[name]
        with self.backend.connection() as connection:
            cursor = connection.cursor()
            cursor.execute(statement.sql, statement.parameters(parameters))
            rowcount: int = cursor.rowcount
            return rowcount

    def _one(self, name: str, **parameters: Any) -> tuple[Any, ...] | None:
        statement = self._sql[name]
        with self.backend.connection() as connection:
            cursor = connection.cursor()
            cursor.execute(statement.sql, statement.parameters(parameters))
            row: tuple[Any, ...] | None = cursor.fetchone()
            return row

    def _all(self, name: str, **parameters: Any) -> list[tuple[Any, ...]]:
        statement = self._sql[name]
        with self.backend.connection() as connection:
            cursor = connection.cursor()
            cursor.execute(statement.sql, statement.parameters(parameters))
            return list(cursor.fetchall())

    @contextmanager
    def _transaction(self) -> Iterator[Callable[..., int]]:
        """Several writes that commit together: yields ``run(name, **parameters)``, which
        answers how many rows a write changed."""
        with self.backend.connection() as connection:
            cursor = connection.cursor()

            def run(name: str, **parameters: Any) -> int:
                statement = self._sql[name]
                cursor.execute(statement.sql, statement.parameters(parameters))
                rowcount: int = cursor.rowcount
                return rowcount

            cursor.execute(self.backend.begin)
            try:
                yield run
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            cursor.execute("COMMIT")

    # The add-on switch

    def enabled_practices(self) -> frozenset[str]:
        return frozenset(row[0] for row in self._all("enabled_practices"))

    def record_addon_change(self, change: AddonChange) -> None:
        with self._transaction() as run:
            run("record_addon_change", **self._fields(change, "changed_at"))
            run("set_addon_state", practice_id=change.practice_id, enabled=change.enabled)

    def addon_log(self, practice_id: str) -> list[AddonChange]:
        return [
            AddonChange(
                practice_id=practice,
                enabled=bool(enabled),
                changed_by=changed_by,
                reason=reason,
                changed_at=self.backend.from_time(changed_at),
            )
            for practice, enabled, changed_by, reason, changed_at in self._all(
                "addon_log", practice_id=practice_id
            )
        ]

    # Templates

    def list_templates(self, practice_id: str) -> list[Template]:
        return [_template(row) for row in self._all("list_templates", practice_id=practice_id)]

    def get_template(self, practice_id: str, template_id: str) -> Template | None:
        row = self._one("get_template", practice_id=practice_id, id=template_id)
        return _template(row) if row else None

    def save_template(self, practice_id: str, template: Template) -> None:
        fields = attrs.asdict(template)
        self._run(
            "save_template", practice_id=practice_id, updated_at=self._time(utc_now()), **fields
        )

    def delete_template(self, practice_id: str, template_id: str) -> bool:
        return self._run("delete_template", practice_id=practice_id, id=template_id) > 0

    # Notifications

    def claim_notification(self, record: NotificationRecord) -> NotificationRecord | None:
        row = self._notification_row(record)
        while True:
            # A concurrent claim of the same key makes this insert wait for it to commit, then
            # do nothing; the read, a statement of its own, then sees the winner's row. A claim
            # that wins is one statement.
            if self._run("claim", **row) == 1:
                return None
            holder = self.notification_by_key(record.practice_id, record.idempotency_key)
            # None: the winner released its claim between the two statements; claim again.
            if holder is not None:
                return holder

    def release_claim(self, practice_id: str, notification_id: str) -> bool:
        return self._run("release_claim", practice_id=practice_id, id=notification_id) == 1

    def complete_notification(
        self, practice_id: str, notification_id: str, completion: Completion
    ) -> None:
        self._run(
            f"complete {completion.status}",
            practice_id=practice_id,
            id=notification_id,
            status=completion.status,
            now=self._time(utc_now()),
            detail=completion.detail,
            channel=completion.channel,
            provider_message_id=completion.provider_message_id,
            result=self.backend.to_json(completion.result),
        )

    def notification_by_key(
        self, practice_id: str, idempotency_key: str
    ) -> NotificationRecord | None:
        return self._one_notification("by_key", practice_id=practice_id, key=idempotency_key)

    def notification_by_id(
        self, practice_id: str, notification_id: str
    ) -> NotificationRecord | None:
        return self._one_notification("by_id", practice_id=practice_id, id=notification_id)

    def notification_by_provider_id(
        self, channel: str, provider_message_id: str
    ) -> NotificationRecord | None:
        return self._one_notification(
            "by_provider_id", channel=channel, provider_message_id=provider_message_id
        )

    def advance_status(
        self, practice_id: str, notification_id: str, status: str, detail: str
    ) -> bool:
        changed = self._run(
            f"advance_status {status}",
            practice_id=practice_id,
            id=notification_id,
            status=status,
            now=self._time(utc_now()),
            detail=detail,
        )
        return changed == 1

    def _recovery_batch(
        self, name: str, occurred_before: datetime, limit: int
    ) -> list[NotificationRecord]:
        rows = self._all(name, before=self._time(occurred_before), limit=limit)
        return [self._notification(row) for row in rows]

    def unsettled_notifications(
        self, occurred_before: datetime, limit: int
    ) -> list[NotificationRecord]:
        return self._recovery_batch("unsettled", occurred_before, limit)

    def sending_notifications(
        self, occurred_before: datetime, limit: int
    ) -> list[NotificationRecord]:
        return self._recovery_batch("sending", occurred_before, limit)

    def unknown_notifications(
        self, occurred_before: datetime, limit: int
    ) -> list[NotificationRecord]:
        return self._recovery_batch("unknown", occurred_before, limit)

    def record_lookup(self, practice_id: str, notification_id: str, detail: str) -> bool:
        changed = self._run(
            "record_lookup",
            practice_id=practice_id,
            id=notification_id,
            detail=detail,
            now=self._time(utc_now()),
        )
        return changed == 1

    def practices_that_notified(self, mode: str, address: str) -> list[str]:
        return [row[0] for row in self._all("practices_that_notified", mode=mode, address=address)]

    def set_opt_out(self, opt_out: OptOut) -> None:
        self._run("set_opt_out", **self._fields(opt_out, "changed_at"))

    def is_opted_out(self, practice_id: str, mode: str, address: str) -> bool:
        row = self._one("is_opted_out", practice_id=practice_id, mode=mode, address=address)
        return bool(row and row[0])

    def record_consent_change(self, change: ConsentChange) -> None:
        self._run("record_consent_change", **self._fields(change, "changed_at"))

    def consent_changes(
        self, practice_id: str, start: datetime | None, end: datetime | None
    ) -> list[ConsentChange]:
        rows = self._all("consent_changes", practice_id=practice_id, **self._span(start, end))
        changes = []
        for row in rows:
            values = dict(zip((column.name for column in _CONSENT), row, strict=True))
            values.update(
                opted_out=bool(values["opted_out"]),
                changed_at=self.backend.from_time(values["changed_at"]),
            )
            changes.append(ConsentChange(**values))
        return changes

    def notifications_to(
        self, practice_id: str, addresses: tuple[str, ...], since: datetime
    ) -> list[NotificationRecord]:
        records = [
            self._notification(row)
            for address in dict.fromkeys(addresses)
            for row in self._all(
                "notifications_to",
                practice_id=practice_id,
                address=address,
                since=self._time(since),
            )
        ]
        return sorted(records, key=lambda record: (record.occurred_at, record.id), reverse=True)

    def notifications_between(
        self, practice_id: str, start: datetime | None, end: datetime | None
    ) -> list[NotificationRecord]:
        rows = self._all("notifications_between", practice_id=practice_id, **self._span(start, end))
        return [self._notification(row) for row in rows]

    def inbound_message_seen(self, channel: str, message_id: str) -> bool:
        return self._one("inbound_message_seen", channel=channel, message_id=message_id) is not None

    def record_inbound_message(self, channel: str, message_id: str, handled_at: datetime) -> None:
        self._run(
            "record_inbound_message",
            channel=channel,
            message_id=message_id,
            handled_at=self._time(handled_at),
        )

    def record_reply(self, reply: Reply) -> None:
        values = {name: getattr(reply, name) for name in _REPLY_COLUMNS}
        values["occurred_at"] = self._time(reply.occurred_at)
        self._run("record_reply", **values)

    def latest_notification_to(self, practice_id: str, address: str) -> NotificationRecord | None:
        return self._one_notification(
            "latest_notification_to", practice_id=practice_id, address=address
        )

    def reply_history(
        self, practice_id: str, guarantor_id: str, before: tuple[str, str] | None, limit: int
    ) -> list[Reply]:
        rows = self._page("reply_history", practice_id, guarantor_id, before, limit)
        return [self._reply(row) for row in rows]

    def _reply(self, row: tuple[Any, ...]) -> Reply:
        *stored, mode, answered_at = row
        values = dict(zip(_REPLY_COLUMNS, stored, strict=True))
        values["occurred_at"] = self.backend.from_time(values["occurred_at"])
        return Reply(**values, mode=mode, answered_at=self.backend.from_time(answered_at))

    def history(
        self, practice_id: str, guarantor_id: str, before: tuple[str, str] | None, limit: int
    ) -> list[NotificationRecord]:
        rows = self._page("history", practice_id, guarantor_id, before, limit)
        return [self._notification(row) for row in rows]

    def _page(
        self,
        name: str,
        practice_id: str,
        guarantor_id: str,
        before: tuple[str, str] | None,
        limit: int,
    ) -> list[tuple[Any, ...]]:
        """A page of a guarantor's history, newest first, below ``before`` (occurred_at, id)."""
        if before is None:
            return self._all(name, practice_id=practice_id, guarantor_id=guarantor_id, limit=limit)
        occurred_at, entry_id = before
        return self._all(
            name + "_before",
            practice_id=practice_id,
            guarantor_id=guarantor_id,
            occurred_at=self._time(parse_timestamp(occurred_at)),
            id=entry_id,
            limit=limit,
        )

    # Tracked links and payments

    def notification_by_link(self, token_hash: str) -> NotificationRecord | None:
        return self._one_notification("by_link", token_hash=token_hash)

    def record_link_opened(
        self, practice_id: str, notification_id: str, opened_at: datetime
    ) -> bool:
        changed = self._run(
            "record_link_opened",
            practice_id=practice_id,
            id=notification_id,
            now=self._time(opened_at),
        )
        return changed == 1

    def cancel_link(
        self, practice_id: str, notification_id: str, cancelled_by: str, at: datetime
    ) -> bool:
        changed = self._run(
            "cancel_link",
            practice_id=practice_id,
            id=notification_id,
            now=self._time(at),
            cancelled_by=cancelled_by,
        )
        return changed == 1

    def payment_target(
        self, practice_id: str, guarantor_id: str, now: datetime
    ) -> NotificationRecord | None:
        return self._one_notification(
            "payment_target",
            practice_id=practice_id,
            guarantor_id=guarantor_id,
            now=self._time(now),
        )

    def record_payment(self, payment: Payment) -> bool:
        fields = self._fields(payment, "paid_at")
        with self._transaction() as run:
            if run("record_payment", **fields) == 0:
                return False
            run(
                "add_payment",
                practice_id=payment.practice_id,
                id=payment.notification_id,
                amount_cents=payment.amount_cents,
                paid_at=fields["paid_at"],
            )
        return True

    # Rows

    def _one_notification(self, name: str, **parameters: Any) -> NotificationRecord | None:
        row = self._one(name, **parameters)
        return self._notification(row) if row else None

    def _fields(self, record: Any, *times: str) -> dict[str, Any]:
        """A record's fields as a statement's parameters, its timestamps in the backend's form."""
        values: dict[str, Any] = attrs.asdict(record, recurse=False)
        for name in times:
            values[name] = self._time(values[name])
        return values

    def _span(self, start: datetime | None, end: datetime | None) -> dict[str, Any]:
        """A span's bounds as parameters, either open end as the earliest or latest moment."""
        return {
            "start": self._time(start or _EARLIEST),
            "end": self._time(end or _LATEST),
        }

    def _notification_row(self, record: NotificationRecord) -> dict[str, Any]:
        backend = self.backend
        values = {name: getattr(record, name) for name in NOTIFICATION_COLUMNS}
        values.update(
            occurred_at=backend.to_time(record.occurred_at),
            status_changed_at=backend.to_time(record.status_changed_at),
            result=backend.to_json(record.result) if record.result is not None else None,
            route_channels=(
                backend.to_list(record.route_channels)
                if record.route_channels is not None
                else None
            ),
            request=backend.to_json(record.request) if record.request is not None else None,
        )
        for name in _OPTIONAL_MOMENTS:
            moment = getattr(record, name)
            values[name] = backend.to_time(moment) if moment is not None else None
        return values

    def _notification(self, row: tuple[Any, ...]) -> NotificationRecord:
        backend = self.backend
        values = dict(zip(NOTIFICATION_COLUMNS, row, strict=True))
        values.update(
            occurred_at=backend.from_time(values["occurred_at"]),
            status_changed_at=backend.from_time(values["status_changed_at"]),
            payment_allowed=bool(values["payment_allowed"]),
            result=backend.from_json(values["result"]) if values["result"] is not None else None,
            route_channels=(
                backend.from_list(values["route_channels"])
                if values["route_channels"] is not None
                else None
            ),
            request=(
                backend.from_json(values["request"]) if values["request"] is not None else None
            ),
        )
        for name in _OPTIONAL_MOMENTS:
            moment = values[name]
            values[name] = backend.from_time(moment) if moment is not None else None
        return NotificationRecord(**values)


def _template(row: tuple[Any, ...]) -> Template:
    template_id, label, mode, active, sender_email, subject, body = row
    return Template(
        id=template_id,
        label=label,
        mode=mode,
        active=bool(active),
        sender_email=sender_email,
        subject=subject,
        body=body,
    )
