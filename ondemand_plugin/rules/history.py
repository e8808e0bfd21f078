"""R4: On-Demand notifications as entries of the guarantor's Statement/Notification History, with
the patients' replies to them (kind ``patient_reply``) among them."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from ondemand_plugin import OPT_OUTS_ACTION_ID
from ondemand_plugin.clock import format_timestamp, parse_timestamp, utc_now
from ondemand_plugin.errors import InvalidRequest
from ondemand_plugin.rules.composing import format_money
from ondemand_plugin.rules.criteria import MODE_NAMES
from ondemand_plugin.sending.recovery import Recovery
from ondemand_plugin.stores import NotificationRecord, Reply, Store, paid_amount

MAX_PAGE = 100
STATUS_WORDS = {
    "sending": "sending (outcome not known yet)",
    "sent": "sent, not yet confirmed delivered",
    "delivered": "delivered",
    "undelivered": "not delivered",
    "failed": "failed",
    "unknown": "outcome unknown (the delivery was interrupted; check with the recipient)",
}
# Statuses whose detail tells staff why (the provider's error, the channel's refusal).
EXPLAINED = frozenset({"undelivered", "failed"})


def encode_cursor(record: NotificationRecord | Reply) -> str:
    raw = f"{format_timestamp(record.occurred_at)}|{record.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# RFC 3339's date-time (section 5.6): an offset is required, "T" and "Z" may be lower case.
_TIMESTAMP = re.compile(
    r"(\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})"
)
_BEFORE_FORMS = (
    "before must be the 'cursor' of the last entry this plugin gave out, or an RFC 3339 "
    "timestamp such as 2026-05-01T09:30:00Z (the occurred_at of the last entry shown, when "
    "several plugins' pages are merged), or None for the first page."
)


def page_position(before: object) -> tuple[str, str] | None:
    """Where a page starts, as the (occurred_at, id) that every entry on it sorts below.

    A timestamp ``T`` becomes ``(T, "")``: no id is empty, so exactly the entries that occurred
    strictly before ``T`` sort below it, on every backend, through the same index as a cursor.
    """
    if before is None:
        return None
    if type(before) is not str:
        raise InvalidRequest(_BEFORE_FORMS, field="before")
    if ":" in before:  # a cursor is URL-safe base64, which has no colon
        return format_timestamp(_moment(before)), ""
    return decode_cursor(before)


def _moment(text: str) -> datetime:
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        raise InvalidRequest(_BEFORE_FORMS, field="before")
    seconds, fraction, offset = match.groups()
    fraction = fraction or ""
    try:
        moment = datetime.fromisoformat(
            f"{seconds}.{fraction[:6]:0<6}{offset}".upper().replace("Z", "+00:00")
        )
        # Entries are kept to the microsecond: one at the microsecond below a finer T is older.
        if fraction[6:].strip("0"):
            moment += timedelta(microseconds=1)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidRequest(_BEFORE_FORMS, field="before") from None


def decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        occurred_at, notification_id = raw.split("|")
        parse_timestamp(occurred_at)  # a hand-made cursor would page from an arbitrary place
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidRequest(
            "This history cursor is not one the plugin gave out: " + _BEFORE_FORMS,
            field="before",
        ) from None
    return occurred_at, notification_id


def history_page(
    store: Store,
    practice_id: str,
    guarantor_id: str,
    before: str | None,
    limit: int,
    recovery: Recovery,
) -> list[dict[str, Any]]:
    """A page of notifications and replies, newest first: each source's next ``limit`` entries,
    merged, cut at ``limit``. Both sort by (occurred_at, id), so the last entry's cursor is where
    the next page starts in either."""
    if type(limit) is not int or not 1 <= limit <= MAX_PAGE:
        raise InvalidRequest(f"limit must be a whole number from 1 to {MAX_PAGE}.", field="limit")
    position = page_position(before)
    records = recovery.mark_stuck(store.history(practice_id, guarantor_id, position, limit))
    replies = store.reply_history(practice_id, guarantor_id, position, limit)
    items: list[NotificationRecord | Reply] = [*records, *replies]
    page = sorted(items, key=lambda item: (item.occurred_at, item.id), reverse=True)
    now = utc_now()
    # Only the entries shown are built: the cut comes before the work.
    return [
        reply_entry(item) if isinstance(item, Reply) else history_entry(item, now)
        for item in page[:limit]
    ]


def history_entry(record: NotificationRecord, now: datetime) -> dict[str, Any]:
    mode_name = MODE_NAMES[record.mode]
    balance = format_money(Decimal(record.balance))
    summary = (
        f"{mode_name.capitalize()} to {record.sent_to_name or record.sent_to_type} at "
        f"{record.recipient}, sent by {record.sent_by_name}. Balance {balance}"
        f"{'' if record.payment_allowed else ' (no payment could be made)'}. "
        f"{_status_sentence(record)}{_payment_sentence(record)}"
    )
    return {
        "id": record.id,
        "kind": "on_demand_balance_notification",
        "guarantor_id": record.guarantor_id,
        "occurred_at": format_timestamp(record.occurred_at),
        "mode": record.mode,
        "to": record.recipient,
        "sent_to": {
            "type": record.sent_to_type,
            "id": record.sent_to_id,
            "name": record.sent_to_name,
        },
        "sent_by": {"id": record.sent_by_id, "name": record.sent_by_name},
        "status": record.status,
        "status_changed_at": format_timestamp(record.status_changed_at),
        "balance": record.balance,
        "payment_allowed": record.payment_allowed,
        "template_label": record.template_label,
        "channel": record.channel,
        "counts_toward_dunning": False,
        "amount": record.amount,
        "link_opened_at": _optional_timestamp(record.link_opened_at),
        "paid_at": _optional_timestamp(record.paid_at),
        "paid_amount": paid_amount(record),
        "actions": _actions(record, now),
        "display": {"title": f"On-Demand Balance Notification ({mode_name})", "summary": summary},
        "cursor": encode_cursor(record),
    }


def reply_entry(reply: Reply) -> dict[str, Any]:
    answered = f"{MODE_NAMES[reply.mode]} of {_utc_minute(reply.answered_at)}"
    return {
        "id": reply.id,
        "kind": "patient_reply",
        "guarantor_id": reply.guarantor_id,
        "occurred_at": format_timestamp(reply.occurred_at),
        "address": reply.address,
        "text": reply.text,
        "channel": reply.channel,
        "in_reply_to": {
            "notification_id": reply.notification_id,
            "mode": reply.mode,
            "occurred_at": format_timestamp(reply.answered_at),
        },
        "actions": [
            {
                "id": "record_opt_out",
                "label": "Record an opt-out",
                "action_id": OPT_OUTS_ACTION_ID,
                "step": "submit",
                "payload": {"op": "opt_out", "mode": reply.mode, "address": reply.address},
            }
        ],
        "display": {
            "title": "Patient reply",
            "summary": f"Reply from {reply.address} to the {answered}: \u201c{reply.text}\u201d",
        },
        "cursor": encode_cursor(reply),
    }


def _utc_minute(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _status_sentence(record: NotificationRecord) -> str:
    when = _utc_minute(record.status_changed_at)
    sentence = f"Status: {STATUS_WORDS.get(record.status, record.status)}, as of {when}."
    if record.status in EXPLAINED and record.detail:
        sentence += f" {record.detail}"
    return sentence


def _actions(record: NotificationRecord, now: datetime) -> list[dict[str, str]]:
    actions = []
    if record.request is not None:
        actions.append({"id": "resend", "label": "Resend"})
    if record.link_expires_at is not None and record.link_expires_at > now:
        actions.append({"id": "cancel_link", "label": "Cancel the pay link"})
    return actions


def _payment_sentence(record: NotificationRecord) -> str:
    """ " Paid $45.10, 3 minutes after the text.", and whether the link was opened or cancelled."""
    sentence = ""
    if record.amount is not None:
        sentence += f" Asked for {format_money(Decimal(record.amount))}."
    if record.link_cancelled_by is not None:
        sentence += f" Pay link cancelled by {record.link_cancelled_by}."
    if record.link_opened_at is not None:
        sentence += " Pay link opened."
    if record.paid_at is not None and record.paid_cents is not None:
        minutes = max(0, int((record.paid_at - record.occurred_at).total_seconds() // 60))
        after = f"{minutes} minute{'' if minutes == 1 else 's'}"
        sentence += (
            f" Paid {format_money(Decimal(record.paid_cents) / 100)}, {after} after the "
            f"{MODE_NAMES[record.mode]}."
        )
    return sentence


def _optional_timestamp(moment: datetime | None) -> str | None:
    return format_timestamp(moment) if moment is not None else None
