"""Routing to the built-in channels: offered only when configured, failover between two real
channels of one mode, and many sends through a gateway that fails half its requests."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from conftest import CONTEXT, FIRST_TEXT_OPT_OUT, Build, send_to_mei
from peers.http import Reply
from peers.twilio import TwilioPeer, twilio_error
from peers.webhook import WebhookPeer

from ondemand_plugin.errors import OnDemandError
from ondemand_plugin.testing import channels_of, store_of


@pytest.fixture
def gateway() -> Iterator[TwilioPeer]:
    with TwilioPeer() as peer:
        yield peer


@pytest.fixture
def receiver() -> Iterator[WebhookPeer]:
    with WebhookPeer() as peer:
        yield peer


def history(pm: Any) -> list[dict[str, Any]]:
    [entries] = pm.hook.pm_history_entries(
        guarantor_id="g-mei", context=CONTEXT, before=None, limit=100
    )
    return list(entries)


@pytest.mark.parametrize(
    "failure",
    [Reply(500), twilio_error(400, 21606, "This number cannot send to this country")],
    ids=["failing_until_its_share_runs_out", "refusing_for_good"],
)
def test_when_the_first_channel_fails_the_second_sends_and_history_says_which(
    build: Build, gateway: TwilioPeer, receiver: WebhookPeer, failure: Reply
) -> None:
    gateway.rule = lambda number: failure
    pm, _ = build(
        channels={"text": ["twilio_sms", "webhook"]},
        twilio_sms=gateway.settings(),
        webhook=receiver.settings(),
        deadline_seconds=1.5,
    )
    result = send_to_mei(pm)
    assert result["status"] == "sent"
    assert "webhook" in result["detail"]
    assert gateway.requests and not gateway.created
    if failure.status == 400:
        assert len(gateway.requests) == 1  # a refusal is not retried
    [delivered] = receiver.requests
    assert delivered.json()["notification_id"] == result["notification_id"]
    [entry] = history(pm)
    assert (entry["status"], entry["channel"]) == ("sent", "webhook")


def test_when_every_channel_fails_history_names_the_last_one_tried(
    build: Build, gateway: TwilioPeer, receiver: WebhookPeer
) -> None:
    gateway.rule = lambda number: Reply(503)
    receiver.rule = lambda number: Reply(410)
    pm, _ = build(
        channels={"text": ["twilio_sms", "webhook"]},
        twilio_sms=gateway.settings(),
        webhook=receiver.settings(),
        deadline_seconds=1,
    )
    result = send_to_mei(pm)
    assert result["status"] == "failed"
    assert "twilio_sms kept failing" in result["detail"]
    assert "webhook refused the message" in result["detail"]
    [entry] = history(pm)
    assert (entry["status"], entry["channel"]) == ("failed", "webhook")


def test_many_sends_through_a_gateway_failing_half_its_requests_all_get_through(
    build: Build, gateway: TwilioPeer
) -> None:
    gateway.rule = lambda number: Reply(503) if number % 2 == 0 else None
    pm, _ = build(
        channels={"text": "twilio_sms"}, twilio_sms=gateway.settings(), deadline_seconds=8
    )
    with ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(lambda n: send_to_mei(pm, body=f"Send {n}: {{{{BalanceDue}}}}"), range(24))
        )

    assert [result["status"] for result in results] == ["sent"] * 24
    # Every other request failed and was retried: one message per send, none sent twice.
    assert len(gateway.created) == 24
    assert len(gateway.requests) == 48
    # Sends that ran side by side may each have been the first to the number.
    bodies = (form["Body"].removesuffix(FIRST_TEXT_OPT_OUT) for form in gateway.created.values())
    assert sorted(bodies) == sorted(f"Send {n}: $120.50" for n in range(24))
    store = store_of(pm)
    for sid, form in gateway.created.items():
        record = store.notification_by_provider_id("twilio_sms", sid)
        assert record is not None
        number = int(form["Body"].split(":")[0].removeprefix("Send "))
        assert results[number]["notification_id"] == record.id
    assert {entry["status"] for entry in history(pm)} == {"sent"}


@pytest.mark.parametrize(
    ("mode", "name"),
    [("email", "smtp"), ("text", "twilio_sms"), ("voice", "twilio_voice"), ("text", "webhook")],
)
def test_a_built_in_channel_without_its_settings_is_not_offered(
    build: Build, mode: str, name: str
) -> None:
    with pytest.raises(OnDemandError) as refused:
        build(channels={mode: name})
    assert refused.value.code == "invalid_config"
    assert refused.value.field == f"channels.{mode}"
    assert repr(name) in refused.value.message
    assert "available: outbox" in refused.value.message


def test_a_configured_built_in_channel_is_offered_and_routed(
    build: Build, receiver: WebhookPeer
) -> None:
    pm, _ = build(channels={"voice": "webhook"}, webhook=receiver.settings())
    routes = channels_of(pm)
    assert [channel.name for channel in routes["voice"]] == ["webhook"]
    assert [channel.name for channel in routes["text"]] == ["outbox"]
