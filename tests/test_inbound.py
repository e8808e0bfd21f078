"""Provider requests through pm_inbound_request: Twilio's signature, status callbacks that move a
notification's status forward only, and STOP/START replies that change opt-outs."""

from __future__ import annotations

import gc
import logging
import tracemalloc
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pluggy
import pytest
from conftest import (
    CONTEXT,
    Build,
    DiscardingExporter,
    Telemetry,
    assert_valid,
    sdk_telemetry,
    send_to_mei,
)
from peers.twilio import TwilioPeer
from peers.twilio_signature import sign
from test_recovery import ChannelPlugin, WorkerDied, crash, submit

from hookspecs import DeliveryReceipt, OutboundMessage, hookimpl
from ondemand_plugin import SEND_ACTION_ID
from ondemand_plugin.channels.twilio.signature import expected_signature, url_spellings
from ondemand_plugin.channels.twilio.sms import TwilioSmsChannel
from ondemand_plugin.errors import OnDemandError
from ondemand_plugin.telemetry import HTTP_STATUS, ROUTE, UNMATCHED
from ondemand_plugin.testing import ReferenceHost, enable_addon, run_recovery, store_of

SMS_TOKEN = "9f3a2b1c4d5e6f708192a3b4c5d6e7f8"
VOICE_TOKEN = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
BASE = "https://pm.example.com/plugins/ondemand/"
MEI = "+15035550123"
PRACTICE_NUMBER = "+15035550101"


@pytest.fixture
def sms_gateway() -> Iterator[TwilioPeer]:
    with TwilioPeer(auth_token=SMS_TOKEN) as gateway:
        yield gateway


@pytest.fixture
def voice_gateway() -> Iterator[TwilioPeer]:
    with TwilioPeer(auth_token=VOICE_TOKEN) as gateway:
        yield gateway


def twilio_settings(gateway: TwilioPeer, **extra: str) -> dict[str, Any]:
    """The real Twilio channels, pointed at the tests' gateway, with the callbacks coming here;
    texts leave from each practice's own number."""
    return gateway.settings(status_callback_url=BASE + "twilio/status", **extra)


@pytest.fixture
def twilio_host(
    build: Build, database_url: str, sms_gateway: TwilioPeer, voice_gateway: TwilioPeer
) -> tuple[pluggy.PluginManager, ReferenceHost]:
    """On each backend: callbacks find and advance notifications through the store."""
    return build(
        database_url=database_url,
        channels={"text": "twilio_sms", "voice": "twilio_voice"},
        twilio_sms=twilio_settings(sms_gateway),
        twilio_voice=twilio_settings(voice_gateway),
    )


@pytest.fixture
def pm(twilio_host: tuple[pluggy.PluginManager, ReferenceHost]) -> pluggy.PluginManager:
    return twilio_host[0]


@pytest.fixture
def host(twilio_host: tuple[pluggy.PluginManager, ReferenceHost]) -> ReferenceHost:
    return twilio_host[1]


def request(
    pm: pluggy.PluginManager,
    path: str,
    form: dict[str, str],
    *,
    token: str = SMS_TOKEN,
    headers: dict[str, str] | None = None,
    method: str = "POST",
    url: str | None = None,
) -> dict[str, Any]:
    """A request as Twilio sends it: signed over the URL it calls and its form, unless
    ``headers`` says otherwise."""
    url = url or BASE + path
    if headers is None:
        headers = {"X-Twilio-Signature": sign(url, form, token)}
    answer: dict[str, Any] = pm.hook.pm_inbound_request(
        plugin_name="ondemand",
        method=method,
        path=path,
        url=url,
        headers={"Content-Type": "application/x-www-form-urlencoded", **headers},
        form=form,
        body="&".join(f"{name}={value}" for name, value in form.items()),
    )
    assert_valid("inbound-response", answer)
    return answer


def record(pm: pluggy.PluginManager, notification_id: str) -> Any:
    store = store_of(pm)
    [found] = [r for r in store.history("demo", "g-mei", None, 100) if r.id == notification_id]
    return found


def sent_text(pm: pluggy.PluginManager) -> Any:
    return record(pm, send_to_mei(pm)["notification_id"])


def sent_call(pm: pluggy.PluginManager) -> Any:
    return record(
        pm, send_to_mei(pm, mode="voice", body="You owe {{BalanceDue}}")["notification_id"]
    )


def sms_status(pm: pluggy.PluginManager, sid: str, status: str, **extra: str) -> dict[str, Any]:
    form = {
        "AccountSid": "AC" + "0" * 32,
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": status,
    }
    return request(pm, "twilio/status", {**form, **extra})


def call_status(pm: pluggy.PluginManager, sid: str, status: str) -> dict[str, Any]:
    form = {"AccountSid": "AC" + "0" * 32, "CallSid": sid, "CallStatus": status}
    return request(pm, "twilio/status", form, token=VOICE_TOKEN)


def reply(pm: pluggy.PluginManager, body: str, **form: str) -> dict[str, Any]:
    return request(pm, "twilio/inbound", {"From": MEI, "To": PRACTICE_NUMBER, "Body": body, **form})


# The signature


TWILIO_DOCS_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
TWILIO_DOCS_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+12349013030",
    "Digits": "1234",
    "From": "+12349013030",
    "To": "+18005551212",
}


