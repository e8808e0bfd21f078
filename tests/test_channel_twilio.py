"""The ``twilio_sms`` and ``twilio_voice`` channels against a gateway on loopback that speaks the
Twilio API: what they send, and how each kind of failure is mapped."""

from __future__ import annotations

from collections.abc import Iterator

import attrs
import pytest
from conftest import FIRST_TEXT_OPT_OUT, Build, send_to_mei
from peers.http import Drop, HttpPeer, Reply, Slow
from peers.twilio import ACCOUNT_SID, AUTH_TOKEN, TwilioPeer, twilio_error
from peers.twilio_signature import sign

from hookspecs import PermanentDeliveryError, RecipientOptedOutError, TransientDeliveryError
from ondemand_plugin.channels.twilio.account import callback_url
from ondemand_plugin.channels.twilio.sms import TwilioSmsChannel
from ondemand_plugin.channels.twilio.voice import TwilioVoiceChannel, twiml
from ondemand_plugin.errors import OnDemandError
from ondemand_plugin.testing import channels_of, store_of
from ondemand_plugin.testing.conformance import sample_message

CALLBACK_URL = "https://host.example.com/ondemand/twilio/status"
KEYPRESS_URL = "https://host.example.com/ondemand/twilio/keypress"
MESSAGES = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
CALLS = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"


@pytest.fixture
def gateway() -> Iterator[TwilioPeer]:
    with TwilioPeer() as peer:
        yield peer


def test_a_text_is_posted_to_the_messages_api_with_basic_auth(gateway: TwilioPeer) -> None:
    channel = TwilioSmsChannel(gateway.settings(status_callback_url=CALLBACK_URL))
    receipt = channel.deliver(sample_message("text"))
    [request] = gateway.requests
    assert request.path == MESSAGES
    assert request.form == {
        "To": "+15035550123",
        "Body": sample_message("text").body,
        "From": "+15035550101",
        "StatusCallback": CALLBACK_URL + "?practice=demo&notification=ntf_conformance0001",
    }
    assert receipt.status == "queued"
    assert receipt.provider_message_id in gateway.created


def test_a_messaging_service_wins_over_a_number_and_from_over_the_practices(
    gateway: TwilioPeer,
) -> None:
    service = "MG" + "f" * 32
    TwilioSmsChannel(
        gateway.settings(messaging_service_sid=service, **{"from": "+15005550006"})
    ).deliver(sample_message("text"))
    TwilioSmsChannel(gateway.settings(**{"from": "+15005550006"})).deliver(sample_message("text"))
    first, second = (request.form for request in gateway.requests)
    assert first["MessagingServiceSid"] == service and "From" not in first
    assert second["From"] == "+15005550006"
    assert "StatusCallback" not in second


def test_a_text_sent_through_the_plugin_records_the_channel_and_twilios_sid(
    build: Build, gateway: TwilioPeer
) -> None:
    pm, _ = build(channels={"text": "twilio_sms"}, twilio_sms=gateway.settings())
    result = send_to_mei(pm, body="Hi {{GuarantorFirstName}}, you owe {{BalanceDue}}.")
    assert result["status"] == "sent"
    [sid] = gateway.created
    assert gateway.created[sid]["Body"] == "Hi Mei, you owe $120.50." + FIRST_TEXT_OPT_OUT
    store = store_of(pm)
    record = store.notification_by_provider_id("twilio_sms", sid)
    assert record is not None and record.id == result["notification_id"]
    [entries] = pm.hook.pm_history_entries(
        guarantor_id="g-mei", context={"practice_id": "demo", "user": {"id": "u", "name": "U"}},
        before=None, limit=1,
    )  # fmt: skip
    assert entries[0]["channel"] == "twilio_sms"


