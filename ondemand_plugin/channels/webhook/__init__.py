"""The ``webhook`` channel: each message POSTed as JSON to a URL of the host's, signed.

For hosts that deliver messages themselves. The body follows ``contracts/outbound-message.json``;
``X-OnDemand-Timestamp`` is the Unix time of the request and ``X-OnDemand-Signature`` is
``sha256=`` followed by the hex HMAC-SHA256, keyed with ``secret``, of ``f"{timestamp}.{body}"``.
A 2xx answer is a receipt (the answer's JSON ``id`` becomes the provider message id); 429 and
5xx are retried, other answers refuse the message.

Settings under ``webhook``: ``url``, ``secret`` and optionally ``timeout_seconds``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

import attrs
import httpx

from hookspecs import hookimpl
from hookspecs.types import RECEIPT_STATUSES, Channel, DeliveryReceipt, OutboundMessage
from ondemand_plugin.channels import http
from ondemand_plugin.rules.addresses import mask

log = logging.getLogger(__name__)

TIMESTAMP_HEADER = "X-OnDemand-Timestamp"
SIGNATURE_HEADER = "X-OnDemand-Signature"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class WebhookChannel:
    name = "webhook"
    modes = frozenset({"email", "text", "voice"})

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.url: str = settings["url"]
        self._secret: str = settings["secret"]
        self._client = http.client(
            "", float(settings.get("timeout_seconds", http.DEFAULT_TIMEOUT_SECONDS))
        )

    def __repr__(self) -> str:
        return f"WebhookChannel({http.public_url(self.url)!r})"

    def deliver(self, message: OutboundMessage) -> DeliveryReceipt:
        body = json.dumps(attrs.asdict(message), separators=(",", ":")).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature(self._secret, timestamp, body),
        }
        try:
            response = self._client.post(self.url, content=body, headers=headers)
        except httpx.TransportError as error:
            raise http.unreachable("The webhook", error) from None
        if response.is_error:
            reason = http.scrub(response.text[:200], (message.to,), (self._secret,))
            raise http.refusal("The webhook", response, reason or response.reason_phrase)
        log.debug("The webhook accepted %s for %s", message.notification_id, mask(message.to))
        return _receipt(response)

    def close(self) -> None:
        self._client.close()


def _receipt(response: httpx.Response) -> DeliveryReceipt:
    """The host's answer may name its own id and how far the message got."""
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        answer = {}
    status = answer.get("status")
    message_id = answer.get("id")
    return DeliveryReceipt(
        status=status if status in RECEIPT_STATUSES else "queued",
        provider_message_id=str(message_id) if message_id is not None else None,
        detail=f"Accepted by the webhook ({response.status_code}).",
    )


@hookimpl
def ondemand_delivery_channels(config: Mapping[str, Any]) -> list[Channel]:
    settings = config.get("webhook")
    return [WebhookChannel(settings)] if settings else []
