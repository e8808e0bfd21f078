"""Telnyx's messaging webhooks, checked and told to the plugin through its public events.

Telnyx signs each webhook with Ed25519: ``telnyx-signature-ed25519`` is the base64 signature of
``f"{telnyx-timestamp}|{raw body}"``, checked with the account's public key. A request whose
timestamp is more than five minutes away from now is refused as well, so a captured request
cannot be replayed later; one replayed within the five minutes changes nothing, as a status
only moves forward and an opt-out recorded twice is one opt-out.

``message.sent`` and ``message.finalized`` carry the message's status (``payload.to[0]
.status``); ``message.received`` is a text to one of our numbers: STOP, START and the other
usual keywords are opt-outs, anything else a reply for staff.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hookspecs.types import DeliveryEvents, DeliveryStatus, InboundRequest, InboundResponse
from ondemand_telnyx._channel import NAME, OPTED_OUT_ERROR, mask

log = logging.getLogger(__name__)

ROUTE_PATH = "telnyx/webhooks"
SIGNATURE_HEADER = "telnyx-signature-ed25519"
TIMESTAMP_HEADER = "telnyx-timestamp"
TOLERANCE_SECONDS = 300
# Telnyx's statuses of a message, as the plugin's delivery statuses.
DELIVERY_STATUS: dict[str, DeliveryStatus] = {
    "queued": "queued",
    "sending": "queued",
    "sent": "sent",
    "delivery_unconfirmed": "sent",
    "delivered": "delivered",
    "delivery_failed": "undelivered",
    "expired": "undelivered",
    "sending_failed": "failed",
}
# The keywords carriers and Telnyx treat as opting out of, or back into, a sender's texts.
OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN_WORDS = frozenset({"START", "UNSTOP", "YES"})

Clock = Callable[[], float]


def signature_problem(
    public_key: Ed25519PublicKey,
    headers: Mapping[str, str],
    body: bytes,
    now: float,
) -> str | None:
    """Why the request is not a fresh one signed by Telnyx, or None when it is."""
    lowered = {name.lower(): value for name, value in headers.items()}
    signature = lowered.get(SIGNATURE_HEADER)
    timestamp = lowered.get(TIMESTAMP_HEADER)
    if not signature or not timestamp:
        return "it is not signed"
    try:
        signed_at = int(timestamp)
        public_key.verify(
            base64.b64decode(signature, validate=True), timestamp.encode() + b"|" + body
        )
    except (ValueError, binascii.Error, InvalidSignature):
        return "its signature does not match"
    if abs(now - signed_at) > TOLERANCE_SECONDS:
        return "it was signed more than five minutes ago"
    return None


def webhook_handler(
    public_key: Ed25519PublicKey, clock: Clock = time.time
) -> Callable[[InboundRequest, DeliveryEvents], InboundResponse]:
    """The route's handler, checking signatures with ``public_key``."""

    def handle(request: InboundRequest, events: DeliveryEvents) -> InboundResponse:
        problem = signature_problem(public_key, request.headers, request.body.encode(), clock())
        if problem is not None:
            log.warning("Refused a Telnyx webhook: %s.", problem)
            return _answer(403, f"Refused: {problem}.")
        try:
            event = json.loads(request.body)["data"]
            kind, payload = event["event_type"], event["payload"]
        except (ValueError, KeyError, TypeError):
            return _answer(400, "Not a Telnyx webhook: the body has no data.event_type.")
        if not isinstance(payload, dict) or not _recipients_are_objects(payload):
            return _answer(400, "Not a Telnyx webhook: data.payload is not a message.")
        occurred_at = _time(event.get("occurred_at"))
        if kind in ("message.sent", "message.finalized"):
            _report_status(payload, occurred_at, events)
        elif kind == "message.received":
            _report_text(payload, occurred_at, events)
        return _answer(200, "")

    return handle


def _report_status(payload: Any, occurred_at: datetime | None, events: DeliveryEvents) -> None:
    message_id = payload.get("id")
    [recipient, *_] = payload.get("to") or [{}]
    status = DELIVERY_STATUS.get(recipient.get("status"))
    if not isinstance(message_id, str) or status is None:
        return
    errors = [error for error in payload.get("errors") or [] if isinstance(error, dict)]
    detail = "; ".join(
        f"{error.get('code', '')} {error.get('title', '')}".strip() for error in errors
    )
    # Telnyx refuses a text to someone who replied STOP with this error, as its API does.
    opted_out = any(str(error.get("code")) == OPTED_OUT_ERROR for error in errors)
    known = events.delivery_status(
        NAME, message_id, status, detail, occurred_at, opted_out=opted_out
    )
    log.debug("Telnyx reports %s as %s (known: %s)", message_id, status, known)


def _report_text(payload: Any, occurred_at: datetime | None, events: DeliveryEvents) -> None:
    address = (payload.get("from") or {}).get("phone_number")
    [ours, *_] = payload.get("to") or [{}]
    sender = ours.get("phone_number")
    text = payload.get("text") or ""
    # Telnyx's id of the text received: a repeat of its webhook changes nothing.
    received_id = payload.get("id") if isinstance(payload.get("id"), str) else None
    if not isinstance(address, str) or not isinstance(sender, str):
        return
    word = text.strip().upper()
    if word in OPT_OUT_WORDS or word in OPT_IN_WORDS:
        opted_out = word in OPT_OUT_WORDS
        events.opt_out(
            NAME, "text", sender, address, opted_out=opted_out, text=text, message_id=received_id
        )
        log.info("Telnyx: %s %s", mask(address), "opted out" if opted_out else "opted back in")
    else:
        events.reply(NAME, sender, address, text, occurred_at, message_id=received_id)


def _recipients_are_objects(payload: dict[str, Any]) -> bool:
    to, sender = payload.get("to") or [], payload.get("from") or {}
    return (
        isinstance(to, list)
        and all(isinstance(one, dict) for one in to)
        and isinstance(sender, dict)
    )


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _answer(status: int, text: str) -> InboundResponse:
    return InboundResponse(
        status=status, headers={"Content-Type": "text/plain; charset=utf-8"}, body=text
    )