def test_the_signature_matches_the_example_in_twilios_documentation() -> None:
    # Twilio's "Webhooks security" guide: auth token 12345, this URL and these parameters.
    assert expected_signature(TWILIO_DOCS_URL, TWILIO_DOCS_PARAMS, "12345") == (
        "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    )
    assert sign(TWILIO_DOCS_URL, TWILIO_DOCS_PARAMS, "12345") == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


# Status callbacks


@pytest.mark.parametrize(
    ("twilio_status", "status"),
    [
        ("queued", "sent"),
        ("accepted", "sent"),
        ("sending", "sent"),
        ("sent", "sent"),
        ("delivered", "delivered"),
        ("read", "delivered"),
        ("undelivered", "undelivered"),
        ("failed", "failed"),
        ("canceled", "failed"),
    ],
)
def test_a_text_status_callback_sets_the_notifications_status(
    pm: pluggy.PluginManager, twilio_status: str, status: str
) -> None:
    text = sent_text(pm)
    assert text.channel == "twilio_sms" and text.status == "sent"
    answer = sms_status(pm, text.provider_message_id, twilio_status)
    assert answer["status"] == 200
    after = record(pm, text.id)
    assert after.status == status
    if status != "sent":  # already sent: such a callback is no news, and changes nothing
        assert twilio_status in after.detail
        assert after.status_changed_at > text.status_changed_at
    else:
        assert after == text


@pytest.mark.parametrize(
    ("twilio_status", "status"),
    [
        ("queued", "sent"),
        ("initiated", "sent"),
        ("ringing", "sent"),
        ("in-progress", "sent"),
        ("completed", "delivered"),
        ("busy", "undelivered"),
        ("no-answer", "undelivered"),
        ("failed", "failed"),
        ("canceled", "failed"),
    ],
)
def test_a_call_status_callback_sets_the_notifications_status(
    pm: pluggy.PluginManager, twilio_status: str, status: str
) -> None:
    call = sent_call(pm)
    assert call.channel == "twilio_voice"
    assert call_status(pm, call.provider_message_id, twilio_status)["status"] == 200
    assert record(pm, call.id).status == status


def test_a_status_never_moves_back_and_a_repeated_callback_changes_nothing(
    pm: pluggy.PluginManager,
) -> None:
    text = sent_text(pm)
    sms_status(pm, text.provider_message_id, "delivered")
    delivered = record(pm, text.id)
    assert delivered.status == "delivered"

    assert sms_status(pm, text.provider_message_id, "sent")["status"] == 200  # late
    assert sms_status(pm, text.provider_message_id, "delivered")["status"] == 200  # again
    assert sms_status(pm, text.provider_message_id, "undelivered")["status"] == 200  # settled
    assert record(pm, text.id) == delivered


def test_the_error_code_is_kept_in_the_detail(pm: pluggy.PluginManager) -> None:
    text = sent_text(pm)
    sms_status(pm, text.provider_message_id, "undelivered", ErrorCode="30003")
    after = record(pm, text.id)
    assert after.status == "undelivered"
    assert "30003" in after.detail and "unreachable" in after.detail


def test_a_callback_saying_the_recipient_opted_out_records_the_opt_out(
    pm: pluggy.PluginManager, host: ReferenceHost
) -> None:
    text = sent_text(pm)
    sms_status(pm, text.provider_message_id, "failed", ErrorCode="21610")
    assert record(pm, text.id).status == "failed"
    assert "21610 (the recipient opted out)" in record(pm, text.id).detail
    [told] = host.calls_to("pm_set_opt_out")
    assert (told["practice_id"], told["mode"], told["address"], told["opted_out"]) == (
        "demo",
        "text",
        MEI,
        True,
    )
    assert told["context"]["source"] == "provider"
    with pytest.raises(OnDemandError) as refused:
        send_to_mei(pm)
    assert refused.value.code == "opted_out"


def test_a_callback_about_an_unknown_message_is_answered_200_and_logged(
    pm: pluggy.PluginManager, caplog: pytest.LogCaptureFixture
) -> None:
    text = sent_text(pm)
    with caplog.at_level(logging.WARNING):
        assert sms_status(pm, "SM" + "f" * 32, "delivered")["status"] == 200
    assert "unknown twilio_sms SM" + "f" * 32 in caplog.text
    assert record(pm, text.id) == text


def test_a_callback_for_a_call_id_does_not_touch_a_text_with_that_id(
    pm: pluggy.PluginManager,
) -> None:
    text = sent_text(pm)
    call_status(pm, text.provider_message_id, "completed")  # same id, other channel
    assert record(pm, text.id) == text


def test_a_status_twilio_has_but_the_history_does_not_track_is_ignored(
    pm: pluggy.PluginManager,
) -> None:
    text = sent_text(pm)
    assert sms_status(pm, text.provider_message_id, "scheduled")["status"] == 200
    assert record(pm, text.id) == text


def test_a_status_callback_without_its_id_is_a_bad_request(pm: pluggy.PluginManager) -> None:
    assert request(pm, "twilio/status", {"MessageStatus": "delivered"})["status"] == 400


# Callbacks that come before the send is recorded: found by the notification named in their URL


def gateway_callback(
    pm: pluggy.PluginManager, gateway: TwilioPeer, sid: str, status: str
) -> dict[str, Any]:
    """The gateway's status callback of ``sid``, to its StatusCallback URL, through the hook."""
    url, form, headers = gateway.signed_callback(sid, status)
    assert url.startswith(BASE + "twilio/status?")
    return request(pm, "twilio/status", form, headers=headers, url=url)


@pytest.mark.parametrize(
    ("mode", "twilio_status", "status"),
    [
        ("text", "delivered", "delivered"),
        ("text", "undelivered", "undelivered"),
        ("voice", "completed", "delivered"),
    ],
)
def test_a_callback_that_overtakes_twilios_answer_is_kept_when_the_send_completes(
    pm: pluggy.PluginManager,
    sms_gateway: TwilioPeer,
    voice_gateway: TwilioPeer,
    mode: str,
    twilio_status: str,
    status: str,
) -> None:
    gateway = sms_gateway if mode == "text" else voice_gateway
    answers: list[dict[str, Any]] = []
    gateway.before_answering = lambda sid: answers.append(
        gateway_callback(pm, gateway, sid, twilio_status)
    )
    result = send_to_mei(pm, mode=mode, body="You owe {{BalanceDue}}")
    assert [answer["status"] for answer in answers] == [200]
    assert result["status"] == "sent"  # the send's answer: the message left

    [sid] = gateway.created
    after = record(pm, result["notification_id"])
    # The completion came after the callback: it recorded the SID, and did not undo the status.
    assert (after.status, after.detail) == (status, f"Twilio: {twilio_status}.")
    channel = "twilio_sms" if mode == "text" else "twilio_voice"
    assert (after.channel, after.provider_message_id) == (channel, sid)
    assert after.result["status"] == "sent"
    gateway.before_answering = None
    assert gateway_callback(pm, gateway, sid, "queued")["status"] == 200  # late
    assert record(pm, result["notification_id"]) == after


class TwilioInADyingWorker:
    """The twilio_sms channel in a worker that dies once Twilio has taken the text, before the
    send's completion can record its SID."""

    name = "dying_twilio"
    modes = frozenset({"text"})

    def __init__(self, settings: dict[str, Any]) -> None:
        self.twilio = TwilioSmsChannel(settings)

    def deliver(self, message: OutboundMessage) -> DeliveryReceipt:
        self.twilio.deliver(message)
        raise WorkerDied

    def close(self) -> None:
        self.twilio.close()


@pytest.fixture
def dying(build: Build, database_url: str, sms_gateway: TwilioPeer) -> pluggy.PluginManager:
    """Texts leave through Twilio from a worker that dies before recording them; on each
    backend."""
    pm, _ = build(
        ChannelPlugin(TwilioInADyingWorker(twilio_settings(sms_gateway))),
        database_url=database_url,
        channels={"text": "dying_twilio"},
        twilio_sms=twilio_settings(sms_gateway),
    )
    return pm


@pytest.mark.parametrize(
    ("twilio_status", "status", "answered"),
    [
        ("delivered", "delivered", "sent"),
        ("undelivered", "undelivered", "sent"),
        ("failed", "failed", "failed"),
    ],
)
def test_a_callback_settles_a_send_whose_worker_died_after_twilio_took_it(
    dying: pluggy.PluginManager,
    sms_gateway: TwilioPeer,
    twilio_status: str,
    status: str,
    answered: str,
) -> None:
    notification_id = crash(dying, "key-1")
    [sid] = sms_gateway.created
    [unknown] = run_recovery(dying, older_than_seconds=0)
    assert (unknown.id, unknown.status) == (notification_id, "unknown")  # Twilio offers no lookup

    assert gateway_callback(dying, sms_gateway, sid, twilio_status)["status"] == 200
    settled = store_of(dying).notification_by_id("demo", notification_id)
    assert (settled.status, settled.detail) == (status, f"Twilio: {twilio_status}.")
    assert settled.provider_message_id is None  # still unrecorded: each callback uses the URL
    # Repeating the request answers how it ended, in the send result's terms.
    repeated = submit(dying, "key-1")
    assert (repeated["status"], repeated["detail"], repeated["duplicate"]) == (
        answered,
        f"Twilio: {twilio_status}.",
        True,
    )


def test_a_callback_finds_an_unrecorded_send_only_under_its_own_practice(
    dying: pluggy.PluginManager, sms_gateway: TwilioPeer
) -> None:
    notification_id = crash(dying, "key-1")
    [sid] = sms_gateway.created
    genuine, form, _ = sms_gateway.signed_callback(sid, "delivered")
    # Signed, so Twilio called it: but its query names demo's notification under another practice.
    elsewhere = genuine.replace("practice=demo", "practice=north")
    assert elsewhere != genuine
    assert request(dying, "twilio/status", form, url=elsewhere)["status"] == 200
    assert store_of(dying).notification_by_id("demo", notification_id).status == "sending"

    assert gateway_callback(dying, sms_gateway, sid, "delivered")["status"] == 200
    assert store_of(dying).notification_by_id("demo", notification_id).status == "delivered"


def test_a_callback_whose_query_names_another_practices_notification_changes_neither(
    pm: pluggy.PluginManager, host: ReferenceHost, caplog: pytest.LogCaptureFixture
) -> None:
    north = add_north(pm, host, "+15035550102")
    ours = sent_text(pm)
    theirs_id = send_to_mei(pm, context=north)["notification_id"]
    theirs = store_of(pm).notification_by_id("north", theirs_id)
    form = {"MessageSid": ours.provider_message_id, "MessageStatus": "undelivered"}
    for practice_id, notification_id in (("north", theirs_id), ("north", ours.id)):
        url = f"{BASE}twilio/status?practice={practice_id}&notification={notification_id}"
        with caplog.at_level(logging.WARNING):
            assert request(pm, "twilio/status", form, url=url)["status"] == 200
        assert record(pm, ours.id) == ours
        assert store_of(pm).notification_by_id("north", theirs_id) == theirs
    assert "names another notification" in caplog.text

    url = f"{BASE}twilio/status?practice=demo&notification={ours.id}"
    assert request(pm, "twilio/status", form, url=url)["status"] == 200
    assert record(pm, ours.id).status == "undelivered"


def test_a_callback_about_an_earlier_attempt_does_not_settle_the_recorded_one(
    pm: pluggy.PluginManager,
) -> None:
    text = sent_text(pm)
    # Twilio took an attempt the plugin never heard back from, then the retry was recorded.
    form = {"MessageSid": "SM" + "a" * 32, "MessageStatus": "failed"}
    url = f"{BASE}twilio/status?practice=demo&notification={text.id}"
    assert request(pm, "twilio/status", form, url=url)["status"] == 200
    assert record(pm, text.id) == text


def test_a_forged_query_is_refused_and_changes_nothing(
    dying: pluggy.PluginManager, sms_gateway: TwilioPeer
) -> None:
    first = crash(dying, "key-1")
    second = crash(dying, "key-2")
    first_sid, _second_sid = sms_gateway.created
    url, form, headers = sms_gateway.signed_callback(first_sid, "failed")
    # Twilio's signature of the first's callback, on a URL that names the second.
    forged = url.replace(first, second)
    assert forged != url
    assert request(dying, "twilio/status", form, headers=headers, url=forged)["status"] == 403
    assert [store_of(dying).notification_by_id("demo", n).status for n in (first, second)] == [
        "sending",
        "sending",
    ]
    assert request(dying, "twilio/status", form, headers=headers, url=url)["status"] == 200
    assert [store_of(dying).notification_by_id("demo", n).status for n in (first, second)] == [
        "failed",
        "sending",
    ]


# Refused requests change nothing


SIGNATURES = {
    "no signature": lambda form, url: {},
    "an empty signature": lambda form, url: {"X-Twilio-Signature": ""},
    "another token": lambda form, url: {"X-Twilio-Signature": sign(url, form, VOICE_TOKEN)},
    "another URL": lambda form, url: {
        "X-Twilio-Signature": sign(url.replace("pm.", "evil."), form, SMS_TOKEN)
    },
    "a changed parameter": lambda form, url: {
        "X-Twilio-Signature": sign(url, {**form, "MessageStatus": "failed"}, SMS_TOKEN)
    },
    "a parameter more": lambda form, url: {
        "X-Twilio-Signature": sign(url, {**form, "ErrorCode": "30003"}, SMS_TOKEN)
    },
    "a truncated signature": lambda form, url: {
        "X-Twilio-Signature": sign(url, form, SMS_TOKEN)[:-2]
    },
}


@pytest.mark.parametrize("how", list(SIGNATURES))
def test_a_status_callback_not_signed_by_twilio_is_refused_and_changes_nothing(
    pm: pluggy.PluginManager, how: str
) -> None:
    text = sent_text(pm)
    form = {"MessageSid": text.provider_message_id, "MessageStatus": "delivered"}
    url = BASE + "twilio/status"
    answer = request(pm, "twilio/status", form, headers=SIGNATURES[how](form, url))
    assert answer["status"] == 403
    assert record(pm, text.id) == text


@pytest.mark.parametrize("how", list(SIGNATURES))
def test_a_stop_not_signed_by_twilio_is_refused_and_changes_nothing(
    pm: pluggy.PluginManager, host: ReferenceHost, how: str
) -> None:
    send_to_mei(pm)
    form = {"From": MEI, "To": PRACTICE_NUMBER, "Body": "STOP", "MessageStatus": "received"}
    url = BASE + "twilio/inbound"
    answer = request(pm, "twilio/inbound", form, headers=SIGNATURES[how](form, url))
    assert answer["status"] == 403
    assert not store_of(pm).is_opted_out("demo", "text", MEI)
    assert host.calls_to("pm_set_opt_out") == []


def test_the_signature_header_is_found_whatever_its_case(pm: pluggy.PluginManager) -> None:
    text = sent_text(pm)
    form = {"MessageSid": text.provider_message_id, "MessageStatus": "delivered"}
    signature = sign(BASE + "twilio/status", form, SMS_TOKEN)
    answer = request(pm, "twilio/status", form, headers={"x-twilio-signature": signature})
    assert answer["status"] == 200
    assert record(pm, text.id).status == "delivered"


def test_a_call_callback_signed_with_the_text_token_is_refused(pm: pluggy.PluginManager) -> None:
    call = sent_call(pm)
    form = {"CallSid": call.provider_message_id, "CallStatus": "completed"}
    assert request(pm, "twilio/status", form, token=SMS_TOKEN)["status"] == 403
    assert record(pm, call.id) == call


def test_without_an_auth_token_every_callback_is_refused(
    build: Build, caplog: pytest.LogCaptureFixture
) -> None:
    pm, _ = build()  # texts through the outbox: no twilio_sms settings, so no token
    text = sent_text(pm)
    with caplog.at_level(logging.WARNING):
        # Signed with an empty key, which an unconfigured plugin must not accept either.
        assert sms_status(pm, text.provider_message_id, "delivered")["status"] == 403
    assert "twilio_sms.auth_token is not configured" in caplog.text
    assert record(pm, text.id) == text


# Routing


def test_other_paths_are_404_and_other_methods_405(pm: pluggy.PluginManager) -> None:
    assert request(pm, "twilio/elsewhere", {})["status"] == 404
    assert request(pm, "", {})["status"] == 404
    refused = request(pm, "twilio/status", {}, method="GET")
    assert refused["status"] == 405
    assert refused["headers"]["Allow"] == "POST"
    # A leading or trailing slash is the host's way of writing the same path.
    assert (
        request(
            pm,
            "/twilio/inbound/",
            {"From": MEI, "To": PRACTICE_NUMBER, "Body": "hi"},
            url=BASE + "twilio/inbound",
        )["status"]
        == 200
    )


def test_a_request_for_another_plugin_is_left_to_it(pm: pluggy.PluginManager) -> None:
    answer = pm.hook.pm_inbound_request(
        plugin_name="billing",
        method="POST",
        path="twilio/status",
        url=BASE,
        headers={},
        form={},
        body="",
    )
    assert answer is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("headers", [("X-Twilio-Signature", "x")]),
        ("form", {"Body": 1}),
        ("url", "pm.example.com"),
        ("method", ""),
        ("body", None),
    ],
)
def test_a_malformed_request_from_the_host_is_an_invalid_request(
    pm: pluggy.PluginManager, name: str, value: Any
) -> None:
    arguments = {
        "plugin_name": "ondemand",
        "method": "POST",
        "path": "twilio/status",
        "url": BASE + "twilio/status",
        "headers": {},
        "form": {},
        "body": "",
    }
    with pytest.raises(OnDemandError) as refused:
        pm.hook.pm_inbound_request(**{**arguments, name: value})
    assert refused.value.code == "invalid_request"
    assert (refused.value.field or "").startswith(name)


