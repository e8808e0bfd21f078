"""Telnyx's webhooks, signed by the loopback Telnyx with its own Ed25519 key, handed to the
route's handler as the plugin hands them: what is signed right and fresh is told to the
plugin's events; what is unsigned, tampered with, signed by another key or too old is refused
and tells nothing."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hookspecs.types import InboundRequest, InboundResponse
from ondemand_telnyx import ROUTE_PATH, ondemand_inbound_routes
from ondemand_telnyx.testing import TelnyxGateway

MEI = "+15035550123"
PRACTICE_NUMBER = "+15035550101"


class RecordedEvents:
    """``DeliveryEvents`` that keep what they are told."""

    def __init__(self) -> None:
        self.told: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def delivery_status(
        self,
        channel: str,
        provider_message_id: str,
        status: Any,
        detail: str = "",
        occurred_at: datetime | None = None,
        **options: Any,
    ) -> bool:
        self.told.append(
            ("delivery_status", (channel, provider_message_id, status, detail), options)
        )
        return True

    def opt_out(self, channel: str, mode: Any, sender: str, address: str, **options: Any) -> None:
        self.told.append(("opt_out", (channel, mode, sender, address), options))

    def reply(
        self,
        channel: str,
        sender: str,
        address: str,
        text: str,
        occurred_at: Any = None,
        **options: Any,
    ) -> None:
        self.told.append(("reply", (channel, sender, address, text), options))


@pytest.fixture
def gateway() -> Iterator[TelnyxGateway]:
    with TelnyxGateway() as peer:
        yield peer


@pytest.fixture
def events() -> RecordedEvents:
    return RecordedEvents()


def handle(
    gateway: TelnyxGateway, body: str, headers: dict[str, str], events: RecordedEvents
) -> InboundResponse:
    [route] = ondemand_inbound_routes({"telnyx": gateway.settings()})
    assert route.path == ROUTE_PATH
    assert route.methods == frozenset({"POST"})
    url = "https://pm.example.com/plugins/ondemand/" + ROUTE_PATH
    request = InboundRequest("POST", ROUTE_PATH, url, headers, {}, body)
    return route.handler(request, events)


def sent_message(gateway: TelnyxGateway) -> str:
    message_id = "40318f1c-0000-4000-8000-000000000001"
    gateway.messages[message_id] = {"to": MEI, "from": PRACTICE_NUMBER}
    return message_id


@pytest.mark.parametrize(
    ("telnyx_status", "status"),
    [
        ("sent", "sent"),
        ("delivered", "delivered"),
        ("delivery_failed", "undelivered"),
        ("sending_failed", "failed"),
    ],
)
def test_a_message_s_status_is_told_as_a_delivery_status(
    gateway: TelnyxGateway, events: RecordedEvents, telnyx_status: str, status: str
) -> None:
    message_id = sent_message(gateway)
    body = gateway.status_event(message_id, telnyx_status)
    answer = handle(gateway, body, gateway.signed(body), events)
    assert answer.status == 200
    assert events.told == [
        ("delivery_status", ("telnyx", message_id, status, ""), {"opted_out": False})
    ]


def test_a_failure_s_reason_comes_as_the_detail(
    gateway: TelnyxGateway, events: RecordedEvents
) -> None:
    message_id = sent_message(gateway)
    body = gateway.status_event(
        message_id, "delivery_failed", errors=[{"code": "40008", "title": "Undeliverable"}]
    )
    handle(gateway, body, gateway.signed(body), events)
    [(_, (_, _, _, detail), options)] = events.told
    assert (detail, options) == ("40008 Undeliverable", {"opted_out": False})


def test_a_text_refused_for_a_stop_says_the_recipient_opted_out(
    gateway: TelnyxGateway, events: RecordedEvents
) -> None:
    message_id = sent_message(gateway)
    errors = [{"code": "40300", "title": "Blocked due to STOP message"}]
    body = gateway.status_event(message_id, "sending_failed", errors=errors)
    handle(gateway, body, gateway.signed(body), events)
    [(_, (_, _, status, _), options)] = events.told
    assert (status, options) == ("failed", {"opted_out": True})


@pytest.mark.parametrize(
    ("text", "opted_out"),
    [("STOP", True), (" stop ", True), ("Unsubscribe", True), ("START", False)],
)
def test_stop_and_start_are_opt_outs_and_opt_ins(
    gateway: TelnyxGateway, events: RecordedEvents, text: str, opted_out: bool
) -> None:
    body = gateway.received_event(text, sender=MEI, to=PRACTICE_NUMBER)
    assert handle(gateway, body, gateway.signed(body), events).status == 200
    received_id = json.loads(body)["data"]["payload"]["id"]
    assert events.told == [
        (
            "opt_out",
            ("telnyx", "text", PRACTICE_NUMBER, MEI),
            {"opted_out": opted_out, "text": text, "message_id": received_id},
        )
    ]


def test_any_other_text_is_a_reply(gateway: TelnyxGateway, events: RecordedEvents) -> None:
    body = gateway.received_event("Can I pay on Friday?", sender=MEI, to=PRACTICE_NUMBER)
    handle(gateway, body, gateway.signed(body), events)
    [(kind, told, options)] = events.told
    assert (kind, told) == ("reply", ("telnyx", PRACTICE_NUMBER, MEI, "Can I pay on Friday?"))
    assert options == {"message_id": json.loads(body)["data"]["payload"]["id"]}


def refused(gateway: TelnyxGateway, body: str, headers: dict[str, str]) -> RecordedEvents:
    events = RecordedEvents()
    answer = handle(gateway, body, headers, events)
    assert answer.status == 403, answer
    return events


def test_an_unsigned_webhook_is_refused_and_tells_nothing(gateway: TelnyxGateway) -> None:
    body = gateway.received_event("STOP", sender=MEI, to=PRACTICE_NUMBER)
    assert refused(gateway, body, {"Content-Type": "application/json"}).told == []


def test_a_tampered_webhook_is_refused_and_tells_nothing(gateway: TelnyxGateway) -> None:
    body = gateway.received_event("START", sender=MEI, to=PRACTICE_NUMBER)
    headers = gateway.signed(body)
    assert refused(gateway, body.replace("START", "STOP"), headers).told == []


def test_a_webhook_signed_by_another_key_is_refused(gateway: TelnyxGateway) -> None:
    body = gateway.received_event("STOP", sender=MEI, to=PRACTICE_NUMBER)
    stamp = str(int(time.time()))
    forged = Ed25519PrivateKey.generate().sign(stamp.encode() + b"|" + body.encode())
    headers = {
        "telnyx-signature-ed25519": base64.b64encode(forged).decode(),
        "telnyx-timestamp": stamp,
    }
    assert refused(gateway, body, headers).told == []


def test_a_webhook_signed_over_five_minutes_ago_is_refused_as_a_replay(
    gateway: TelnyxGateway,
) -> None:
    body = gateway.received_event("STOP", sender=MEI, to=PRACTICE_NUMBER)
    # The signature is Telnyx's own: only its age gives the replay away.
    old = gateway.signed(body, timestamp=int(time.time()) - 301)
    assert refused(gateway, body, old).told == []
    recent = gateway.signed(body, timestamp=int(time.time()) - 240)
    assert handle(gateway, body, recent, RecordedEvents()).status == 200


@pytest.mark.parametrize(
    "body",
    [
        '{"hello": "world"}',
        '{"data": {"event_type": "message.received", "payload": ["STOP"]}}',
        '{"data": {"event_type": "message.finalized", "payload": {"id": "m", "to": ["+1"]}}}',
    ],
    ids=["no_event", "payload_not_an_object", "recipient_not_an_object"],
)
def test_a_signed_body_that_is_not_a_telnyx_event_is_a_bad_request(
    gateway: TelnyxGateway, events: RecordedEvents, body: str
) -> None:
    assert handle(gateway, body, gateway.signed(body), events).status == 400
    assert events.told == []


def test_without_a_public_key_no_route_is_served(gateway: TelnyxGateway) -> None:
    settings = gateway.settings()
    del settings["public_key"]
    assert ondemand_inbound_routes({"telnyx": settings}) == []
    assert ondemand_inbound_routes({}) == []
