"""Value types and protocols for extension authors: channels and template stores."""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

import attrs

Mode = Literal["email", "text", "voice"]
MODES: tuple[Mode, ...] = ("email", "text", "voice")
RECEIPT_STATUSES = frozenset({"queued", "sent", "delivered"})


@attrs.frozen
class OutboundMessage:
    """One message to deliver. ``html`` and ``subject`` are set for e-mail only.

    ``sender`` is the address or number it comes from; ``sender_name`` the practice's name, for
    an e-mail's From line.
    """

    notification_id: str
    practice_id: str
    mode: Mode
    to: str = attrs.field(repr=False)
    sender: str
    # Kept out of repr, so out of logs: they may name the patient or the balance.
    subject: str | None = attrs.field(repr=False)
    body: str = attrs.field(repr=False)
    html: str | None = attrs.field(default=None, repr=False)
    sender_name: str | None = None


@attrs.frozen
class DeliveryReceipt:
    """What a channel answers once the provider accepted a message."""

    status: str = attrs.field(validator=attrs.validators.in_(RECEIPT_STATUSES))
    provider_message_id: str | None = None
    detail: str = ""


@runtime_checkable
class Channel(Protocol):
    """A way to deliver messages of one or more modes (``email``, ``text``, ``voice``).

    ``deliver`` raises ``TransientDeliveryError`` for failures worth retrying and
    ``PermanentDeliveryError`` for those that are not; anything else counts as permanent.
    """

    name: str
    modes: frozenset[str]

    def deliver(self, message: OutboundMessage) -> DeliveryReceipt: ...


@runtime_checkable
class StatusLookup(Protocol):
    """Optional for a channel: what became of a message it may have been given.

    The plugin asks only about sends whose worker stopped before their outcome was recorded, and
    never delivers them again. ``message`` is rebuilt from the history: ``notification_id``,
    ``practice_id``, ``mode``, ``to``, ``subject`` and ``body`` are as they were; ``sender`` and
    ``html`` are not kept and come empty. Look the message up by its ``notification_id``.

    Answer a ``DeliveryReceipt`` if the provider has the message, and ``None`` only if the
    provider never got it. Raise ``DeliveryError`` when it cannot tell now; the send stays
    ``unknown`` and is asked about again later.
    """

    def lookup(self, message: OutboundMessage) -> DeliveryReceipt | None: ...


class DeliveryError(Exception):
    """Base of the errors a channel raises."""


class TransientDeliveryError(DeliveryError):
    """The provider may accept the message later; ``retry_after`` is its hint, in seconds."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentDeliveryError(DeliveryError):
    """The provider will never accept this message as it is."""


class RecipientOptedOutError(PermanentDeliveryError):
    """The provider refuses because the recipient opted out (for example by replying STOP).

    The plugin records the opt-out and tells the host, so that the address is not tried again.
    """


@attrs.frozen
class Template:
    """An On-Demand template. ``sender_email`` and ``subject`` apply to e-mail only."""

    id: str
    label: str
    mode: Mode
    body: str
    active: bool = True
    sender_email: str | None = None
    subject: str | None = None


@runtime_checkable
class TemplateStore(Protocol):
    """Where a practice's On-Demand templates live. Every call is scoped to one practice."""

    def list_templates(self, practice_id: str) -> list[Template]: ...

    def get_template(self, practice_id: str, template_id: str) -> Template | None: ...

    def save_template(self, practice_id: str, template: Template) -> None: ...

    def delete_template(self, practice_id: str, template_id: str) -> bool: ...


# The TypedDicts of the JSON that crosses a hook, so that ``hookspecs.types`` has every shape.
from hookspecs.shapes import *  # noqa: E402, F403
