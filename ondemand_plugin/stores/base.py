"""What the plugin keeps, and the interface every storage backend implements."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

import attrs

from hookspecs.types import Template


@attrs.frozen
class AddonChange:
    """One switch of the premium add-on for a practice, kept forever as the audit trail."""

    practice_id: str
    enabled: bool
    changed_by: str
    reason: str | None
    changed_at: datetime


@attrs.frozen
class NotificationRecord:
    """One On-Demand notification: written before delivery, completed after it."""

    id: str
    practice_id: str
    guarantor_id: str
    idempotency_key: str
    request_hash: str
    occurred_at: datetime
    mode: str
    recipient: str = attrs.field(repr=False)
    sent_to_type: str
    sent_to_id: str
    sent_to_name: str
    sent_by_id: str
    sent_by_name: str
    status: str
    status_changed_at: datetime
    balance: str
    payment_allowed: bool
    template_label: str | None
    channel: str | None = None
    provider_message_id: str | None = None
    detail: str = ""
    # The send's answer holds the message, and so the pay link's token: never in a repr.
    result: dict[str, Any] | None = attrs.field(default=None, repr=False)
    # The channels the send's route named when it was claimed, in failover order: the only ones
    # recovery may ask about it. None for a send claimed before routes were recorded.
    route_channels: tuple[str, ...] | None = None
    # When recovery last asked those channels about a send still ``unknown``, in vain.
    looked_up_at: datetime | None = None
    # The amount staff chose (a string decimal); None for the whole balance.
    amount: str | None = None
    # The tracked pay link: the SHA-256 of its token (the token itself is kept nowhere), when it
    # expires (moved to the moment it was cancelled, by ``link_cancelled_by``) and first opened.
    link_token_hash: str | None = attrs.field(default=None, repr=False)
    link_expires_at: datetime | None = None
    link_cancelled_by: str | None = None
    link_opened_at: datetime | None = None
    # The payments attributed to it: when the first landed, and how much they came to, in
    # cents (an integer, so that every backend adds a payment in one atomic UPDATE).
    paid_at: datetime | None = None
    paid_cents: int | None = None
    # What staff asked for (guarantor, Send To, template, subject, body as typed, amount), so
    # that the history's ``resend`` opens the dialog filled in as it was.
    request: dict[str, Any] | None = attrs.field(default=None, repr=False)


@attrs.frozen
class OptOut:
    """A recipient's choice not to be reached by one mode, kept per practice."""

    practice_id: str
    mode: str
    address: str = attrs.field(repr=False)
    opted_out: bool
    source: str
    changed_at: datetime


@attrs.frozen
class ConsentChange:
    """One change of a recipient's consent, whatever its source, kept forever as the ledger a
    compliance officer reads: who or what changed it, when, the words received, and the number
    or address the recipient wrote to."""

    practice_id: str
    mode: str
    address: str = attrs.field(repr=False)
    opted_out: bool
    source: str  # reply, key_press, provider, staff, host
    actor: str  # the channel that brought it, or the member of staff who recorded it
    words: str | None = attrs.field(repr=False)
    sender: str | None
    changed_at: datetime


@attrs.frozen
class Reply:
    """A recipient's reply that was neither an opt-out, an opt-in nor HELP, kept for the
    practice's staff in the history of the guarantor whose notification it answers (the latest
    the practice sent to that address). ``mode`` and ``answered_at`` are that notification's,
    read with the reply."""

    id: str
    practice_id: str
    guarantor_id: str
    notification_id: str
    channel: str
    sender: str
    address: str = attrs.field(repr=False)
    text: str = attrs.field(repr=False)
    occurred_at: datetime
    mode: str
    answered_at: datetime


@attrs.frozen
class Payment:
    """A payment the host reported (``pm_payment_posted``), attributed to a notification.
    ``reference`` is the host's, unique per practice: a payment reported twice counts once."""

    practice_id: str
    guarantor_id: str
    notification_id: str
    amount_cents: int
    paid_at: datetime
    reference: str


# Every backend's notifications table has these columns, in this order: the record's fields.
NOTIFICATION_COLUMNS: tuple[str, ...] = tuple(
    field.name for field in attrs.fields(NotificationRecord)
)


@attrs.frozen
class Completion:
    """How a delivery attempt ended. A provider's callback may have brought the status as far as
    ``status`` or further while the delivery ran: the row then keeps its status, when it changed
    and the detail that explains it, and takes the rest (channel, provider message id, result)."""

    status: str
    detail: str
    channel: str | None
    provider_message_id: str | None
    result: dict[str, Any]