# Replies: STOP and START


@pytest.mark.parametrize(
    "body",
    [
        "STOP",
        "stop",
        "  Stop \n",
        "STOPALL",
        "UNSUBSCRIBE",
        "END",
        "QUIT",
        "REVOKE",
        "OPTOUT",
        "CANCEL",
    ],
)
def test_a_stop_reply_opts_the_number_out_of_texts_and_tells_the_host(
    pm: pluggy.PluginManager, host: ReferenceHost, body: str
) -> None:
    send_to_mei(pm)
    answer = reply(pm, body)
    assert answer["status"] == 200
    assert answer["headers"]["Content-Type"] == "text/xml"
    assert answer["body"].endswith("<Response/>")

    store = store_of(pm)
    assert store.is_opted_out("demo", "text", MEI)
    assert not store.is_opted_out("demo", "voice", MEI)
    [told] = host.calls_to("pm_set_opt_out")
    assert {k: told[k] for k in ("practice_id", "mode", "address", "opted_out")} == {
        "practice_id": "demo",
        "mode": "text",
        "address": MEI,
        "opted_out": True,
    }
    assert_valid("opt-out-context", told["context"])
    assert told["context"]["source"] == "reply"
    assert told["context"]["keyword"] == body.strip().upper()
    assert host.guarantors["demo"]["g-mei"]["opt_out"]["text"] is True
    with pytest.raises(OnDemandError) as refused:
        send_to_mei(pm)
    assert refused.value.code == "opted_out"


