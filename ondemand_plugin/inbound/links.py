"""Tracked pay links: ``{link_base_url}ondemand/pay/{token}``, served under ``pm_inbound_request``.

A link names its notification by a random token (128 bits). The token is kept nowhere: the
notification keeps its SHA-256, and a request is looked up by the hash of the token it carries,
so the database's comparison of keys says nothing about any real token's characters. The host's
QuickPay link is asked for when the link is opened, with the balance of that moment, so an
expired or cancelled link leads nowhere, and one opened after the balance was paid offers no
payment.

Anyone can reach the route: a token that is malformed or unknown gets a 404 and nothing of its
request is kept. Link previews (a HEAD, or a fetcher that unfurls links in a chat) are answered
a page without counting the link as opened.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import logging
import re
import secrets
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from hookspecs.types import InboundRequest
from ondemand_plugin.boundary.host import Host
from ondemand_plugin.boundary.model import Practice
from ondemand_plugin.clock import utc_now
from ondemand_plugin.errors import OnDemandError
from ondemand_plugin.inbound.requests import PAY_PREFIX, answer
from ondemand_plugin.stores import NotificationRecord, Store

__all__ = ["PAY_PREFIX", "PayLinks", "TrackedLink", "is_preview", "preview_url", "token_hash"]

log = logging.getLogger(__name__)

TEXT_HTML = "text/html; charset=utf-8"
TOKEN_BYTES = 16  # 128 random bits: 22 URL-safe characters
_TOKEN = re.compile(r"[A-Za-z0-9_-]{22,64}")
# User agents of the fetchers that unfurl a link in a message before anyone taps it (iMessage
# sends facebookexternalhit's), compared in lower case.
PREVIEW_AGENTS = (
    "facebookexternalhit",
    "facebot",
    "twitterbot",
    "slackbot",
    "slack-imgproxy",
    "whatsapp",
    "telegrambot",
    "discordbot",
    "linkedinbot",
    "skypeuripreview",
    "bingpreview",
    "googlebot",
    "google-pagerenderer",
    "applebot",
    "pinterestbot",
    "redditbot",
    "embedly",
    "vkshare",
    "snapchat",
    "viber",
    "mattermost-bot",
    "microsoftpreview",
)


class TrackedLink:
    """A new link for a notification: its token goes into the message, its hash into the store."""

    def __init__(self, base_url: str, ttl_seconds: int, now: datetime) -> None:
        self.token = secrets.token_urlsafe(TOKEN_BYTES)
        self.url = f"{base_url}ondemand/{PAY_PREFIX}{self.token}"
        self.hash = token_hash(self.token)
        self.expires_at = now + timedelta(seconds=ttl_seconds)

    def __repr__(self) -> str:
        return f"TrackedLink(expires_at={self.expires_at!r})"


def preview_url(base_url: str) -> str:
    """A stand-in as long as a tracked link, for a preview's count (nothing is made)."""
    return f"{base_url}ondemand/{PAY_PREFIX}{'x' * len(secrets.token_urlsafe(TOKEN_BYTES))}"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def is_preview(request: InboundRequest) -> bool:
    if request.method == "HEAD":
        return True
    agent = (request.header("User-Agent") or "").lower()
    return any(name in agent for name in PREVIEW_AGENTS)


class PayLinks:
    """Answers ``GET`` (and ``HEAD``) ``pay/{token}``."""

    def __init__(self, store: Store, host: Host) -> None:
        self.store = store
        self.host = host

    def handle(self, request: InboundRequest) -> dict[str, Any]:
        if request.method not in ("GET", "HEAD"):
            refused = answer(405, "A pay link takes GET and HEAD only.")
            refused["headers"]["Allow"] = "GET, HEAD"
            return refused
        record = self._record(request.path.removeprefix(PAY_PREFIX))
        if record is None:
            return answer(404, "There is no such pay link.")
        now = utc_now()
        try:
            practice = self.host.practice(record.practice_id)
            if record.link_expires_at is None or record.link_expires_at <= now:
                return _page(410, _expired_page(practice))
            if is_preview(request):
                return _page(200, _preview_page(practice))
            if record.link_opened_at is None:
                self.store.record_link_opened(record.practice_id, record.id, now)
            return self._to_quickpay(record, practice)
        except OnDemandError as error:
            log.warning(
                "Pay link of notification %s: the host could not answer (%s)",
                record.id,
                error.code,
            )
            return _page(503, "<p>The payment page cannot be reached just now. Try again soon.</p>")

    def _record(self, token: str) -> NotificationRecord | None:
        if not _TOKEN.fullmatch(token):
            return None
        wanted = token_hash(token)
        record = self.store.notification_by_link(wanted)
        if record is None or record.link_token_hash is None:
            return None
        return record if hmac.compare_digest(record.link_token_hash, wanted) else None

    def _to_quickpay(self, record: NotificationRecord, practice: Practice) -> dict[str, Any]:
        """303 to the host's QuickPay link for the balance now (or the amount asked, when it is
        still owed); a page saying there is nothing to pay once it was paid."""
        guarantor = self.host.guarantor(record.practice_id, record.guarantor_id)
        if not guarantor.payment_allowed:
            return _page(200, _nothing_due_page(practice))
        amount = guarantor.balance
        if record.amount is not None and Decimal(record.amount) < amount:
            amount = Decimal(record.amount)
        link = self.host.quickpay_link(record.practice_id, record.guarantor_id, amount)
        return {
            "status": 303,
            "headers": {"Location": link, "Cache-Control": "no-store", "Content-Type": TEXT_HTML},
            "body": "",
        }


def _page(status: int, content: str) -> dict[str, Any]:
    body = (
        '<!doctype html>\n<html><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex"><title>Pay link</title></head>'
        f'<body style="font-family:sans-serif">\n{content}\n</body></html>\n'
    )
    return {
        "status": status,
        "headers": {"Content-Type": TEXT_HTML, "Cache-Control": "no-store"},
        "body": body,
    }


def _expired_page(practice: Practice) -> str:
    return (
        f"<h1>{html.escape(practice.name)}</h1>\n<p>This pay link has expired. To pay your "
        f"balance, call {html.escape(practice.name)} at {html.escape(practice.phone)}.</p>"
    )


def _preview_page(practice: Practice) -> str:
    return f"<h1>{html.escape(practice.name)}</h1>\n<p>Pay your balance online.</p>"


def _nothing_due_page(practice: Practice) -> str:
    return (
        f"<h1>{html.escape(practice.name)}</h1>\n<p>There is nothing to pay: your balance is "
        f"settled. Questions? Call {html.escape(practice.phone)}.</p>"
    )
