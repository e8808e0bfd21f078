"""A call says how to stop calls and takes the key press for it: 9 opts the number out of calls
(not of texts) from the number that called, through the Twilio voice channel."""

from __future__ import annotations

import pluggy
import pytest
from conftest import send_to_mei
from peers.twilio import TwilioPeer
from test_inbound import (
    BASE,
    MEI,
    PRACTICE_NUMBER,
    VOICE_TOKEN,
    host,
    pm,
    request,
    sms_gateway,
    twilio_host,
    voice_gateway,
)

from ondemand_plugin.commands.reference_host import ReferenceHost
from ondemand_plugin.errors import OnDemandError
from ondemand_plugin.testing import store_of

__all__ = ["host", "pm", "sms_gateway", "twilio_host", "voice_gateway"]  # shared fixtures


def call_mei(pm: pluggy.PluginManager) -> None:
    send_to_mei(pm, mode="voice", body="You owe {{BalanceDue}}")


def press(pm: pluggy.PluginManager, digits: str, call_sid: str = "CA" + "1" * 32) -> dict[str, str]:
    form = {"CallSid": call_sid, "From": PRACTICE_NUMBER, "To": MEI, "Digits": digits}
    return request(pm, "twilio/keypress", form, token=VOICE_TOKEN)


def test_a_call_says_how_to_stop_calls_and_gathers_the_key_at_the_plugin_s_route(
    pm: pluggy.PluginManager, voice_gateway: TwilioPeer
) -> None:
    call_mei(pm)
    [form] = voice_gateway.created.values()
    assert "<Say>You owe $120.50</Say>" in form["Twiml"]
    assert f'<Gather numDigits="1" timeout="5" action="{BASE}twilio/keypress"' in form["Twiml"]
    assert "press 9" in form["Twiml"]


def test_pressing_9_opts_the_number_out_of_calls_and_tells_the_host(
    pm: pluggy.PluginManager, host: ReferenceHost
) -> None:
    call_mei(pm)
    answer = press(pm, "9")
    assert answer["status"] == 200 and "no more calls" in answer["body"]
    with pytest.raises(OnDemandError) as refused:
        call_mei(pm)
    assert refused.value.code == "opted_out"
    assert send_to_mei(pm)["status"] == "sent"  # texts are another matter
    [told] = host.calls_to("pm_set_opt_out")
    assert (told["mode"], told["context"]["source"]) == ("voice", "key_press")


def test_another_key_only_ends_the_call(pm: pluggy.PluginManager, host: ReferenceHost) -> None:
    call_mei(pm)
    answer = press(pm, "1")
    assert answer["status"] == 200 and "<Hangup/>" in answer["body"]
    assert host.calls_to("pm_set_opt_out") == []
    assert not store_of(pm).is_opted_out("demo", "voice", MEI)


def test_an_unsigned_key_press_is_refused_and_changes_nothing(pm: pluggy.PluginManager) -> None:
    call_mei(pm)
    form = {"CallSid": "CA" + "2" * 32, "From": PRACTICE_NUMBER, "To": MEI, "Digits": "9"}
    assert request(pm, "twilio/keypress", form, headers={})["status"] == 403
    assert not store_of(pm).is_opted_out("demo", "voice", MEI)