@pytest.mark.parametrize("body", ["START", "unstop"])
def test_a_start_reply_opts_the_number_back_in(
    pm: pluggy.PluginManager, host: ReferenceHost, body: str
) -> None:
    send_to_mei(pm)
    reply(pm, "STOP")
    reply(pm, body)
    assert not store_of(pm).is_opted_out("demo", "text", MEI)
    assert [call["opted_out"] for call in host.calls_to("pm_set_opt_out")] == [True, False]
    assert host.guarantors["demo"]["g-mei"]["opt_out"]["text"] is False
    assert send_to_mei(pm)["status"] == "sent"


@pytest.mark.parametrize("body", ["Thanks!", "stop texting me please", "", "HELP"])
def test_any_other_reply_changes_nothing(
    pm: pluggy.PluginManager, host: ReferenceHost, body: str
) -> None:
    send_to_mei(pm)
    assert reply(pm, body)["status"] == 200
    assert host.calls_to("pm_set_opt_out") == []
    assert send_to_mei(pm)["status"] == "sent"


def test_a_stop_to_a_number_the_practice_does_not_text_from_changes_nothing(
    pm: pluggy.PluginManager, host: ReferenceHost
) -> None:
    send_to_mei(pm)
    assert reply(pm, "STOP", To="+15035550199")["status"] == 200
    assert host.calls_to("pm_set_opt_out") == []
    assert send_to_mei(pm)["status"] == "sent"


