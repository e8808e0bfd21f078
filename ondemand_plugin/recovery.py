"""Sends whose worker stopped mid-delivery: marked ``unknown``, then settled by a status lookup.

A send's history row is claimed (``sending``) before delivery and completed after. A row still
``sending`` past the deadline plus ``MARGIN_SECONDS`` belongs to a worker that died (or hangs):
its outcome is unknown. Recovery says so, then asks the mode's channels that offer ``lookup``
(by notification id, since the channel of a send that never completed is not recorded). It never
delivers again: a message found is ``sent`` (``delivered`` when the channel says it arrived, as
the outbox does); a message every channel of the mode is sure it never got is ``failed``;
otherwise it stays ``unknown`` until a later lookup or a provider callback.

It runs when a plugin manager is configured (a worker starts), when an idempotency key whose send
is stuck is repeated, for the stuck sends on a history page being read (marked only: a lookup may
be a network call, and the panel must stay fast), and from ``ondemand recover``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta

import attrs

from hookspecs.types import Channel, DeliveryReceipt, OutboundMessage, StatusLookup
from ondemand_plugin.stores.base import NotificationRecord, Store, utc_now

log = logging.getLogger(__name__)

# How long past its deadline a live worker may still be inside a channel's deliver call: a call
# already started is not interrupted when the deadline passes.
MARGIN_SECONDS = 30.0
# Sends looked at per pass; the oldest first.
BATCH = 1000

UNKNOWN_DETAIL = (
    "The worker sending it stopped before its outcome was recorded, and no channel has said yet "
    "whether it left. It is not sent again by itself: check with the recipient before sending "
    "again."
)
NEVER_LEFT_DETAIL = (
    "The worker sending it stopped mid-delivery, and every channel for {mode} says it never got "
    "the message: it was not sent. Send it again if it is still needed."
)
CANNOT_TELL = object()
FOUND_DETAIL = "The worker sending it stopped mid-delivery, but {channel} has it ({status})."


@attrs.frozen
class Settlement:
    status: str
    detail: str


class Recovery:
    def __init__(
        self,
        store: Store,
        routes: Mapping[str, tuple[Channel, ...]],
        deadline_seconds: float,
    ) -> None:
        self.store = store
        self.routes = routes
        self.deadline_seconds = deadline_seconds

    @property
    def stuck_after_seconds(self) -> float:
        return self.deadline_seconds + MARGIN_SECONDS

    def run(self, older_than_seconds: float | None = None) -> list[NotificationRecord]:
        """Settle the unsettled sends begun more than ``older_than_seconds`` ago (by default:
        the deadline plus the margin). Answers them as they are now."""
        age = self.stuck_after_seconds if older_than_seconds is None else older_than_seconds
        cutoff = utc_now() - timedelta(seconds=age)
        return [self.settle(record) for record in self.store.unsettled_notifications(cutoff, BATCH)]

    def is_stuck(self, record: NotificationRecord) -> bool:
        if record.status != "sending":
            return False
        return record.occurred_at < utc_now() - timedelta(seconds=self.stuck_after_seconds)

    def mark_stuck(self, records: list[NotificationRecord]) -> list[NotificationRecord]:
        """``records`` with the stuck ones marked ``unknown``; no query when none is stuck."""
        return [
            self._mark_unknown(record) if self.is_stuck(record) else record for record in records
        ]

    def settle(self, record: NotificationRecord) -> NotificationRecord:
        """Mark a stuck send ``unknown``, then settle it if its channels can tell."""
        if record.status == "sending":
            record = self._mark_unknown(record)
        if record.status != "unknown":
            return record  # its worker completed it meanwhile
        settlement = self._look_up(record)
        if settlement is None:
            return record
        self.store.advance_status(
            record.practice_id, record.id, settlement.status, settlement.detail
        )
        return self._reread(record)

    def _mark_unknown(self, record: NotificationRecord) -> NotificationRecord:
        log.warning("Send %s was left unfinished by its worker; its outcome is unknown", record.id)
        self.store.advance_status(record.practice_id, record.id, "unknown", UNKNOWN_DETAIL)
        return self._reread(record)

    def _reread(self, record: NotificationRecord) -> NotificationRecord:
        return self.store.notification_by_key(record.practice_id, record.idempotency_key) or record

    def _look_up(self, record: NotificationRecord) -> Settlement | None:
        channels = self.routes.get(record.mode, ())
        message = rebuilt_message(record)
        sure = bool(channels)
        for channel in channels:
            # A channel without lookup may have delivered the message and cannot say.
            answer = _ask(channel, message) if isinstance(channel, StatusLookup) else CANNOT_TELL
            if isinstance(answer, DeliveryReceipt):
                detail = FOUND_DETAIL.format(channel=channel.name, status=answer.status)
                return Settlement("delivered" if answer.status == "delivered" else "sent", detail)
            sure = sure and answer is None
        if sure:
            return Settlement("failed", NEVER_LEFT_DETAIL.format(mode=record.mode))
        return None


def _ask(channel: StatusLookup, message: OutboundMessage) -> object:
    """The channel's answer; ``CANNOT_TELL`` when it raised."""
    try:
        return channel.lookup(message)
    except Exception as error:
        name = getattr(channel, "name", type(channel).__name__)
        log.warning("Channel %s cannot tell what became of %s: %r", name, message, error)
        return CANNOT_TELL


def rebuilt_message(record: NotificationRecord) -> OutboundMessage:
    """The message as far as the history keeps it (the claim keeps the composed text)."""
    result = record.result or {}
    return OutboundMessage(
        notification_id=record.id,
        practice_id=record.practice_id,
        mode=record.mode,  # type: ignore[arg-type]
        to=record.recipient,
        sender="",
        subject=result.get("subject"),
        body=result.get("body", ""),
    )
