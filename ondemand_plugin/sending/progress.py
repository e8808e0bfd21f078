"""What happens to a notification after it is sent: its status for the dialog's timeline, the
payments the host reports (``pm_payment_posted``), and a link cancelled from the history.

A payment never changes a dunning count (R3): nothing here calls the host.

The timeline is a dashboard, so it answers from the last known state while the database is away:
each worker keeps the status it last recorded (at a submit) or read (a status, resend or
cancel_link step) of at most ``KNOWN_LIMIT`` notifications, the least recently used forgotten
first. Only the host's dashboard steps, for notifications the store had, put one there; nothing
a stranger sends (a pay link, a provider's callback) does.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ondemand_plugin.boundary import contracts
from ondemand_plugin.clock import format_timestamp, utc_now
from ondemand_plugin.errors import (
    ErrorCode,
    InvalidRequest,
    NotFound,
    OnDemandError,
    StoreUnavailable,
)
from ondemand_plugin.stores import NotificationRecord, Payment, Store, paid_amount

__all__ = ["Progress", "status_of"]

log = logging.getLogger(__name__)

KNOWN_LIMIT = 1024


class Progress:
    def __init__(self, store: Store) -> None:
        self.store = store
        # (practice_id, notification_id) -> its status as last known, and when it was.
        self._known: OrderedDict[tuple[str, str], tuple[dict[str, Any], datetime]] = OrderedDict()
        self._lock = threading.Lock()

    def status(self, practice_id: str, payload: object) -> dict[str, Any]:
        """The ``status`` step: one indexed read by primary key, no host hook, so that a host
        can poll it every second or two while the dialog is open. While the database is away,
        the status this worker last knew, marked ``stale`` and ``as_of`` when it knew it."""
        notification_id = _notification_id(payload)
        try:
            return status_of(self._notification(practice_id, notification_id))
        except StoreUnavailable:
            with self._lock:
                known = self._known.get((practice_id, notification_id))
            if known is None:
                raise
            status, as_of = known
            return {**status, "stale": True, "as_of": format_timestamp(as_of)}

    def remember(self, record: NotificationRecord) -> None:
        """Keep ``record``'s status as this worker's last known one: the ``status`` step
        answers it while the database is away."""
        key = (record.practice_id, record.id)
        with self._lock:
            self._known[key] = (status_of(record), utc_now())
            self._known.move_to_end(key)
            while len(self._known) > KNOWN_LIMIT:
                self._known.popitem(last=False)

    def request_of(self, practice_id: str, payload: object) -> dict[str, Any]:
        """What staff asked for in a notification, for ``resend``."""
        record = self._notification(practice_id, _notification_id(payload))
        if record.request is None:
            raise NotFound(
                "This notification was sent before requests were kept, so it cannot be "
                "resent as it was: open the dialog and fill it in.",
                field="notification_id",
            )
        return record.request

    def cancel_link(
        self, practice_id: str, payload: object, context: dict[str, Any]
    ) -> dict[str, Any]:
        """The history's ``cancel_link``: the link expires now, noting who cancelled it."""
        notification_id = _notification_id(payload)
        record = self._notification(practice_id, notification_id)
        user = context["user"]
        if not self.store.cancel_link(
            practice_id, record.id, f"{user['name']} ({user['id']})", utc_now()
        ):
            raise OnDemandError(
                "This notification has no live pay link to cancel: it carried none, or it has "
                "expired or been cancelled already.",
                code=ErrorCode.NOT_FOUND,
                field="notification_id",
            )
        return status_of(self._notification(practice_id, notification_id))

    def payment_posted(self, arguments: dict[str, Any]) -> str | None:
        """Attribute a payment to its notification and keep it; the notification's id, or None
        when the payment followed no On-Demand notification (then nothing is kept)."""
        contracts.check("payment-posted", arguments, _payment_error)
        amount = Decimal(arguments["amount"])
        if amount <= 0:
            raise OnDemandError(
                f"pm_payment_posted: the amount {arguments['amount']!r} must be above 0.00.",
                code=ErrorCode.INVALID_AMOUNT,
                field="amount",
            )
        paid_at = _moment_of(arguments["paid_at"])
        practice_id, guarantor_id = arguments["practice_id"], arguments["guarantor_id"]
        record = self._payment_target(practice_id, guarantor_id, arguments["notification_id"])
        if record is None:
            return None
        recorded = self.store.record_payment(
            Payment(
                practice_id=practice_id,
                guarantor_id=guarantor_id,
                notification_id=record.id,
                amount_cents=int(amount * 100),
                paid_at=paid_at,
                reference=arguments["reference"],
            )
        )
        if not recorded:
            log.info("Payment reported again for notification %s; counted once", record.id)
        return record.id

    def _payment_target(
        self, practice_id: str, guarantor_id: str, notification_id: str | None
    ) -> NotificationRecord | None:
        if notification_id is None:
            return self.store.payment_target(practice_id, guarantor_id, utc_now())
        record = self.store.notification_by_id(practice_id, notification_id)
        if record is None or record.guarantor_id != guarantor_id:
            raise NotFound(
                f"pm_payment_posted: the practice has no notification {notification_id!r} to "
                f"guarantor {guarantor_id!r}. Pass the notification_id the pay link carried, "
                "or None.",
                field="notification_id",
            )
        return record

    def _notification(self, practice_id: str, notification_id: str) -> NotificationRecord:
        """The notification a dashboard step names, remembered as read."""
        record = self.store.notification_by_id(practice_id, notification_id)
        if record is None:
            raise NotFound(
                f"There is no notification {notification_id!r} in this practice.",
                field="notification_id",
            )
        self.remember(record)
        return record


def _notification_id(payload: object) -> str:
    notification_id = payload.get("notification_id") if type(payload) is dict else None
    if type(notification_id) is not str or not notification_id:
        raise InvalidRequest(
            "payload must be {'notification_id': ...}, the id the send's result gave.",
            field="notification_id",
        )
    return notification_id


def status_of(record: NotificationRecord) -> dict[str, Any]:
    """``contracts/send-status.json``."""
    return {
        "notification_id": record.id,
        "status": record.status,
        "status_changed_at": format_timestamp(record.status_changed_at),
        "link_opened_at": _moment(record.link_opened_at),
        "paid_at": _moment(record.paid_at),
        "paid_amount": paid_amount(record),
    }


def _moment(moment: datetime | None) -> str | None:
    return format_timestamp(moment) if moment is not None else None


def _moment_of(text: str) -> datetime:
    # The schema's pattern lets through times that are not on the calendar (2026-02-30).
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except ValueError:
        raise _payment_error("paid_at", f"{text!r} is not a time on the calendar") from None


def _payment_error(path: str, problem: str) -> InvalidRequest:
    return InvalidRequest(
        f"The host's pm_payment_posted call: {path} {problem}. Pass the payment as "
        "contracts/payment-posted.json describes it.",
        field=path,
    )
