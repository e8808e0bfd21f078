"""A provider's refusal because the recipient opted out (Twilio error 21610): the opt-out is kept
and told to the host, no other channel of the mode is tried, and the send fails saying why."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from conftest import Build, assert_valid, send_to_mei

from hookspecs import (
    DeliveryReceipt,
    OutboundMessage,
    PermanentDeliveryError,
    RecipientOptedOutError,
    hookimpl,
)
from ondemand_plugin.errors import OnDemandError
from ondemand_plugin.testing import store_of

MEI = "+15035550123"


class OptedOutGateway:
    name = "gateway-a"
    modes = frozenset({"text"})

    def __init__(self) -> None:
        self.attempts = 0

    def deliver(self, message: OutboundMessage) -> DeliveryReceipt:
        self.attempts += 1
        raise RecipientOptedOutError("error 21610: the recipient replied STOP")


class RecordingGateway:
    name = "gateway-b"
    modes = frozenset({"text"})

    def __init__(self) -> None:
        self.sent: list[OutboundMessage] = []

    def deliver(self, message: OutboundMessage) -> DeliveryReceipt:
        self.sent.append(message)
        return DeliveryReceipt(status="sent", provider_message_id="b-1")


class Gateways:
    def __init__(self, *channels: Any) -> None:
        self.channels = list(channels)

    @hookimpl
    def ondemand_delivery_channels(self, config: dict[str, Any]) -> list[Any]:
        return self.channels


def test_a_recipient_who_opted_out_with_the_provider_is_not_texted_again(
    build: Build, caplog: pytest.LogCaptureFixture
) -> None:
    refusing, backup = OptedOutGateway(), RecordingGateway()
    pm, host = build(
        named={"gateways": Gateways(refusing, backup)},
        channels={"text": ["gateway-a", "gateway-b"]},
    )
    with caplog.at_level(logging.INFO):
        result = send_to_mei(pm)

    assert result["status"] == "failed"
    assert "opted out" in result["detail"] and "gateway-a" in result["detail"]
    assert refusing.attempts == 1  # permanent: not retried
    assert backup.sent == []  # and not failed over: the recipient said no, not the provider
    assert MEI not in caplog.text

    [told] = host.calls_to("pm_set_opt_out")
    assert (told["practice_id"], told["mode"], told["address"], told["opted_out"]) == (
        "demo",
        "text",
        MEI,
        True,
    )
    assert_valid("opt-out-context", told["context"])
    assert told["context"]["source"] == "provider"
    assert told["context"]["channel"] == "gateway-a"
    assert told["context"]["keyword"] is None

    store = store_of(pm)
    assert store.is_opted_out("demo", "text", MEI)
    [entry] = pm.hook.pm_history_entries(
        guarantor_id="g-mei",
        context={"practice_id": "demo", "user": {"id": "u1", "name": "Amy Front"}},
        before=None,
        limit=5,
    )[0]
    assert entry["status"] == "failed"

    host.guarantors["demo"]["g-mei"]["opt_out"]["text"] = False  # even if the host forgets it
    with pytest.raises(OnDemandError) as refused:
        send_to_mei(pm)
    assert refused.value.code == "opted_out"
    assert refusing.attempts == 1


def test_an_ordinary_permanent_refusal_still_fails_over(build: Build) -> None:
    class Refusing(OptedOutGateway):
        def deliver(self, message: OutboundMessage) -> DeliveryReceipt:
            raise PermanentDeliveryError("error 21211: invalid To number")

    backup = RecordingGateway()
    pm, host = build(
        named={"gateways": Gateways(Refusing(), backup)},
        channels={"text": ["gateway-a", "gateway-b"]},
    )
    assert send_to_mei(pm)["status"] == "sent"
    assert len(backup.sent) == 1
    assert host.calls_to("pm_set_opt_out") == []
