"""The ``webhook`` channel against a receiver on loopback: the body follows its schema, the
signature verifies with the README's snippet, and answers are mapped to receipts and errors."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import FIRST_TEXT_OPT_OUT, Build, assert_valid, send_to_mei
from peers.http import Drop, Reply, Slow
from peers.webhook import WEBHOOK_SECRET, WebhookPeer

from hookspecs import PermanentDeliveryError, TransientDeliveryError
from ondemand_plugin.channels import http
from ondemand_plugin.channels.webhook import WebhookChannel
from ondemand_plugin.errors import OnDemandError
from ondemand_plugin.testing.conformance import sample_message

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


@pytest.fixture
def receiver() -> Iterator[WebhookPeer]:
    with WebhookPeer() as peer:
        yield peer


def readme_verifier() -> Callable[..., bool]:
    """The README's verification snippet, run as a host would paste it."""
    section = README.split("### Verifying webhook signatures", 1)[1].split("\n#", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "the README's webhook section has no verification snippet"
    namespace: dict[str, Any] = {}
    exec(match.group(1), namespace)
    verify: Callable[..., bool] = namespace["verify_ondemand_signature"]
    return verify


def test_each_message_is_posted_as_json_following_its_schema(receiver: WebhookPeer) -> None:
    receipt = WebhookChannel(receiver.settings()).deliver(sample_message("email"))
    [request] = receiver.requests
    assert request.path == "/ondemand/messages"
    assert request.headers["Content-Type"] == "application/json"
    body = request.json()
    assert_valid("outbound-message", body)
    assert body["to"] == "mei.chen@example.com"
    assert body["sender_name"] == "Maple Street Pediatrics"
    assert (receipt.status, receipt.provider_message_id) == ("queued", "host-1")


def test_the_signature_is_an_hmac_of_the_timestamp_and_the_body(receiver: WebhookPeer) -> None:
    WebhookChannel(receiver.settings()).deliver(sample_message("text"))
    [request] = receiver.requests
    timestamp = request.headers["X-OnDemand-Timestamp"]
    signed = timestamp.encode() + b"." + request.body
    expected = hmac.new(WEBHOOK_SECRET.encode(), signed, hashlib.sha256).hexdigest()
    assert request.headers["X-OnDemand-Signature"] == f"sha256={expected}"


def test_the_readmes_snippet_verifies_a_delivery_and_refuses_forgeries(
    receiver: WebhookPeer,
) -> None:
    verify = readme_verifier()
    WebhookChannel(receiver.settings()).deliver(sample_message("text"))
    [request] = receiver.requests
    timestamp = request.headers["X-OnDemand-Timestamp"]
    signature = request.headers["X-OnDemand-Signature"]
    assert verify(WEBHOOK_SECRET, timestamp, signature, request.body) is True
    tampered = request.body.replace(b"120.50", b"0.01")
    assert verify(WEBHOOK_SECRET, timestamp, signature, tampered) is False
    assert verify("another-secret-0123456789", timestamp, signature, request.body) is False
    assert verify(WEBHOOK_SECRET, str(int(timestamp) - 3600), signature, request.body) is False
    assert verify(WEBHOOK_SECRET, "not-a-time", signature, request.body) is False


def test_a_send_through_the_plugin_reaches_the_host_with_the_composed_message(
    build: Build, receiver: WebhookPeer
) -> None:
    pm, _ = build(channels={"text": "webhook"}, webhook=receiver.settings())
    result = send_to_mei(pm, body="You owe {{BalanceDue}}.")
    assert result["status"] == "sent"
    [request] = receiver.requests
    body = request.json()
    assert (body["notification_id"], body["body"]) == (
        result["notification_id"],
        "You owe $120.50." + FIRST_TEXT_OPT_OUT,
    )
    assert body["sender_name"] == "Maple Street Pediatrics"


@pytest.mark.parametrize(
    ("answer", "status", "message_id"),
    [
        (Reply(200, {"id": 42, "status": "delivered"}), "delivered", "42"),
        (Reply(204), "queued", None),
        (Reply(201, ["not", "an", "object"]), "queued", None),
    ],
)
def test_any_2xx_is_a_receipt(
    receiver: WebhookPeer, answer: Reply, status: str, message_id: str | None
) -> None:
    receiver.script = [answer]
    receipt = WebhookChannel(receiver.settings()).deliver(sample_message("voice"))
    assert (receipt.status, receipt.provider_message_id) == (status, message_id)


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Reply(429, None, {"Retry-After": "3"}), TransientDeliveryError),
        (Reply(500), TransientDeliveryError),
        (Reply(503), TransientDeliveryError),
        (Slow(1.0), TransientDeliveryError),
        (Drop(), TransientDeliveryError),
        (Reply(400, {"error": "mei.chen@example.com is unknown"}), PermanentDeliveryError),
        (Reply(404), PermanentDeliveryError),
    ],
    ids=["429", "500", "503", "slow", "no_answer", "400", "404"],
)
def test_failures_are_mapped_and_never_show_the_address_or_the_secret(
    receiver: WebhookPeer, fault: Any, error: type[Exception]
) -> None:
    receiver.script = [fault]
    channel = WebhookChannel(receiver.settings(timeout_seconds=0.3))
    with pytest.raises(error) as raised:
        channel.deliver(sample_message("email"))
    assert not isinstance(raised.value, TransientDeliveryError) or error is TransientDeliveryError
    for text in (str(raised.value), repr(raised.value), repr(channel)):
        assert "mei.chen@example.com" not in text and WEBHOOK_SECRET not in text
    if isinstance(fault, Reply) and fault.status == 429:
        assert isinstance(raised.value, TransientDeliveryError)
        assert raised.value.retry_after == 3.0


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"url": "https://host.example.com/hook"}, "webhook"),
        ({"url": "host.example.com", "secret": WEBHOOK_SECRET}, "webhook.url"),
        ({"url": "https://host.example.com/hook", "secret": "short"}, "webhook.secret"),
    ],
)
def test_bad_webhook_settings_are_an_invalid_config(
    build: Build, settings: dict[str, str], field: str
) -> None:
    with pytest.raises(OnDemandError) as refused:
        build(webhook=settings)
    assert refused.value.code == "invalid_config"
    assert refused.value.field == field
    assert "short" not in refused.value.message


def test_retry_after_may_be_an_http_date() -> None:
    in_an_hour = format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    gone = "Wed, 21 Oct 2015 07:28:00 GMT"
    wait = http.retry_after(httpx.Response(503, headers={"Retry-After": in_an_hour}))
    assert wait is not None and wait > 3000
    assert http.retry_after(httpx.Response(503, headers={"Retry-After": gone})) == 0.0
    assert http.retry_after(httpx.Response(503, headers={"Retry-After": "soon"})) is None


def test_repr_shows_the_url_without_its_password_or_query() -> None:
    channel = WebhookChannel(
        {"url": "https://pm:hunter22@host.example.com:8443/hook?token=abc123", "secret": "s" * 16}
    )
    assert repr(channel) == "WebhookChannel('https://host.example.com:8443/hook')"