def test_a_call_says_the_voice_message_escaped_and_without_a_link(
    build: Build, gateway: TwilioPeer
) -> None:
    settings = gateway.settings(status_callback_url=CALLBACK_URL)
    pm, host = build(channels={"voice": "twilio_voice"}, twilio_voice=settings)
    host.practices["demo"]["name"] = "Maple & Oak <Pediatrics>"
    result = send_to_mei(
        pm, mode="voice", body="{{PracticeName}}: you owe {{BalanceDue}}. Call {{PracticePhone}}."
    )
    assert result["status"] == "sent"
    [request] = gateway.requests
    assert request.path == CALLS
    assert request.form["Twiml"] == (
        "<Response><Say>Maple &amp; Oak &lt;Pediatrics&gt;: you owe $120.50. "
        "Call +15035550100.</Say>"
        f'<Gather numDigits="1" timeout="5" action="{KEYPRESS_URL}" method="POST">'
        "<Say>To stop these calls, press 9 now.</Say></Gather></Response>"
    )
    assert request.form["To"] == "+15035550123"
    assert request.form["From"] == "+15035550101"
    assert request.form["StatusCallback"] == (
        f"{CALLBACK_URL}?practice=demo&notification={result['notification_id']}"
    )


@pytest.mark.parametrize(
    ("configured", "called"),
    [
        (CALLBACK_URL, CALLBACK_URL + "?practice=demo&notification=ntf_1"),
        (CALLBACK_URL + "?", CALLBACK_URL + "?practice=demo&notification=ntf_1"),
        (
            CALLBACK_URL + "?site=west&k=a%2Fb",
            CALLBACK_URL + "?site=west&k=a%2Fb&practice=demo&notification=ntf_1",
        ),
        (
            "https://host.example.com:8443/cb#top",
            "https://host.example.com:8443/cb?practice=demo&notification=ntf_1#top",
        ),
    ],
)
def test_the_status_callback_url_names_the_notification_after_the_hosts_own_query(
    configured: str, called: str
) -> None:
    message = attrs.evolve(sample_message("text"), notification_id="ntf_1")
    assert callback_url(configured, message) == called


def test_the_notifications_names_are_encoded_in_the_status_callback_url() -> None:
    message = attrs.evolve(
        sample_message("text"), practice_id="north & co/2", notification_id="n 1"
    )
    assert callback_url(CALLBACK_URL, message) == (
        CALLBACK_URL + "?practice=north+%26+co%2F2&notification=n+1"
    )


def test_twiml_escapes_what_xml_would_read_as_markup() -> None:
    assert twiml("a < b & c > d") == "<Response><Say>a &lt; b &amp; c &gt; d</Say></Response>"


def test_429_is_transient_with_twilios_retry_after(gateway: TwilioPeer) -> None:
    gateway.script = [Reply(429, {"code": 20429, "message": "Too many"}, {"Retry-After": "2"})]
    with pytest.raises(TransientDeliveryError) as raised:
        TwilioSmsChannel(gateway.settings()).deliver(sample_message("text"))
    assert raised.value.retry_after == 2.0
    assert "429" in str(raised.value)


def test_after_a_429_the_plugin_retries_no_sooner_than_asked_and_sends(
    build: Build, gateway: TwilioPeer
) -> None:
    gateway.script = [Reply(429, None, {"Retry-After": "1"})]
    pm, _ = build(channels={"text": "twilio_sms"}, twilio_sms=gateway.settings())
    assert send_to_mei(pm)["status"] == "sent"
    assert len(gateway.requests) == 2
    assert len(gateway.created) == 1


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        (Reply(500), "failed (500)"),
        (Reply(503), "failed (503)"),
        (Slow(1.0), "did not answer in time"),
        (Drop(), "cannot be reached"),
    ],
    ids=["500", "503", "slow", "no_answer"],
)
def test_server_errors_slowness_and_silence_are_transient(
    gateway: TwilioPeer, fault: Reply | Slow | Drop, words: str
) -> None:
    gateway.script = [fault]
    channel = TwilioSmsChannel(gateway.settings(timeout_seconds=0.3))
    with pytest.raises(TransientDeliveryError) as raised:
        channel.deliver(sample_message("text"))
    assert words in str(raised.value)
    assert channel.deliver(sample_message("text")).status == "queued"  # and the client recovers


