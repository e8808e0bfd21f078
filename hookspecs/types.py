"""Value types and protocols for extension authors: channels, template stores, inbound routes."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
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
    Optional: ``lookup`` (``StatusLookup``), ``close()`` (called on ``pm_unconfigure``),
    ``bind(events)`` (``BindsEvents``) and ``shared_sender``, the one number or address the
    channel sends every practice's messages from (a fixed number, a messaging service), if it
    does: replies received there belong to every practice that used the channel.
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


DeliveryStatus = Literal["queued", "sent", "delivered", "undelivered", "failed"]
# In the order a message moves through them; ``undelivered`` and ``failed`` are both final.
DELIVERY_STATUSES: tuple[DeliveryStatus, ...] = (
    "queued",
    "sent",
    "delivered",
    "undelivered",
    "failed",
)


@runtime_checkable
class DeliveryEvents(Protocol):
    """What a channel's inbound route (or its own poller) tells the plugin about its messages.

    The plugin passes an implementation to every ``InboundRoute`` handler, and at start to each
    channel that has ``bind(events)``. Calls are safe from any thread.
    """

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
        """The provider's news of one message it was given, by the id its ``DeliveryReceipt``
        carried. ``status`` is one of ``DELIVERY_STATUSES`` and moves forward only: a
        ``sent`` after ``delivered`` changes nothing. ``detail`` is the provider's reason (an
        error code; never message text). Answers ``False`` when no notification of ``channel``
        has that id yet; the event is then kept for a while and applied if the send's
        completion is written later (a callback can come before it).

        Optional, keyword only: a provider that echoes the message's ``practice_id`` and
        ``notification_id`` back (from ``OutboundMessage``, in a signed callback URL or a
        client reference) names them, so that a send whose completion was never written is
        still found; ``opted_out=True`` says the provider refused the message because the
        recipient opted out, which is recorded as a ``RecipientOptedOutError`` would be."""
        ...

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
        """A STOP (``opted_out=True``) or START (``False``) the provider received at
        ``sender`` (the practice's number or address) from ``address``. Honoured at once: no
        further ``mode`` message goes to ``address`` from a practice that messaged it from
        ``sender``, and the host is told through ``pm_set_opt_out``. ``text`` is the reply as
        received, if any; never logged. ``message_id``, the provider's id of the message
        received (keyword only, optional), makes a repeat or a replay of it change nothing."""
        ...

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
        """Any other reply the provider received at ``sender`` from ``address``: kept for the
        practices that messaged ``address`` from ``sender``, for staff to read. ``message_id``
        as for ``opt_out``."""
        ...


@runtime_checkable
class BindsEvents(Protocol):
    """Optional for a channel: take the plugin's ``DeliveryEvents`` at start, for providers
    that are polled rather than calling back. Called once, before the first delivery."""

    def bind(self, events: DeliveryEvents) -> None: ...


def _upper_methods(methods: str | Iterable[str]) -> frozenset[str]:
    if isinstance(methods, str):
        methods = (methods,)
    return frozenset(method.upper() for method in methods)


def _route_path(path: str) -> str:
    path = path.strip("/")
    if not path:
        raise ValueError("an InboundRoute needs a path, such as 'pigeon/status'")
    return path


@attrs.frozen
class InboundRequest:
    """One HTTP request that reached a route, as the host handed it over.

    ``path`` is what follows ``<prefix>ondemand/`` (``"pigeon/status"``); ``url`` the full URL
    as the caller used it (providers sign it); ``form`` the decoded urlencoded fields (one value
    per name); ``body`` the raw body as text. Its size and encoding are checked before a handler
    sees it; nothing else is: it is a stranger's until its signature is checked.
    """

    method: str
    path: str
    url: str
    headers: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    form: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    body: str = attrs.field(default="", repr=False)

    def header(self, name: str, default: str | None = None) -> str | None:
        """A header's value by its name in any case, or ``default``."""
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return value
        return default


@attrs.frozen
class InboundResponse:
    """What a route answers; the host sends it back as it is."""

    status: int = 200
    headers: Mapping[str, str] = attrs.field(
        factory=lambda: {"Content-Type": "text/plain; charset=utf-8"}
    )
    body: str = ""


@attrs.frozen
class InboundRoute:
    """An HTTP route a plugin serves under ``<prefix>ondemand/<path>``.

    ``handler(request: InboundRequest, events: DeliveryEvents) -> InboundResponse`` checks its
    provider's signature first and refuses (401 or 403) what is not signed right, changing
    nothing. A request with a method not in ``methods`` is answered 405 before it runs.
    """

    path: str = attrs.field(converter=_route_path)
    methods: frozenset[str] = attrs.field(converter=_upper_methods)
    handler: Callable[[InboundRequest, DeliveryEvents], InboundResponse] = attrs.field(repr=False)


# The TypedDicts of the JSON that crosses a hook, so that ``hookspecs.types`` has every shape.
from hookspecs.shapes import *  # noqa: E402, F403
