"""The part of the Twilio REST API the ``twilio_sms`` and ``twilio_voice`` channels use.

Requests go to ``{base_url}/2010-04-01/Accounts/{account_sid}/{resource}.json`` with basic auth,
so that ``base_url`` can point at any gateway that speaks the same API.

The ``StatusCallback`` of each message or call is the ``status_callback_url`` with the
notification's practice and id added to its query, so that a callback that comes before the
send's completion has recorded the message's SID, or after its worker died, still finds its
notification. Twilio signs the whole URL, query included, so the plugin can trust them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx

from hookspecs.types import (
    DeliveryReceipt,
    OutboundMessage,
    PermanentDeliveryError,
    RecipientOptedOutError,
)
from ondemand_plugin.channels import http
from ondemand_plugin.rules.addresses import mask

log = logging.getLogger(__name__)

# The query parameters of a StatusCallback that name its notification.
CALLBACK_PRACTICE = "practice"
CALLBACK_NOTIFICATION = "notification"
DEFAULT_BASE_URL = "https://api.twilio.com"
# Twilio's error for "the recipient replied STOP to this sender".
OPTED_OUT_ERROR = 21610
# Twilio's statuses for a message or a call, as a receipt's; the others end a delivery.
RECEIPT_STATUS = {
    "accepted": "queued",
    "scheduled": "queued",
    "queued": "queued",
    "sending": "queued",
    "initiated": "queued",
    "ringing": "queued",
    "sent": "sent",
    "in-progress": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "completed": "delivered",
}


class TwilioAccount:
    """One Twilio account's settings and its HTTP client (connections are kept alive)."""

    def __init__(self, provider: str, settings: Mapping[str, Any]) -> None:
        self.provider = provider
        self.account_sid: str = settings["account_sid"]
        self._auth_token: str = settings["auth_token"]
        self.from_: str | None = settings.get("from")
        self.messaging_service_sid: str | None = settings.get("messaging_service_sid")
        self.status_callback_url: str | None = settings.get("status_callback_url")
        self._client = http.client(
            settings.get("base_url", DEFAULT_BASE_URL).rstrip("/"),
            float(settings.get("timeout_seconds", http.DEFAULT_TIMEOUT_SECONDS)),
            auth=(self.account_sid, self._auth_token),
        )

    def __repr__(self) -> str:
        base_url = http.public_url(str(self._client.base_url))
        return f"TwilioAccount({self.account_sid!r}, base_url={base_url!r})"

    def sender(self, message: OutboundMessage) -> dict[str, str]:
        """The account's fixed number if set, else the practice's own number."""
        return {"From": self.from_ or message.sender}

    def create(
        self, resource: str, message: OutboundMessage, form: dict[str, str]
    ) -> DeliveryReceipt:
        """POST a new message or call; its SID and status make the receipt."""
        if self.status_callback_url:
            form["StatusCallback"] = callback_url(self.status_callback_url, message)
        path = f"/2010-04-01/Accounts/{self.account_sid}/{resource}.json"
        try:
            response = self._client.post(path, data=form)
        except httpx.TransportError as error:
            raise http.unreachable(self.provider, error) from None
        if response.is_error:
            raise self._refusal(response, message)
        answer = response.json()
        status = str(answer.get("status", "queued"))
        if status not in RECEIPT_STATUS:
            raise PermanentDeliveryError(f"{self.provider} answered with the status {status!r}.")
        log.debug(
            "%s accepted %s for %s as %s",
            self.provider,
            message.notification_id,
            mask(message.to),
            answer.get("sid"),
        )
        return DeliveryReceipt(
            status=RECEIPT_STATUS[status],
            provider_message_id=answer.get("sid"),
            detail=f"Accepted by {self.provider} ({status}).",
        )

    def _refusal(self, response: httpx.Response, message: OutboundMessage) -> Exception:
        code, text = _twilio_error(response)
        reason = http.scrub(
            f"error {code}: {text}" if code else text, (message.to,), (self._auth_token,)
        )
        if code == OPTED_OUT_ERROR:
            return RecipientOptedOutError(
                f"{self.provider} refused the message: the recipient opted out ({reason})."
            )
        return http.refusal(self.provider, response, reason)

    def close(self) -> None:
        self._client.close()


def callback_url(status_callback_url: str, message: OutboundMessage) -> str:
    """``status_callback_url`` naming ``message``'s notification in its query (after any query
    of its own, so that these come last and win)."""
    parts = urlsplit(status_callback_url)
    names = urlencode(
        {CALLBACK_PRACTICE: message.practice_id, CALLBACK_NOTIFICATION: message.notification_id}
    )
    query = f"{parts.query}&{names}" if parts.query else names
    return urlunsplit(parts._replace(query=query))


def _twilio_error(response: httpx.Response) -> tuple[int | None, str]:
    """Twilio's ``code`` and ``message`` from an error answer, when it is Twilio's JSON."""
    try:
        answer = response.json()
    except ValueError:
        return None, response.reason_phrase or f"HTTP {response.status_code}"
    if not isinstance(answer, dict):
        return None, f"HTTP {response.status_code}"
    code = answer.get("code")
    return (code if isinstance(code, int) else None), str(answer.get("message", ""))