def test_a_refusal_is_permanent_and_does_not_show_the_number(gateway: TwilioPeer) -> None:
    gateway.script = [twilio_error(400, 21211, "The 'To' number +15035550123 is not valid.")]
    with pytest.raises(PermanentDeliveryError) as raised:
        TwilioSmsChannel(gateway.settings()).deliver(sample_message("text"))
    assert not isinstance(raised.value, RecipientOptedOutError)
    assert "error 21211" in str(raised.value)
    assert "+15035550123" not in str(raised.value)
    assert "+1***0123" in str(raised.value)


@pytest.mark.parametrize("channel_type", [TwilioSmsChannel, TwilioVoiceChannel])
def test_error_21610_means_the_recipient_opted_out(
    gateway: TwilioPeer, channel_type: type[TwilioSmsChannel | TwilioVoiceChannel]
) -> None:
    gateway.script = [twilio_error(400, 21610, "Attempt to send to unsubscribed recipient")]
    mode = "text" if channel_type is TwilioSmsChannel else "voice"
    with pytest.raises(RecipientOptedOutError):
        channel_type(gateway.settings()).deliver(sample_message(mode))


def test_a_wrong_auth_token_is_permanent_and_never_shown(gateway: TwilioPeer) -> None:
    channel = TwilioSmsChannel(gateway.settings(auth_token="wrong-token-s3cret"))
    with pytest.raises(PermanentDeliveryError) as raised:
        channel.deliver(sample_message("text"))
    assert "401" in str(raised.value) and "20003" in str(raised.value)
    for text in (str(raised.value), repr(raised.value), repr(channel)):
        assert "wrong-token-s3cret" not in text and AUTH_TOKEN not in text


def test_repr_leaves_out_a_password_in_the_gateways_url() -> None:
    settings = {"account_sid": "AC1", "auth_token": "t", "base_url": "https://gw:pa55@gw.example"}
    channel = TwilioSmsChannel(settings)
    assert repr(channel) == "TwilioSmsChannel(TwilioAccount('AC1', base_url='https://gw.example'))"
    channel.close()


def test_the_gateway_signs_its_status_callbacks_as_twilio_does(gateway: TwilioPeer) -> None:
    with HttpPeer(lambda request: Reply(204)) as receiver:
        url = receiver.url + "/ondemand/twilio/status"
        channel = TwilioSmsChannel(gateway.settings(status_callback_url=url))
        sid = channel.deliver(sample_message("text")).provider_message_id
        assert sid is not None
        assert gateway.status_callback(sid, "delivered").status_code == 204
    [callback] = receiver.requests
    assert callback.form["MessageSid"] == sid
    assert callback.form["MessageStatus"] == "delivered"
    # Twilio calls the StatusCallback as the channel gave it, query included, and signs all of it.
    called = url + "?practice=demo&notification=ntf_conformance0001"
    assert receiver.url + callback.path == called
    signature = callback.headers["X-Twilio-Signature"]
    assert signature == sign(called, callback.form, AUTH_TOKEN)
    assert signature != sign(url, callback.form, AUTH_TOKEN)
    assert signature != sign(url, callback.form, "another-token")
    assert signature != sign(url, {**callback.form, "MessageStatus": "sent"}, AUTH_TOKEN)


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"auth_token": "x"}, "twilio_sms"),
        ({"account_sid": "nope", "auth_token": "x"}, "twilio_sms.account_sid"),
        ({"account_sid": ACCOUNT_SID, "auth_token": "x", "sender": "+1"}, "twilio_sms"),
        (
            {"account_sid": ACCOUNT_SID, "auth_token": "x", "base_url": "ftp://x"},
            "twilio_sms.base_url",
        ),
    ],
)
def test_bad_twilio_settings_are_an_invalid_config(
    build: Build, settings: dict[str, str], field: str
) -> None:
    with pytest.raises(OnDemandError) as refused:
        build(twilio_sms=settings)
    assert refused.value.code == "invalid_config"
    assert refused.value.field == field


def test_the_channels_connections_close_with_the_plugin(build: Build, gateway: TwilioPeer) -> None:
    pm, _ = build(channels={"text": "twilio_sms"}, twilio_sms=gateway.settings())
    [channel] = channels_of(pm)["text"]
    assert send_to_mei(pm)["status"] == "sent"
    pm.hook.pm_unconfigure(plugin_manager=pm)
    assert channel.account._client.is_closed