class Store(Protocol):
    """Storage for the add-on switch, templates and notifications. Every read is per practice."""

    def enabled_practices(self) -> frozenset[str]: ...

    def record_addon_change(self, change: AddonChange) -> None: ...

    def addon_log(self, practice_id: str) -> list[AddonChange]: ...

    def list_templates(self, practice_id: str) -> list[Template]: ...

    def get_template(self, practice_id: str, template_id: str) -> Template | None: ...

    def save_template(self, practice_id: str, template: Template) -> None: ...

    def delete_template(self, practice_id: str, template_id: str) -> bool: ...

    def claim_notification(self, record: NotificationRecord) -> NotificationRecord | None:
        """Insert ``record`` unless its practice already used its idempotency key.

        Returns None when inserted, else the record that holds the key. The database enforces
        the key's uniqueness, so this is safe across threads and processes.
        """
        ...

    def release_claim(self, practice_id: str, notification_id: str) -> bool:
        """Delete a claim that is still ``sending``: nothing was handed to a channel, so the
        key is free again at once. False if there is no such claim (it was completed, or is
        another practice's)."""
        ...

    def complete_notification(
        self, practice_id: str, notification_id: str, completion: Completion
    ) -> None:
        """Record how the delivery ended; its status only if that moves it forward."""
        ...

    def notification_by_key(
        self, practice_id: str, idempotency_key: str
    ) -> NotificationRecord | None: ...

    def notification_by_id(
        self, practice_id: str, notification_id: str
    ) -> NotificationRecord | None: ...

    def notification_by_provider_id(
        self, channel: str, provider_message_id: str
    ) -> NotificationRecord | None:
        """The notification a provider's callback is about (provider ids are unique per channel)."""
        ...

    def advance_status(
        self, practice_id: str, notification_id: str, status: str, detail: str
    ) -> bool:
        """Move a notification's status forward (``STATUS_RANK``); False if it would go back."""
        ...

    def unsettled_notifications(
        self, occurred_before: datetime, limit: int
    ) -> list[NotificationRecord]:
        """Notifications still ``sending`` or ``unknown`` begun before a moment, oldest first."""
        ...

    def sending_notifications(
        self, occurred_before: datetime, limit: int
    ) -> list[NotificationRecord]:
        """Notifications still ``sending`` begun before a moment, oldest first."""
        ...

    def unknown_notifications(
        self, occurred_before: datetime, limit: int
    ) -> list[NotificationRecord]:
        """Notifications ``unknown`` begun before a moment: those never looked up first, then
        those looked up longest ago, so that sends no channel can tell about take their turn
        and never keep the others from being looked up."""
        ...

    def record_lookup(self, practice_id: str, notification_id: str, detail: str) -> bool:
        """Note a lookup that left a notification ``unknown``: why (``detail``), and when
        (``looked_up_at``). False if it is no longer ``unknown``."""
        ...

    def practices_that_notified(self, mode: str, address: str) -> list[str]:
        """Practices that sent ``address`` a notification of ``mode``: where a reply belongs."""
        ...

    def set_opt_out(self, opt_out: OptOut) -> None: ...

    def record_consent_change(self, change: ConsentChange) -> None:
        """Add a change to the consent ledger (kept forever, never updated)."""
        ...

    def consent_changes(
        self, practice_id: str, start: datetime | None, end: datetime | None
    ) -> list[ConsentChange]:
        """The practice's ledger, oldest first, from ``start`` (inclusive) to ``end``
        (exclusive), either open."""
        ...

    def notifications_to(
        self, practice_id: str, addresses: tuple[str, ...], since: datetime
    ) -> list[NotificationRecord]:
        """The practice's notifications to any of ``addresses`` begun at ``since`` or later,
        newest first: what pacing counts."""
        ...

    def notifications_between(
        self, practice_id: str, start: datetime | None, end: datetime | None
    ) -> list[NotificationRecord]:
        """The practice's notifications begun from ``start`` (inclusive) to ``end``
        (exclusive), either open, oldest first: the audit's sends."""
        ...

    def is_opted_out(self, practice_id: str, mode: str, address: str) -> bool: ...

    def inbound_message_seen(self, channel: str, message_id: str) -> bool:
        """Whether a message a recipient sent (a STOP) was already acted on."""
        ...

    def record_inbound_message(self, channel: str, message_id: str, handled_at: datetime) -> None:
        """Remember that a recipient's message was acted on; recording it again changes nothing.
        The provider's message ids are unique per channel."""
        ...

    def record_reply(self, reply: Reply) -> None:
        """Keep a reply for its practice's staff."""
        ...

    def latest_notification_to(self, practice_id: str, address: str) -> NotificationRecord | None:
        """The practice's latest notification to ``address``, of any mode: what a reply from
        that address answers."""
        ...

    def reply_history(
        self,
        practice_id: str,
        guarantor_id: str,
        before: tuple[str, str] | None,
        limit: int,
    ) -> list[Reply]:
        """The replies in the guarantor's history, paged as ``history`` pages notifications."""
        ...

    def history(
        self,
        practice_id: str,
        guarantor_id: str,
        before: tuple[str, str] | None,
        limit: int,
    ) -> list[NotificationRecord]:
        """Newest first; ``before`` is the (occurred_at, id) of the last entry already shown."""
        ...

    def notification_by_link(self, token_hash: str) -> NotificationRecord | None:
        """The notification whose tracked link has this token hash (unique; one indexed read)."""
        ...

    def record_link_opened(
        self, practice_id: str, notification_id: str, opened_at: datetime
    ) -> bool:
        """Note the first time the link was opened; False if it was opened before."""
        ...

    def cancel_link(
        self, practice_id: str, notification_id: str, cancelled_by: str, at: datetime
    ) -> bool:
        """Expire a live link now, noting who did; False if it had no live link."""
        ...

    def payment_target(
        self, practice_id: str, guarantor_id: str, now: datetime
    ) -> NotificationRecord | None:
        """The guarantor's latest notification whose link was opened or is still live."""
        ...

    def record_payment(self, payment: Payment) -> bool:
        """Keep a payment and add it to its notification (``paid_at`` set by the first,
        ``paid_amount`` the sum); False, changing nothing, if its reference was recorded before."""
        ...

    def close(self) -> None: ...


def paid_amount(record: NotificationRecord) -> str | None:
    """What the payments attributed to a notification came to, as the contracts say money."""
    if record.paid_cents is None:
        return None
    return f"{Decimal(record.paid_cents) / 100:.2f}"
