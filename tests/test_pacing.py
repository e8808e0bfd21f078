"""Pacing: at most recipient_limit on-demand messages to one address (a text and a call to one
number count together), and the same message again within repeat_window_seconds only when the
submit confirms it. Nothing is recorded or sent when a send is refused."""

from __future__ import annotations

import functools
from typing import Any

import pluggy
import pytest
from conftest import CONTEXT, Build

from ondemand_plugin import SEND_ACTION_ID
from ondemand_plugin.boundary.config import RecipientLimit, load_config
from ondemand_plugin.errors import OnDemandError


@pytest.fixture
def build(build: Build, database_url: str) -> Build:
    """Hosts whose plugin counts on each backend in turn."""
    return functools.partial(build, database_url=database_url)


BODY = "Your balance is {{BalanceDue}}: {{QuickPayLink}}"


def submit(
    pm: pluggy.PluginManager,
    *,
    mode: str = "text",
    body: str = BODY,
    confirm_repeat: bool | None = None,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "guarantor_id": "g-mei",
        "send_to": {"entity": {"type": "guarantor", "id": "g-mei"}, "mode": mode},
        "template_id": None,
        "body": body,
    }
    if confirm_repeat is not None:
        payload["confirm_repeat"] = confirm_repeat
    result: dict[str, Any] = pm.hook.pm_dashboard_action(
        action_id=SEND_ACTION_ID,
        step="submit",
        subject={"type": "patient", "id": "p-lily"},
        payload=payload,
        context=CONTEXT,
    )
    return result


def sends(pm: pluggy.PluginManager) -> int:
    [entries] = pm.hook.pm_history_entries(
        guarantor_id="g-mei", context=CONTEXT, before=None, limit=100
    )
    return len(entries)


def refusal(pm: pluggy.PluginManager, **request: Any) -> OnDemandError:
    with pytest.raises(OnDemandError) as refused:
        submit(pm, **request)
    return refused.value


def test_by_default_three_messages_a_day_and_ten_minutes_between_repeats() -> None:
    config = load_config(None, environ={})
    assert config.recipient_limit == RecipientLimit(messages=3, hours=24)
    assert config.repeat_window_seconds == 600


def test_null_turns_the_limit_off_and_zero_the_repeat_check() -> None:
    config = load_config({"recipient_limit": None, "repeat_window_seconds": 0}, environ={})
    assert (config.recipient_limit, config.repeat_window_seconds) == (None, 0)


def test_the_limit_refuses_the_message_past_it_and_says_when_the_next_may_go(
    build: Build,
) -> None:
    pm, _ = build(recipient_limit={"messages": 2, "hours": 24})
    submit(pm, body="First {{BalanceDue}}")
    submit(pm, body="Second {{BalanceDue}}")
    refused = refusal(pm, body="Third {{BalanceDue}}")
    assert refused.code == "recipient_limit"
    assert "2 messages went to this address in the last 24 hours" in refused.message
    assert "The next may go at" in refused.message
    assert sends(pm) == 2


def test_a_text_and_a_call_to_one_number_count_together(build: Build) -> None:
    pm, _ = build(recipient_limit={"messages": 2, "hours": 24})
    submit(pm, body="Text {{BalanceDue}}")
    submit(pm, mode="voice", body="Call about {{BalanceDue}}")
    assert refusal(pm, body="Another {{BalanceDue}}").code == "recipient_limit"
    # An e-mail goes to another address.
    assert submit(pm, mode="email", body="Mail {{BalanceDue}}")["status"] == "sent"


def test_a_null_limit_lets_every_message_go(build: Build) -> None:
    pm, _ = build(recipient_limit=None)
    for n in range(5):
        assert submit(pm, body=f"Message {n}: {{{{BalanceDue}}}}")["status"] == "sent"


def test_the_same_message_again_soon_is_asked_about_and_goes_when_confirmed(
    build: Build,
) -> None:
    pm, _ = build(repeat_window_seconds=600)
    submit(pm)
    refused = refusal(pm)
    assert refused.code == "recent_duplicate"
    assert refused.message.startswith("Sent 1 minute ago. Send again?")
    assert sends(pm) == 1
    assert submit(pm, confirm_repeat=True)["status"] == "sent"
    assert sends(pm) == 2


def test_another_message_or_mode_is_no_repeat(build: Build) -> None:
    pm, _ = build(repeat_window_seconds=600)
    submit(pm)
    assert submit(pm, body="Reminder: {{BalanceDue}}")["status"] == "sent"
    assert submit(pm, mode="email")["status"] == "sent"


def test_a_zero_repeat_window_asks_nothing(build: Build) -> None:
    pm, _ = build(repeat_window_seconds=0)
    submit(pm)
    assert submit(pm)["status"] == "sent"
