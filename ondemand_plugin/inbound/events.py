"""The plugin's ``DeliveryEvents``: what channels' routes and pollers report, applied to the store.

A delivery status finds its notification by the channel and the provider's message id that the
send's completion recorded. A callback can overtake the completion (the provider calls back
before its own answer to the send has been read), so an event for an id not known yet is kept
here, in this worker's memory, for ``PENDING_SECONDS`` (at most ``PENDING_LIMIT`` ids), and
applied when a completion records that id. A provider that echoes the notification back (Twilio
puts it in the callback URL's query, which it signs) may name it with ``practice_id`` and
``notification_id``: that finds a send whose completion never came, in any worker.

Replies belong to the practices that messaged the address from the sender the provider received
them at: the channel's ``shared_sender`` when it has one (a number or service every practice sends
from), else each practice's own number or address for the mode. An opt-out belongs to every
practice (with the add-on) that sends from that sender, whether or not it messaged the address yet.
Each reply is read (``rules.opt_outs.read_reply``): one that asks to stop or to start again changes
the opt-out and is confirmed by one text, HELP is answered, and any other is kept for staff.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

import attrs

from hookspecs.types import (
    DELIVERY_STATUSES,
    MODES,
    Channel,
    DeliveryStatus,
    Mode,
    OutboundMessage,
)
from ondemand_plugin.boundary.host import Host
from ondemand_plugin.boundary.model import Practice
from ondemand_plugin.clock import utc_now
from ondemand_plugin.errors import OnDemandError
from ondemand_plugin.inbound.answers import help_text, opted_in_text, opted_out_text
from ondemand_plugin.logsafe import summary
from ondemand_plugin.rules.addresses import mask, normalize_phone, practice_region
from ondemand_plugin.rules.opt_outs import OptOuts, read_reply
from ondemand_plugin.stores import NotificationRecord, Reply, Store

log = logging.getLogger(__name__)

PENDING_SECONDS = 600.0
PENDING_LIMIT = 1024
# The provider's statuses as the history's: a message queued at the provider has left.
HISTORY_STATUS: dict[str, str] = {
    "queued": "sent",
    "sent": "sent",
    "delivered": "delivered",
    "undelivered": "undelivered",
    "failed": "failed",
}


@attrs.frozen
class _Pending:
    status: DeliveryStatus
    detail: str
    opted_out: bool
    expires: float


class PluginEvents:
    """``hookspecs.DeliveryEvents`` over the plugin's store, opt-outs and host."""

    def __init__(
        self,
        store: Store,
        host: Host,
        opt_outs: OptOuts,
        channels: Mapping[str, Channel],
        clock: Callable[[], float] = time.monotonic,
        *,
        text_route: Sequence[Channel] = (),
    ) -> None:
        self.store = store
        self.host = host
        self.opt_outs = opt_outs
        self.channels = channels
        self.text_route = tuple(text_route)
        self.clock = clock
        self._pending: OrderedDict[tuple[str, str], list[_Pending]] = OrderedDict()
        self._lock = threading.Lock()

    # Delivery statuses

    def delivery_status(
        self,
        channel: str,
        provider_message_id: str,
        status: DeliveryStatus,
        detail: str = "",
        occurred_at: datetime | None = None,
        *,
        practice_id: str | None = None,
        notification_id: str | None = None,
        opted_out: bool = False,
    ) -> bool:
        if status not in DELIVERY_STATUSES:
            raise ValueError(
                f"Channel {channel!r} reported the status {status!r}; report one of "
                f"{', '.join(DELIVERY_STATUSES)}."
            )
        named = (practice_id, notification_id) if practice_id and notification_id else None
        record = self._notification(channel, provider_message_id, named)
        if record is None:
            if named is None:
                self._keep(channel, provider_message_id, _Pending(status, detail, opted_out, 0))
            return False
        self._apply(record, channel, status, detail, opted_out)
        return True

    def completed(self, channel: str, provider_message_id: str) -> None:
        """A send's completion recorded ``provider_message_id``: apply what came before it."""
        with self._lock:
            events = self._pending.pop((channel, provider_message_id), [])
        if not events:
            return
        record = self.store.notification_by_provider_id(channel, provider_message_id)
        if record is None:
            return
        for event in events:
            if event.expires >= self.clock():
                self._apply(record, channel, event.status, event.detail, event.opted_out)

    def pending_count(self) -> int:
        with self._lock:
            return len(self._pending)

    def _notification(
        self, channel: str, provider_message_id: str, named: tuple[str, str] | None
    ) -> NotificationRecord | None:
        """By the recorded id; else, when the provider named it, by the practice and id, unless
        that send was completed through another channel or message."""
        record = self.store.notification_by_provider_id(channel, provider_message_id)
        if record is None and named is not None:
            record = self.store.notification_by_id(*named)
            if record is not None and (
                record.provider_message_id is not None or record.channel not in (None, channel)
            ):
                log.info(
                    "A %s status for notification %s came from another message than the one "
                    "that sent it; ignored",
                    channel,
                    record.id,
                )
                return None
        if record is None:
            log.info("A %s status about a message no notification has; kept for now", channel)
            return None
        if named is not None and named != (record.practice_id, record.id):
            log.warning(
                "A %s status names another notification than %s, which has its message id; ignored",
                channel,
                record.id,
            )
            return None
        return record

    def _apply(
        self,
        record: NotificationRecord,
        channel: str,
        status: DeliveryStatus,
        detail: str,
        opted_out: bool,
    ) -> None:
        history_status = HISTORY_STATUS[status]
        advanced = self.store.advance_status(record.practice_id, record.id, history_status, detail)
        log.info(
            "Notification %s %s %s (reported by %s)",
            record.id,
            "is now" if advanced else "stays",
            history_status if advanced else record.status,
            channel,
        )
        # Only the report that brought the outcome tells of the opt-out: the same report again,
        # after the recipient opted back in, must not opt them out once more.
        if advanced and opted_out:
            self.opt_outs.change(
                record.practice_id,
                record.mode,
                record.recipient,
                True,
                source="provider",
                keyword=None,
                channel=channel,
            )

    def _keep(self, channel: str, provider_message_id: str, event: _Pending) -> None:
        key = (channel, provider_message_id)
        now = self.clock()
        with self._lock:
            self._drop_expired(now)
            self._pending.setdefault(key, []).append(
                attrs.evolve(event, expires=now + PENDING_SECONDS)
            )
            self._pending.move_to_end(key)
            while len(self._pending) > PENDING_LIMIT:
                self._pending.popitem(last=False)
        # The completion may have been written between the look-up and now: apply it then.
        if self.store.notification_by_provider_id(channel, provider_message_id) is not None:
            self.completed(channel, provider_message_id)

    def _drop_expired(self, now: float) -> None:
        while self._pending:
            key, events = next(iter(self._pending.items()))
            if events[-1].expires >= now:
                return
            del self._pending[key]

    # Opt-outs and replies

    def opt_out(
        self,
        channel: str,
        mode: Mode,
        sender: str,
        address: str,
        opted_out: bool = True,
        source: str = "reply",
        text: str | None = None,
        *,
        message_id: str | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(
                f"Channel {channel!r} reported an opt-out of {mode!r}; use one of "
                f"{', '.join(MODES)}."
            )
        if self._seen(channel, message_id):
            return
        self._change(channel, (mode,), sender, address, opted_out, source, text)
        self._remember(channel, message_id)

    def reply(
        self,
        channel: str,
        sender: str,
        address: str,
        text: str,
        occurred_at: datetime | None = None,
        *,
        message_id: str | None = None,
    ) -> None:
        if self._seen(channel, message_id):
            return
        known = self.channels.get(channel)
        modes = tuple(sorted(known.modes)) if known is not None else MODES
        # A channel reports the keywords it knows as opt-outs; the plugin reads every other
        # reply too, so that "stop texting me" counts through any channel.
        meaning = read_reply(text)
        if meaning in ("opt_out", "opt_in"):
            self._change(channel, modes, sender, address, meaning == "opt_out", "reply", text)
        elif meaning == "help":
            practices = self._practices_messaging(channel, modes, sender, address, any_sent=True)
            self._answer(channel, sender, address, practices, help_text)
        else:
            at = occurred_at or utc_now()
            for practice_id in self._practices_messaging(channel, modes, sender, address):
                self._keep_reply(practice_id, channel, sender, address, text, at)
        self._remember(channel, message_id)

    def _keep_reply(
        self, practice_id: str, channel: str, sender: str, address: str, text: str, at: datetime
    ) -> None:
        """Keep a reply in the history of the guarantor whose notification it answers: the
        latest the practice sent to that address (the practice messaged it, so there is one)."""
        answered = self.store.latest_notification_to(practice_id, address)
        if answered is None:
            return
        reply = Reply(
            id=new_reply_id(),
            practice_id=practice_id,
            guarantor_id=answered.guarantor_id,
            notification_id=answered.id,
            channel=channel,
            sender=sender,
            address=address,
            text=text,
            occurred_at=at,
            mode=answered.mode,
            answered_at=answered.occurred_at,
        )
        self.store.record_reply(reply)
        log.info("A reply from %s kept for practice %s", mask(address), practice_id)

    def _change(
        self,
        channel: str,
        modes: tuple[str, ...],
        sender: str,
        address: str,
        opted_out: bool,
        source: str,
        text: str | None,
    ) -> None:
        # An opt-out counts for the sender whether or not the plugin ever sent from it: a STOP
        # to the practice's number must hold for the first on-demand text too.
        practices = self._practices_messaging(channel, modes, sender, address, any_sent=True)
        keyword = text.strip().upper() if text else None
        for practice_id in practices:
            for mode in modes:
                self.opt_outs.change(
                    practice_id,
                    mode,
                    address,
                    opted_out,
                    source=source,
                    keyword=keyword,
                    channel=channel,
                    words=text,
                    sender=sender,
                )
        if source == "reply" and "text" in modes:
            self._answer(
                channel,
                sender,
                address,
                practices,
                opted_out_text if opted_out else opted_in_text,
            )

    def _answer(
        self,
        channel: str,
        sender: str,
        address: str,
        practice_ids: list[str],
        compose: Callable[[list[Practice]], str],
    ) -> None:
        """Text the recipient one answer (a confirmation, HELP's) through the channel the
        reply came by when texts are routed through it, else through the first channel texts
        are routed through (a channel that only hears replies sends nothing). A provider that
        answers its keywords itself refuses ours as opted out: the recipient then has the
        provider's answer, and the refusal is only logged."""
        known = self.channels.get(channel)
        if known not in self.text_route:
            known = self.text_route[0] if self.text_route else None
        practices = [self._practice(practice_id) for practice_id in practice_ids]
        named = [practice for practice in practices if practice is not None]
        if known is None or "text" not in known.modes or not named:
            return
        message = OutboundMessage(
            notification_id=f"answer-{uuid.uuid4().hex}",
            practice_id=named[0].id,
            mode="text",
            to=address,
            sender=sender,
            subject=None,
            body=compose(named),
        )
        try:
            known.deliver(message)
        except Exception as error:
            log.warning(
                "The answer to a reply from %s was not sent through %s: %s",
                mask(address),
                channel,
                summary(error, addresses=(address,)),
            )

    def _practice(self, practice_id: str) -> Practice | None:
        try:
            return self.host.practice(practice_id)
        except OnDemandError:
            return None

    def _seen(self, channel: str, message_id: str | None) -> bool:
        """A provider's message acted on before: a repeat (or a replay) changes nothing, or a
        replayed STOP would undo the START that came after it."""
        if message_id and self.store.inbound_message_seen(channel, message_id):
            log.info(
                "Message %s of %s was acted on before; this repeat changes nothing",
                message_id,
                channel,
            )
            return True
        return False

    def _remember(self, channel: str, message_id: str | None) -> None:
        # Recorded once acted on, not before: a worker that dies in between leaves the message to
        # be acted on when the provider sends it again, rather than lost.
        if message_id:
            self.store.record_inbound_message(channel, message_id, utc_now())

    def _practices_messaging(
        self,
        channel: str,
        modes: tuple[str, ...],
        sender: str,
        address: str,
        *,
        any_sent: bool = False,
    ) -> list[str]:
        """The practices that messaged ``address`` from ``sender``; with ``any_sent``, every
        enabled practice that sends from ``sender`` too, whether or not it messaged them."""
        shared = getattr(self.channels.get(channel), "shared_sender", None)
        candidates: list[str] = []
        for mode in modes:
            candidates.extend(self.store.practices_that_notified(mode, address))
        if any_sent:
            candidates.extend(sorted(self.store.enabled_practices()))
        practices: list[str] = []
        for practice_id in dict.fromkeys(candidates):
            practice = self._practice(practice_id)
            if practice is None:
                continue  # a practice the host no longer knows cannot message anyone
            for mode in modes:
                sends_from = (
                    shared if isinstance(shared, str) and shared else own_sender(practice, mode)
                )
                if sends_from and _same_sender(sends_from, sender, practice):
                    practices.append(practice_id)
                    break
        if not practices:
            log.info("A message from %s to a sender no practice used for them", mask(address))
        return practices


def own_sender(practice: Practice, mode: str) -> str | None:
    """The practice's own number or address for ``mode``, as the send flow gives it a channel."""
    if mode == "email":
        return practice.sender_email
    return practice.text_from or practice.phone


def _same_sender(recorded: str, reported: str, practice: Practice) -> bool:
    if "@" in recorded:
        return recorded.lower() == reported.lower()
    region = practice_region(practice.phone)
    try:
        return normalize_phone(recorded, region, for_text=False) == normalize_phone(
            reported, region, for_text=False
        )
    except OnDemandError:
        return recorded == reported


def new_reply_id() -> str:
    return "rpl_" + secrets.token_hex(12)