def test_a_stop_from_someone_never_texted_changes_nothing(
    pm: pluggy.PluginManager, host: ReferenceHost
) -> None:
    assert reply(pm, "STOP")["status"] == 200  # nothing was sent to Mei yet
    assert host.calls_to("pm_set_opt_out") == []


def test_a_reply_without_its_numbers_is_a_bad_request(
    pm: pluggy.PluginManager, host: ReferenceHost
) -> None:
    send_to_mei(pm)
    answer = request(pm, "twilio/inbound", {"From": MEI, "Body": "STOP"})
    assert (answer["status"], answer["body"]) == (400, "A reply needs From and To.")
    assert host.calls_to("pm_set_opt_out") == []


def test_a_stop_for_a_practice_the_host_no_longer_knows_changes_nothing_there(
    pm: pluggy.PluginManager, host: ReferenceHost
) -> None:
    send_to_mei(pm)
    del host.practices["demo"]
    assert reply(pm, "STOP")["status"] == 200
    assert host.calls_to("pm_set_opt_out") == []
    assert not store_of(pm).is_opted_out("demo", "text", MEI)


def test_the_plugin_honours_a_stop_before_the_host_catches_up(
    pm: pluggy.PluginManager, host: ReferenceHost
) -> None:
    send_to_mei(pm)
    reply(pm, "STOP")
    host.guarantors["demo"]["g-mei"]["opt_out"]["text"] = False  # a host that lost the change

    form = pm.hook.pm_dashboard_action(
        action_id=SEND_ACTION_ID,
        step="open",
        subject={"type": "patient", "id": "p-lily"},
        payload={},
        context=CONTEXT,
    )
    [text] = [o for o in form["send_to"] if o["mode"] == "text" and o["address"] == MEI]
    assert text["allowed"] is False
    assert "opted out" in text["reason"]
    [voice] = [o for o in form["send_to"] if o["mode"] == "voice" and o["address"] == MEI]
    assert voice["allowed"] is True
    with pytest.raises(OnDemandError) as refused:
        send_to_mei(pm)
    assert refused.value.code == "opted_out"
    assert send_to_mei(pm, mode="voice", body="You owe {{BalanceDue}}")["status"] == "sent"


def test_a_host_whose_opt_out_hook_raises_does_not_undo_the_stop(
    pm: pluggy.PluginManager, host: ReferenceHost, caplog: pytest.LogCaptureFixture
) -> None:
    class BrokenOptOuts:
        @hookimpl(tryfirst=True)
        def pm_set_opt_out(self, **_: Any) -> bool:
            raise RuntimeError("the contacts table is locked")

    pm.register(BrokenOptOuts(), name="broken-opt-outs")
    send_to_mei(pm)
    with caplog.at_level(logging.ERROR):
        assert reply(pm, "STOP")["status"] == 200
    assert "pm_set_opt_out" in caplog.text and MEI not in caplog.text
    with pytest.raises(OnDemandError):
        send_to_mei(pm)


