"""The Telnyx channel against a loopback Telnyx: the channel conformance kit, and what the kit
does not know about Telnyx (its request, its opted-out error, its settings)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from hookspecs.types import (
    Channel,
    DeliveryReceipt,
    DeliveryStatus,
    InboundRequest,
    InboundRoute,
    OutboundMessage,
    RecipientOptedOutError,
)
from ondemand_plugin.testing.conformance import ChannelConformance, FailureKind, sample_message
from ondemand_telnyx import (
    ROUTE_PATH,
    SettingsError,
    TelnyxChannel,
    TelnyxSettings,
    ondemand_inbound_routes,
)
from ondemand_telnyx.testing import API_KEY, PROFILE_ID, TelnyxGateway, opted_out, telnyx_error


@pytest.fixture
def gateway() -> Iterator[TelnyxGateway]:
    with TelnyxGateway() as peer:
        yield peer


def channel_for(gateway: TelnyxGateway, **extra: object) -> TelnyxChannel:
    return TelnyxChannel(TelnyxSettings.read(gateway.settings(**extra)))


class TestTelnyxConformance(ChannelConformance):
    secrets = (API_KEY,)

    @pytest.fixture(autouse=True)
    def _gateway(self, gateway: TelnyxGateway) -> None:
        self.gateway = gateway

    def make_channel(self) -> Channel:
        return channel_for(self.gateway)

    @contextlib.contextmanager
    def provider_fails(self, kind: FailureKind) -> Iterator[None]:
        if kind == "transient":
            answer = (503, None, {})
        else:
            answer = telnyx_error(422, "40310", "Invalid 'to' address", "+15035550123 is invalid")
        self.gateway.rule = lambda number: answer
        yield
        self.gateway.rule = lambda number: None

    @contextlib.contextmanager
    def provider_says_opted_out(self) -> Iterator[None]:
        self.gateway.rule = lambda number: opted_out()
        yield
        self.gateway.rule = lambda number: None

    def inbound_routes(self) -> list[InboundRoute]:
        return ondemand_inbound_routes({"telnyx": self.gateway.settings()})

    def signed_status_request(
        self, message: OutboundMessage, receipt: DeliveryReceipt, status: DeliveryStatus
    ) -> InboundRequest:
        telnyx_status = {"undelivered": "delivery_failed", "failed": "sending_failed"}
        message_id = receipt.provider_message_id or ""
        return self._webhook(
            self.gateway.status_event(message_id, telnyx_status.get(status, status))
        )

    def signed_stop_request(self, message: OutboundMessage) -> InboundRequest:
        return self._webhook(self.gateway.received_event("STOP", message.to, message.sender))

    def _webhook(self, body: str) -> InboundRequest:
        url = "https://pm.example.com/plugins/ondemand/" + ROUTE_PATH
        return InboundRequest("POST", ROUTE_PATH, url, self.gateway.signed(body), {}, body)


def test_a_text_is_posted_with_the_bearer_key_and_the_profile(gateway: TelnyxGateway) -> None:
    receipt = channel_for(gateway, webhook_url="https://pm.example.com/hook").deliver(
        sample_message("text")
    )
    [request] = gateway.requests
    assert request == {
        "to": "+15035550123",
        "from": "+15035550101",
        "text": sample_message("text").body,
        "messaging_profile_id": PROFILE_ID,
        "webhook_url": "https://pm.example.com/hook",
    }
    assert receipt.status == "queued"
    assert receipt.provider_message_id in gateway.messages


def test_a_from_number_is_every_practice_s_sender(gateway: TelnyxGateway) -> None:
    settings = {**gateway.settings(), "from": "+15035550199"}
    del settings["messaging_profile_id"]
    channel = TelnyxChannel(TelnyxSettings.read(settings))
    channel.deliver(sample_message("text"))
    assert gateway.requests[0]["from"] == "+15035550199"
    assert "messaging_profile_id" not in gateway.requests[0]
    assert channel.shared_sender == "+15035550199"


def test_a_recipient_who_replied_stop_is_an_opted_out_error(gateway: TelnyxGateway) -> None:
    gateway.script = [opted_out()]
    with pytest.raises(RecipientOptedOutError, match="replied STOP"):
        channel_for(gateway).deliver(sample_message("text"))


def test_rate_limiting_is_transient_with_telnyx_s_retry_after(gateway: TelnyxGateway) -> None:
    gateway.script = [(429, None, {"Retry-After": "7"})]
    with pytest.raises(Exception) as error:
        channel_for(gateway).deliver(sample_message("text"))
    assert getattr(error.value, "retry_after", None) == 7.0


def test_a_wrong_key_is_refused_for_good(gateway: TelnyxGateway) -> None:
    channel = channel_for(gateway, api_key="KEY-wrong")
    with pytest.raises(Exception, match=r"Telnyx refused the message \(401 10009\)"):
        channel.deliver(sample_message("text"))


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({}, "api_key"),
        ({"api_key": "K", "public_key": "not a key"}, "public_key"),
        ({"api_key": "K", "from": ""}, "from"),
        ({"api_key": "K", "timeout_seconds": "soon"}, "timeout_seconds"),
    ],
)
def test_bad_settings_are_refused_naming_the_setting(
    settings: dict[str, object], named: str
) -> None:
    with pytest.raises(SettingsError, match=f"telnyx setting {named}"):
        TelnyxSettings.read(settings)


def test_the_api_key_stays_out_of_repr(gateway: TelnyxGateway) -> None:
    settings = TelnyxSettings.read(gateway.settings())
    assert API_KEY not in repr(settings) + repr(TelnyxChannel(settings))
