"""Compliance through the Twilio channel, over HTTP as Twilio posts its replies: opt-outs by any
reasonable means (47 CFR 64.1200(a)(10)), the words a patient would use in any case,
punctuation or width; HELP answered; a STOP counting for the practice's number before any
on-demand text left it; a validity period on every text."""

from __future__ import annotations

import pluggy
import pytest
from conftest import CONTEXT, Build, patient_replies, send_to_mei
from peers.twilio import TwilioPeer
from peers.twilio_signature import sign
from test_inbound import SMS_TOKEN, twilio_settings
from test_inbound_http import base_url, pm, post, sms_gateway

from ondemand_plugin.errors import OnDemandError
from ondemand_plugin.rules.opt_outs import read_reply
from ondemand_plugin.testing import store_of

__all__ = ["base_url", "pm", "sms_gateway"]  # fixtures shared with the HTTP wiring's tests

MEI = "+15035550123"
# Full-width letters, as some phone keyboards type them.
FULL_WIDTH_STOP = "".join(chr(ord(letter) + 0xFEE0) for letter in "STOP")
FULL_WIDTH_START = "".join(chr(ord(letter) + 0xFEE0) for letter in "start")
PRACTICE_NUMBER = "+15035550101"
OPT_OUTS = [
    "STOP",
    "stop",
    "Stop.",
    "stop please",
    "Stop texting me",
    FULL_WIDTH_STOP,
    "OPT OUT",
    "opt-out!",
    "optout",
    "Unsubscribe",
    "STOPALL",
    "end",
    "Quit",
    "revoke",
    "cancel",
    "please stop texting me",
    "no more texts",
    "Don't text me",
    "ALTO",
    "parar",
    "Cancelar",
    "NO MÁS",
    "no mas",
]
OTHER_REPLIES = ["Thanks, I paid", "Can I pay on Friday?", "Who is this?", "ok"]


@pytest.mark.parametrize("text", OPT_OUTS)
def test_every_reasonable_way_of_saying_stop_is_an_opt_out(text: str) -> None:
    assert read_reply(text) == "opt_out"


@pytest.mark.parametrize("text", ["START", "unstop", "Yes!", FULL_WIDTH_START])
def test_start_unstop_and_yes_opt_back_in(text: str) -> None:
    assert read_reply(text) == "opt_in"


@pytest.mark.parametrize("text", ["HELP", "help?", "Info", "ayuda"])
def test_help_and_info_ask_for_help(text: str) -> None:
    assert read_reply(text) == "help"


@pytest.mark.parametrize("text", OTHER_REPLIES)
def test_other_replies_are_only_replies(text: str) -> None:
    assert read_reply(text) is None


def reply(base_url: str, text: str, to: str = PRACTICE_NUMBER) -> int:
    url = base_url + "ondemand/twilio/inbound"
    form = {"From": MEI, "To": to, "Body": text}
    return post(url, form, sign(url, form, SMS_TOKEN))[0]


def texts_to_mei(gateway: TwilioPeer) -> list[str]:
    return [form["Body"] for form in gateway.created.values() if form.get("To") == MEI]


@pytest.mark.parametrize("text", ["Stop texting me", FULL_WIDTH_STOP, "NO MÁS", "opt-out!"])
def test_a_stop_in_words_through_twilio_refuses_the_next_send_and_is_confirmed_once(
    pm: pluggy.PluginManager, base_url: str, sms_gateway: TwilioPeer, text: str
) -> None:
    send_to_mei(pm)
    assert reply(base_url, text) == 200
    with pytest.raises(OnDemandError) as refused:
        send_to_mei(pm)
    assert refused.value.code == "opted_out"
    [_, confirmation] = texts_to_mei(sms_gateway)
    assert confirmation.startswith("Maple Street Pediatrics: you are opted out")
    assert "Reply START" in confirmation
    assert [form["From"] for form in sms_gateway.created.values()][-1] == PRACTICE_NUMBER


def test_a_stop_to_the_practice_s_number_counts_before_any_on_demand_text(
    pm: pluggy.PluginManager, base_url: str
) -> None:
    assert reply(base_url, "STOP") == 200
    assert store_of(pm).is_opted_out("demo", "text", MEI)
    with pytest.raises(OnDemandError) as refused:
        send_to_mei(pm)
    assert refused.value.code == "opted_out"


def test_a_stop_to_a_number_no_practice_sends_from_changes_nothing(
    pm: pluggy.PluginManager, base_url: str
) -> None:
    assert reply(base_url, "STOP", to="+15035550999") == 200
    assert not store_of(pm).is_opted_out("demo", "text", MEI)


def test_start_in_words_opts_back_in(pm: pluggy.PluginManager, base_url: str) -> None:
    send_to_mei(pm)
    reply(base_url, "stop please")
    reply(base_url, "Yes!")
    assert send_to_mei(pm)["status"] == "sent"