# The history shows the latest status and when it changed


def history(pm: pluggy.PluginManager) -> list[dict[str, Any]]:
    [entries] = pm.hook.pm_history_entries(
        guarantor_id="g-mei", context=CONTEXT, before=None, limit=10
    )
    for entry in entries:
        assert_valid("history-entry", entry)
    return list(entries)


def test_history_shows_the_status_a_callback_brought_and_when(pm: pluggy.PluginManager) -> None:
    text = sent_text(pm)
    [before] = history(pm)
    assert before["status"] == "sent"
    assert before["status_changed_at"] >= before["occurred_at"]
    assert "Status: sent, not yet confirmed delivered" in before["display"]["summary"]

    sms_status(pm, text.provider_message_id, "delivered")
    [after] = history(pm)
    assert after["status"] == "delivered"
    assert after["status_changed_at"] > before["status_changed_at"]
    assert after["occurred_at"] == before["occurred_at"]
    assert "Status: delivered, as of " in after["display"]["summary"]
    assert after["display"]["summary"].endswith(
        f"{after['status_changed_at'][:10]} {after['status_changed_at'][11:16]} UTC."
    )


def test_history_says_why_a_text_was_not_delivered(pm: pluggy.PluginManager) -> None:
    text = sent_text(pm)
    sms_status(pm, text.provider_message_id, "undelivered", ErrorCode="30003")
    [entry] = history(pm)
    assert entry["status"] == "undelivered"
    summary = entry["display"]["summary"]
    assert "Status: not delivered" in summary
    assert "error 30003 (unreachable destination handset)" in summary


@pytest.mark.parametrize("backend", ["sqlite"])  # it sets a status with the SQLite store's SQL
def test_history_says_when_the_outcome_of_a_send_is_unknown(pm: pluggy.PluginManager) -> None:
    text = sent_text(pm)
    store = store_of(pm)
    # As recovery marks a send whose worker died mid-delivery, before it could be completed.
    store.backend.sqlite_connection().execute(
        "UPDATE notifications SET status = 'sending' WHERE id = ?", (text.id,)
    )
    assert store.advance_status("demo", text.id, "unknown", "The worker stopped mid-delivery.")
    [entry] = history(pm)
    assert entry["status"] == "unknown"
    assert "Status: outcome unknown" in entry["display"]["summary"]


def test_a_keyword_twilio_names_as_an_opt_out_counts_too(
    pm: pluggy.PluginManager, host: ReferenceHost
) -> None:
    send_to_mei(pm)
    reply(pm, "ARRET", OptOutType="STOP")  # a practice's own keyword, with Advanced Opt-Out
    [told] = host.calls_to("pm_set_opt_out")
    assert told["opted_out"] is True and told["context"]["keyword"] == "ARRET"
    reply(pm, "HELP", OptOutType="HELP")
    assert len(host.calls_to("pm_set_opt_out")) == 1


def add_north(pm: pluggy.PluginManager, host: ReferenceHost, text_from: str) -> dict[str, Any]:
    """A second practice, north, texting from ``text_from``, with Mei as its guarantor too; its
    context."""
    host.add_practice({**host.practices["demo"], "id": "north", "text_from": text_from})
    host.add_patient("north", {**host.patients["demo"]["p-lily"], "guarantor_ids": []})
    host.add_guarantor(
        "north",
        {
            **host.guarantors["demo"]["g-mei"],
            "patient_ids": [],
            "opt_out": {"email": False, "text": False, "voice": False},
        },
    )
    host.link("north", "p-lily", "g-mei")
    enable_addon(pm, "north")
    return {**CONTEXT, "practice_id": "north"}


def test_a_stop_opts_out_only_of_the_practices_that_texted_from_that_number(
    pm: pluggy.PluginManager, host: ReferenceHost
) -> None:
    north = add_north(pm, host, "+15035550102")  # its own number
    send_to_mei(pm)
    send_to_mei(pm, context=north)

    reply(pm, "STOP")  # to demo's number
    store = store_of(pm)
    assert store.is_opted_out("demo", "text", MEI)
    assert not store.is_opted_out("north", "text", MEI)
    assert [call["practice_id"] for call in host.calls_to("pm_set_opt_out")] == ["demo"]
    assert send_to_mei(pm, context=north)["status"] == "sent"

    host.practices["north"]["text_from"] = "(503) 555-0102"  # as a host might keep it
    reply(pm, "stop", To="+15035550102")
    assert store.is_opted_out("north", "text", MEI)


def test_a_stop_to_the_channels_shared_number_opts_out_of_every_practice_texting_from_it(
    build: Build, sms_gateway: TwilioPeer
) -> None:
    pm, host = build(
        channels={"text": "twilio_sms"},
        twilio_sms=twilio_settings(sms_gateway, **{"from": "+15035550199"}),
    )
    north = add_north(pm, host, "+15035550102")  # not the number its texts leave from
    send_to_mei(pm)
    send_to_mei(pm, context=north)

    reply(pm, "STOP", To="+15035550199")
    store = store_of(pm)
    assert store.is_opted_out("demo", "text", MEI) and store.is_opted_out("north", "text", MEI)
    reply(pm, "START", To=PRACTICE_NUMBER)  # the practice's own number sent nothing
    assert store.is_opted_out("demo", "text", MEI)


