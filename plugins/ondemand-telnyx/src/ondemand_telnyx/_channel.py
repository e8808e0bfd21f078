"""The ``telnyx`` channel: texts through Telnyx's Messaging API v2.

``POST {base_url}/v2/messages`` with the API key as a bearer token and a JSON body (``to``,
``text``, and ``messaging_profile_id`` or ``from``, with ``webhook_url`` when set); the answer's
``data.id`` is the message's id, which Telnyx's webhooks name again.

Status 429 and 5xx, timeouts and failed connections are worth retrying (429 honours
``Retry-After``); other 4xx are not, and Telnyx's error 40300 ("Blocked due to STOP message")
says the recipient opted out.
"""

from __future__ import annotations

import logging
import time
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from hookspecs.types import (
    DeliveryReceipt,
    OutboundMessage,
    PermanentDeliveryError,
    RecipientOptedOutError,
    TransientDeliveryError,
)
from ondemand_telnyx._settings import TelnyxSettings

log = logging.getLogger(__name__)

NAME = "telnyx"
# Telnyx's error code for "the recipient replied STOP to this sender".
OPTED_OUT_ERROR = "40300"
# Telnyx's statuses of a message just created, as a receipt's.
RECEIPT_STATUS = {
    "queued": "queued",
    "sending": "queued",
    "sent": "sent",
    "delivery_unconfirmed": "sent",
    "delivered": "delivered",
}


def mask(address: str) -> str:
    """A number fit for a log line: enough to tell two apart, not enough to use."""
    return f"{address[:2]}***{address[-4:]}" if len(address) > 6 else "***"


class TelnyxChannel:
    name = NAME
    modes = frozenset({"text"})

    def __init__(self, settings: TelnyxSettings) -> None:
        self.settings = settings
        # The one number every practice texts from, if set: where their STOPs come in.
        self.shared_sender = settings.sender
        self._client = httpx.Client(
            base_url=settings.base_url,
            timeout=settings.timeout_seconds,
            headers={
                "Authorization": f"Bearer {settings.api_key}",
                "User-Agent": "ondemand-telnyx",
            },
        )

    def __repr__(self) -> str:
        return f"TelnyxChannel(base_url={self.settings.base_url!r})"

    def deliver(self, message: OutboundMessage) -> DeliveryReceipt:
        try:
            response = self._client.post("/v2/messages", json=self._body(message))
        except httpx.TransportError as error:
            what = (
                "did not answer in time"
                if isinstance(error, httpx.TimeoutException)
                else ("cannot be reached")
            )
            raise TransientDeliveryError(f"Telnyx {what} ({type(error).__name__}).") from None
        if response.is_error:
            raise self._refusal(response, message)
        data = _data(response)
        message_id = data.get("id")
        status = _first_status(data) or "queued"
        if not isinstance(message_id, str) or status not in RECEIPT_STATUS:
            raise PermanentDeliveryError(
                f"Telnyx answered without a message id or with the status {status!r}."
            )
        log.debug(
            "Telnyx accepted %s for %s as %s", message.notification_id, mask(message.to), message_id
        )
        return DeliveryReceipt(
            status=RECEIPT_STATUS[status],
            provider_message_id=message_id,
            detail=f"Accepted by Telnyx ({status}).",
        )

    def close(self) -> None:
        self._client.close()

    def _body(self, message: OutboundMessage) -> dict[str, str]:
        # Always a number of ours, so that a STOP sent back to it names the practice.
        body = {"to": message.to, "from": self.settings.sender or message.sender}
        body["text"] = message.body
        if self.settings.messaging_profile_id:
            body["messaging_profile_id"] = self.settings.messaging_profile_id
        if self.settings.webhook_url:
            body["webhook_url"] = self.settings.webhook_url
        return body

    def _refusal(self, response: httpx.Response, message: OutboundMessage) -> Exception:
        code, reason = _telnyx_error(response)
        # Telnyx's error details often repeat the number they are about.
        reason = reason.replace(message.to, mask(message.to)).replace(
            self.settings.api_key, "[secret]"
        )
        status = response.status_code
        if status == 429:
            return TransientDeliveryError(
                f"Telnyx is rate limiting (429): {reason}", retry_after=_retry_after(response)
            )
        if status >= 500:
            return TransientDeliveryError(f"Telnyx failed ({status}): {reason}")
        if code == OPTED_OUT_ERROR:
            return RecipientOptedOutError(
                f"Telnyx refused the message: the recipient replied STOP ({code} {reason})."
            )
        return PermanentDeliveryError(f"Telnyx refused the message ({status} {code}): {reason}")


def _data(response: httpx.Response) -> dict[str, Any]:
    try:
        answer = response.json()
    except ValueError:
        return {}
    data = answer.get("data") if isinstance(answer, dict) else None
    return data if isinstance(data, dict) else {}


def _first_status(data: dict[str, Any]) -> str | None:
    to = data.get("to")
    if isinstance(to, list) and to and isinstance(to[0], dict):
        status = to[0].get("status")
        return status if isinstance(status, str) else None
    return None


def _telnyx_error(response: httpx.Response) -> tuple[str | None, str]:
    """The first of Telnyx's ``errors``: its code and its title with the detail."""
    fallback = response.reason_phrase or f"HTTP {response.status_code}"
    try:
        answer = response.json()
    except ValueError:
        return None, fallback
    errors = answer.get("errors") if isinstance(answer, dict) else None
    if not isinstance(errors, list) or not errors or not isinstance(errors[0], dict):
        return None, fallback
    first = errors[0]
    code = first.get("code")
    words = [str(first[key]) for key in ("title", "detail") if first.get(key)]
    return (str(code) if code is not None else None), (": ".join(words) or fallback)


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds, given as seconds or as an HTTP date; None when absent."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None