def test_help_is_answered_with_the_practice_s_name_and_phone(
    pm: pluggy.PluginManager, base_url: str, sms_gateway: TwilioPeer
) -> None:
    send_to_mei(pm)
    assert reply(base_url, "HELP") == 200
    [_, answer] = texts_to_mei(sms_gateway)
    assert "Maple Street Pediatrics" in answer and "+15035550100" in answer
    assert not store_of(pm).is_opted_out("demo", "text", MEI)
    assert patient_replies(pm) == []


def test_any_other_reply_is_shown_in_the_guarantor_s_history_and_answered_with_nothing(
    pm: pluggy.PluginManager, base_url: str, sms_gateway: TwilioPeer
) -> None:
    sent = send_to_mei(pm)
    assert reply(base_url, "Can I pay on Friday?") == 200
    [kept] = patient_replies(pm)
    assert (kept["text"], kept["address"], kept["channel"]) == (
        "Can I pay on Friday?",
        MEI,
        "twilio_sms",
    )
    assert kept["in_reply_to"]["notification_id"] == sent["notification_id"]
    assert len(texts_to_mei(sms_gateway)) == 1
    assert not store_of(pm).is_opted_out("demo", "text", MEI)


def test_staff_record_an_opt_out_the_words_did_not_catch_from_the_reply_s_action(
    pm: pluggy.PluginManager, base_url: str
) -> None:
    send_to_mei(pm)
    reply(base_url, "My son has his own phone now, please use that")
    [kept] = patient_replies(pm)
    [action] = kept["actions"]
    recorded = pm.hook.pm_dashboard_action(
        action_id=action["action_id"],
        step=action["step"],
        subject={"type": "guarantor", "id": kept["guarantor_id"]},
        payload={**action["payload"], "note": "Asked in a reply"},
        context=CONTEXT,
    )
    assert (recorded["opted_out"], recorded["mode"]) == (True, "text")
    assert store_of(pm).is_opted_out("demo", "text", MEI)
    with pytest.raises(OnDemandError) as refused:
        send_to_mei(pm)
    assert refused.value.code == "opted_out"


def test_a_text_carries_the_validity_period_so_a_stale_pay_link_is_dropped(
    pm: pluggy.PluginManager, sms_gateway: TwilioPeer
) -> None:
    send_to_mei(pm)
    [form] = sms_gateway.created.values()
    assert form["ValidityPeriod"] == "900"


def test_the_validity_period_is_configurable(build: Build, sms_gateway: TwilioPeer) -> None:
    pm, _ = build(
        channels={"text": "twilio_sms"},
        twilio_sms=twilio_settings(sms_gateway),
        text_validity_seconds=300,
    )
    send_to_mei(pm)
    [form] = sms_gateway.created.values()
    assert form["ValidityPeriod"] == "300"


def test_the_first_text_to_a_number_says_how_to_opt_out_and_the_next_does_not(
    pm: pluggy.PluginManager, sms_gateway: TwilioPeer
) -> None:
    send_to_mei(pm, body="Your balance is {{BalanceDue}}: {{QuickPayLink}}")
    send_to_mei(pm, body="Your balance is {{BalanceDue}}, again: {{QuickPayLink}}")
    first, second = texts_to_mei(sms_gateway)
    assert first.endswith("\nReply STOP to opt out.")
    assert "STOP" not in second


def test_a_first_text_that_says_how_to_stop_gets_no_second_line(
    pm: pluggy.PluginManager, sms_gateway: TwilioPeer
) -> None:
    send_to_mei(pm, body="Balance {{BalanceDue}}. Text STOP to end these.")
    [text] = texts_to_mei(sms_gateway)
    assert text == "Balance $120.50. Text STOP to end these."


def test_the_opt_out_line_counts_in_the_text_s_length(pm: pluggy.PluginManager) -> None:
    with pytest.raises(OnDemandError) as refused:
        send_to_mei(pm, body="x" * 1590)  # 1,590 characters fit; with the line they do not
    assert refused.value.code == "invalid_request"


def test_every_consent_change_is_kept_in_the_ledger_with_its_words_and_sender(
    pm: pluggy.PluginManager, base_url: str
) -> None:
    send_to_mei(pm)
    reply(base_url, "Stop texting me")
    reply(base_url, "START")
    stop, start = store_of(pm).consent_changes("demo", None, None)
    assert (stop.opted_out, stop.source, stop.actor) == (True, "reply", "twilio_sms")
    assert (stop.words, stop.sender, stop.address) == ("Stop texting me", PRACTICE_NUMBER, MEI)
    assert (start.opted_out, start.words) == (False, "START")
    assert start.changed_at >= stop.changed_at