def test_a_stop_through_the_channels_messaging_service_opts_out_of_the_practices_using_it(
    build: Build, sms_gateway: TwilioPeer
) -> None:
    service = "MG" + "1" * 32
    pm, _host = build(
        channels={"text": "twilio_sms"},
        twilio_sms=twilio_settings(sms_gateway, messaging_service_sid=service),
    )
    send_to_mei(pm)
    store = store_of(pm)

    reply(pm, "STOP", To="+15035550177", MessagingServiceSid="MG" + "2" * 32)
    assert not store.is_opted_out("demo", "text", MEI)  # another service's number
    reply(pm, "STOP", To="+15035550177", MessagingServiceSid=service)  # a number of its pool
    assert store.is_opted_out("demo", "text", MEI)


# The open internet: size, text that is not UTF-8, replays, the URL's port


LIMIT = 64 * 1024


@pytest.mark.parametrize("where", ["body", "form"])
def test_a_request_over_64_kib_is_refused_with_413_and_changes_nothing(
    pm: pluggy.PluginManager, host: ReferenceHost, where: str
) -> None:
    send_to_mei(pm)
    form = {"From": MEI, "To": PRACTICE_NUMBER, "Body": "STOP"}
    if where == "form":
        form["Padding"] = "x" * LIMIT
    body = "&".join(f"{name}={value}" for name, value in form.items())
    if where == "body":
        body += "&Padding=" + "x" * LIMIT
    url = BASE + "twilio/inbound"
    answer = pm.hook.pm_inbound_request(
        plugin_name="ondemand",
        method="POST",
        path="twilio/inbound",
        url=url,
        headers={"X-Twilio-Signature": sign(url, form, SMS_TOKEN)},  # even signed
        form=form,
        body=body,
    )
    assert_valid("inbound-response", answer)
    assert answer["status"] == 413
    assert "64 KiB" in answer["body"]
    assert host.calls_to("pm_set_opt_out") == []
    assert not store_of(pm).is_opted_out("demo", "text", MEI)


