"""Sends whose worker stopped mid-delivery: marked ``unknown``, then settled by a status lookup.

A send's history row is claimed (``sending``) before delivery and completed after; the claim
records the channels its route named. A row still ``sending`` past the deadline plus
``MARGIN_SECONDS`` belongs to a worker that died (or hangs): its outcome is unknown. Recovery says
so, then asks those channels, and only those, that offer ``lookup`` (by notification id, since
which of them took it is not recorded before the send completes). It never delivers again: a
message found is ``sent`` (``delivered`` when the channel says it arrived, as the outbox does); a
message every channel of its route is sure it never got is ``failed``; otherwise it stays
``unknown`` until a later lookup or a provider callback. A channel of the route that the
recovering process lacks cannot be asked: the send stays ``unknown``, and its detail names it.

Each pass marks the stuck ``sending`` rows first, with their own query, then looks up the
``unknown`` ones never looked up first, then those looked up longest ago: sends that no channel
can tell about take their turn, and never keep newer ones from being settled.

It runs when a plugin manager is configured (a worker starts), when an idempotency key whose send
is stuck is repeated, for the stuck sends on a history page being read (marked only: a lookup may
be a network call, and the panel must stay fast), and from ``ondemand recover``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import timedelta

import attrs

from hookspecs.types import Channel, DeliveryReceipt, OutboundMessage, StatusLookup
from ondemand_plugin import telemetry
from ondemand_plugin.clock import utc_now
from ondemand_plugin.stores import NotificationRecord, Store

log = logging.getLogger(__name__)

# How long past its deadline a live worker may still be inside a channel's deliver call: a call
# already started is not interrupted when the deadline passes.
MARGIN_SECONDS = 30.0
# Sends marked, and sends looked up, per pass.
BATCH = 1000

UNKNOWN_DETAIL = (
    "The worker sending it stopped before its outcome was recorded, and no channel has said yet "
    "whether it left. It is not sent again by itself: check with the recipient before sending "
    "again."
)
NEVER_LEFT_DETAIL = (
    "The worker sending it stopped mid-delivery, and every channel it was routed to ({channels}) "
    "says it never got the message: it was not sent. Send it again if it is still needed."
)
MISSING_CHANNEL_DETAIL = (
    "The worker sending it stopped before its outcome was recorded. It was routed to {channels}, "
    "but the configuration that looked for it has no {missing} to ask: it is not sent again by "
    "itself. Run ondemand recover with the configuration that has {missing} (--config or "
    "ONDEMAND_CONFIG), or check with the recipient before sending again."
)
CANNOT_TELL = object()
FOUND_DETAIL = "The worker sending it stopped mid-delivery, but {channel} has it ({status})."


@attrs.frozen
class Settlement:
    status: str
    detail: str


class Recovery:
    """``routes`` are the process's own, for sends claimed before routes were recorded;
    ``channels`` every channel it has, by name (by default, those of its routes)."""

    def __init__(
        self,
        store: Store,
        routes: Mapping[str, tuple[Channel, ...]],
        deadline_seconds: float,
        channels: Mapping[str, Channel] | None = None,
    ) -> None:
        self.store = store
        self.routes = routes
        self.deadline_seconds = deadline_seconds
        self.channels = channels if channels is not None else _by_name(routes)

    @property
    def stuck_after_seconds(self) -> float:
        return self.deadline_seconds + MARGIN_SECONDS

    def run(self, older_than_seconds: float | None = None) -> list[NotificationRecord]:
        """Settle the unsettled sends begun more than ``older_than_seconds`` ago (by default:
        the deadline plus the margin). Answers them as they are now."""
        age = self.stuck_after_seconds if older_than_seconds is None else older_than_seconds
        cutoff = utc_now() - timedelta(seconds=age)
        with telemetry.recovery_pass() as span:
            stuck = self.store.sending_notifications(cutoff, BATCH)
            for record in stuck:
                self._say_unknown(record)  # re-read below, with the unknown ones
            unknown = self.store.unknown_notifications(cutoff, BATCH)
            settled = [self.settle(record) for record in unknown]
            span.set(telemetry.MARKED, len(stuck))
            span.set(telemetry.LOOKED_UP, len(unknown))
            span.set(telemetry.SETTLED, sum(record.status != "unknown" for record in settled))
        return settled

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
        if settlement.status == "unknown":
            self.store.record_lookup(record.practice_id, record.id, settlement.detail)
        else:
            self.store.advance_status(
                record.practice_id, record.id, settlement.status, settlement.detail
            )
        return self._reread(record)

    def _mark_unknown(self, record: NotificationRecord) -> NotificationRecord:
        self._say_unknown(record)
        return self._reread(record)

    def _say_unknown(self, record: NotificationRecord) -> None:
        log.warning("Send %s was left unfinished by its worker; its outcome is unknown", record.id)
        self.store.advance_status(record.practice_id, record.id, "unknown", UNKNOWN_DETAIL)

    def _reread(self, record: NotificationRecord) -> NotificationRecord:
        return self.store.notification_by_key(record.practice_id, record.idempotency_key) or record

    def _look_up(self, record: NotificationRecord) -> Settlement:
        """What the channels of the send's route say; ``unknown`` when they cannot tell."""
        route = self._route_of(record)
        message = rebuilt_message(record)
        # A send claimed before routes were recorded may have gone through a channel this
        # process no longer routes to: found settles it, but not found proves nothing.
        sure = bool(route) and record.route_channels is not None
        missing = []
        for name in route:
            channel = self.channels.get(name)
            if channel is None:
                missing.append(name)
                continue
            # A channel without lookup may have delivered the message and cannot say.
            answer = _ask(channel, message) if isinstance(channel, StatusLookup) else CANNOT_TELL
            if isinstance(answer, DeliveryReceipt):
                detail = FOUND_DETAIL.format(channel=name, status=answer.status)
                return Settlement("delivered" if answer.status == "delivered" else "sent", detail)
            sure = sure and answer is None
        if missing:
            return Settlement(
                "unknown",
                MISSING_CHANNEL_DETAIL.format(channels=_names(route), missing=_names(missing)),
            )
        if sure:
            return Settlement("failed", NEVER_LEFT_DETAIL.format(channels=_names(route)))
        return Settlement("unknown", UNKNOWN_DETAIL)

    def _route_of(self, record: NotificationRecord) -> Sequence[str]:
        if record.route_channels is not None:
            return record.route_channels
        return [channel.name for channel in self.routes.get(record.mode, ())]


def _by_name(routes: Mapping[str, tuple[Channel, ...]]) -> dict[str, Channel]:
    return {channel.name: channel for route in routes.values() for channel in route}


def _names(names: Sequence[str]) -> str:
    quoted = list(names)
    if len(quoted) < 2:
        return "".join(quoted)
    return ", ".join(quoted[:-1]) + " and " + quoted[-1]


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