def test_a_request_of_64_kib_is_still_read(pm: pluggy.PluginManager) -> None:
    text = sent_text(pm)
    form = {"MessageSid": text.provider_message_id, "MessageStatus": "delivered"}
    form["Padding"] = "é" * ((LIMIT - 200) // 2)  # two bytes each in UTF-8
    assert request(pm, "twilio/status", form)["status"] == 200
    assert record(pm, text.id).status == "delivered"


def test_an_over_long_url_is_refused_with_414_not_raised(pm: pluggy.PluginManager) -> None:
    url = BASE + "twilio/status?q=" + "y" * 5000
    assert request(pm, "twilio/status", {}, url=url)["status"] == 414


@pytest.fixture(params=["no SDK", "SDK"])
def sdk(request: pytest.FixtureRequest) -> Iterator[Telemetry | None]:
    """Telemetry as the API alone records it (nothing), then through the SDK, its spans exported
    to nowhere as a host's exporter sends them away, its metrics kept."""
    if request.param == "no SDK":
        yield None
        return
    with sdk_telemetry(DiscardingExporter()) as kept:
        yield kept


@pytest.mark.parametrize("backend", ["sqlite"])  # no unsigned request reaches the store
def test_unsigned_and_garbage_requests_leave_nothing_behind(
    sdk: Telemetry | None, pm: pluggy.PluginManager
) -> None:
    text = sent_text(pm)

    def unsigned(number: int) -> dict[str, Any]:
        form = {"MessageSid": f"SM{number:032d}", "Body": "x" * (60 * 1024)}
        return request(pm, "twilio/status", form, headers={})

    def garbage(number: int) -> dict[str, Any]:
        form = {"MessageSid": text.provider_message_id, "MessageStatus": f"\udc80{number}"}
        return request(pm, "twilio/status", form, headers={"X-Twilio-Signature": "x"})

    def forged(number: int) -> dict[str, Any]:
        url = f"{BASE}twilio/status?practice=demo&notification=n{number}"
        form = {"MessageSid": text.provider_message_id, "MessageStatus": "failed"}
        return request(pm, "twilio/status", form, headers={"X-Twilio-Signature": "x"}, url=url)

    for number in range(5):  # the first calls load what every call needs
        unsigned(-1 - number), garbage(-1 - number), forged(-1 - number)
    splits = urlsplit.cache_info().misses
    tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for number in range(60):  # 3.6 MB of unsigned forms
            assert unsigned(number)["status"] == 403
            assert garbage(number)["status"] == 400
            assert forged(number)["status"] == 403
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 256 * 1024
    assert urlsplit.cache_info().misses == splits  # the URLs of unsigned requests: not cached
    assert record(pm, text.id) == text
    if sdk is not None:  # one time series per route and answer, whatever the requests held
        assert set(sdk.points("ondemand.inbound.requests")) == {
            frozenset({ROUTE: UNMATCHED, HTTP_STATUS: 400}.items()),
            frozenset({ROUTE: "twilio/status", HTTP_STATUS: 403}.items()),
        }


@pytest.mark.parametrize(
    ("url", "spellings"),
    [
        ("https://h.example/p?q=1", ["https://h.example/p?q=1", "https://h.example:443/p?q=1"]),
        ("HTTP://h.example:80", ["HTTP://h.example:80", "HTTP://h.example"]),
        ("https://[2001:db8::1]:443/p", ["https://[2001:db8::1]:443/p", "https://[2001:db8::1]/p"]),
        (
            "https://user:pw@h.example/p",
            ["https://user:pw@h.example/p", "https://user:pw@h.example:443/p"],
        ),
        ("https://h.example:8443/p", ["https://h.example:8443/p"]),
        ("http://h.example:443/p", ["http://h.example:443/p"]),
        ("https://h.example:/p", ["https://h.example:/p"]),
        ("ftp://h.example/p", ["ftp://h.example/p"]),
    ],
)
def test_a_url_is_signed_as_written_or_with_its_default_port_the_other_way(
    url: str, spellings: list[str]
) -> None:
    assert list(url_spellings(url)) == spellings


SURROGATE_ESCAPED = b"caf\xe9".decode("utf-8", "surrogateescape")  # "caf\udce9"


@pytest.mark.parametrize(
    ("where", "change"),
    [
        ("a form value", lambda form, url, headers: ({**form, "Body": "\ud800"}, url, headers)),
        (
            "a form value decoded with surrogateescape",
            lambda form, url, headers: ({**form, "Body": SURROGATE_ESCAPED}, url, headers),
        ),
        ("a form name", lambda form, url, headers: ({**form, "\udcff": "1"}, url, headers)),
        ("the URL", lambda form, url, headers: (form, url + "?n=\udce9", headers)),
        (
            "the signature header",
            lambda form, url, headers: (form, url, {"X-Twilio-Signature": "\udce9"}),
        ),
    ],
)
def test_text_that_is_not_utf_8_is_a_bad_request_and_changes_nothing(
    pm: pluggy.PluginManager, host: ReferenceHost, where: str, change: Any
) -> None:
    send_to_mei(pm)
    url = BASE + "twilio/inbound"
    form = {"From": MEI, "To": PRACTICE_NUMBER, "Body": "STOP"}
    form, url, headers = change(form, url, {"X-Twilio-Signature": "c2lnbmVk"})
    answer = pm.hook.pm_inbound_request(
        plugin_name="ondemand",
        method="POST",
        path="twilio/inbound",
        url=url,
        headers=headers,
        form=form,
        body="",
    )
    assert_valid("inbound-response", answer)
    assert answer["status"] == 400
    assert "UTF-8" in answer["body"]
    assert host.calls_to("pm_set_opt_out") == []


def test_a_replayed_stop_after_a_start_changes_nothing(
    pm: pluggy.PluginManager, host: ReferenceHost
) -> None:
    send_to_mei(pm)
    stop = "SM" + "1" * 32
    assert reply(pm, "STOP", MessageSid=stop)["status"] == 200
    assert reply(pm, "START", MessageSid="SM" + "2" * 32)["status"] == 200
    replayed = reply(pm, "STOP", MessageSid=stop)  # the same message, signed, once more
    assert (replayed["status"], replayed["headers"]["Content-Type"]) == (200, "text/xml")
    assert not store_of(pm).is_opted_out("demo", "text", MEI)
    assert [call["opted_out"] for call in host.calls_to("pm_set_opt_out")] == [True, False]
    assert send_to_mei(pm)["status"] == "sent"


def test_another_message_saying_stop_again_is_acted_on_again(
    pm: pluggy.PluginManager, host: ReferenceHost
) -> None:
    """A repeat is told by its MessageSid, not by what it says."""
    send_to_mei(pm)
    reply(pm, "STOP", MessageSid="SM" + "1" * 32)
    reply(pm, "STOP", MessageSid="SM" + "3" * 32)
    assert [call["opted_out"] for call in host.calls_to("pm_set_opt_out")] == [True, True]


def test_a_replayed_opt_out_callback_after_a_start_changes_nothing(
    pm: pluggy.PluginManager, host: ReferenceHost
) -> None:
    text = sent_text(pm)
    sms_status(pm, text.provider_message_id, "failed", ErrorCode="21610")
    failed = record(pm, text.id)
    reply(pm, "START", MessageSid="SM" + "2" * 32)
    # Twilio's callback again (or someone replaying it): the history and the opt-in stand.
    assert sms_status(pm, text.provider_message_id, "failed", ErrorCode="21610")["status"] == 200
    assert sms_status(pm, text.provider_message_id, "undelivered")["status"] == 200
    assert record(pm, text.id) == failed
    assert not store_of(pm).is_opted_out("demo", "text", MEI)
    assert [call["opted_out"] for call in host.calls_to("pm_set_opt_out")] == [True, False]


@pytest.mark.parametrize(
    ("signed_url", "called_url"),
    [
        ("https://pm.example.com:443/plugins/ondemand/", BASE),
        (BASE, "https://pm.example.com:443/plugins/ondemand/"),
        ("http://pm.example.com:80/plugins/ondemand/", "http://pm.example.com/plugins/ondemand/"),
        ("http://pm.example.com/plugins/ondemand/", "http://pm.example.com:80/plugins/ondemand/"),
        (
            "https://PM.example.com:443/plugins/ondemand/",
            "https://PM.example.com/plugins/ondemand/",
        ),
    ],
)
def test_a_signature_holds_with_or_without_the_default_port(
    pm: pluggy.PluginManager, signed_url: str, called_url: str
) -> None:
    text = sent_text(pm)
    form = {"MessageSid": text.provider_message_id, "MessageStatus": "delivered"}
    signature = {"X-Twilio-Signature": sign(signed_url + "twilio/status", form, SMS_TOKEN)}
    answer = request(pm, "twilio/status", form, headers=signature, url=called_url + "twilio/status")
    assert answer["status"] == 200
    assert record(pm, text.id).status == "delivered"


@pytest.mark.parametrize(
    ("signed_url", "called_url"),
    [
        ("https://pm.example.com:8443/plugins/ondemand/", BASE),
        (BASE, "https://pm.example.com:8443/plugins/ondemand/"),
        ("https://pm.example.com:80/plugins/ondemand/", BASE),
        ("http://pm.example.com:443/plugins/ondemand/", "http://pm.example.com/plugins/ondemand/"),
        ("http://pm.example.com/plugins/ondemand/", BASE),
    ],
)
def test_only_the_schemes_default_port_may_be_left_out(
    pm: pluggy.PluginManager, signed_url: str, called_url: str
) -> None:
    text = sent_text(pm)
    form = {"MessageSid": text.provider_message_id, "MessageStatus": "delivered"}
    signature = {"X-Twilio-Signature": sign(signed_url + "twilio/status", form, SMS_TOKEN)}
    answer = request(pm, "twilio/status", form, headers=signature, url=called_url + "twilio/status")
    assert answer["status"] == 403
    assert record(pm, text.id) == text
