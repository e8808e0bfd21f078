"""The starter templates: one per mode for a practice whose add-on is switched on for the first
time, the practice's own to edit, copy or delete; whole sentences at $0.00 and a credit (R5)."""

from __future__ import annotations

import logging
import re
from typing import Any

import pluggy
import pytest
from conftest import CONTEXT, Build, assert_valid
from test_extensions import BrokenTemplateStore, TemplateStorePlugin

from ondemand_plugin import MANAGE_ACTION_ID, SEND_ACTION_ID
from ondemand_plugin.admin import switch_addon
from ondemand_plugin.rules.templates import STARTER_TEMPLATES
from ondemand_plugin.testing import ReferenceHost

PRACTICE = {"type": "practice", "id": "demo"}


def switch(pm: pluggy.PluginManager, enabled: bool) -> tuple[str, ...]:
    done = switch_addon(pm, "demo", enabled=enabled, by="Sam Rivera", reason="Plan changed")
    return done.starter_templates


def manage(pm: pluggy.PluginManager, **payload: Any) -> dict[str, Any]:
    answer: dict[str, Any] = pm.hook.pm_dashboard_action(
        action_id=MANAGE_ACTION_ID,
        step="submit",
        subject=PRACTICE,
        payload=payload,
        context=CONTEXT,
    )
    return answer


def templates(pm: pluggy.PluginManager) -> list[dict[str, Any]]:
    return list(manage(pm, op="list")["templates"])


def test_the_first_switch_on_gives_one_active_template_per_mode(
    ondemand_pm: pluggy.PluginManager,
) -> None:
    ids = switch(ondemand_pm, True)
    listed = templates(ondemand_pm)
    assert sorted(t["id"] for t in listed) == sorted(ids)
    assert sorted(t["mode"] for t in listed) == ["email", "text", "voice"]
    assert all(t["active"] for t in listed)
    form = ondemand_pm.hook.pm_dashboard_action(
        action_id=SEND_ACTION_ID,
        step="open",
        subject={"type": "patient", "id": "p-lily"},
        payload={},
        context=CONTEXT,
    )
    assert_valid("send-form", form)
    assert len(form["templates"]) == 3
    assert not any("no On-Demand templates" in notice for notice in form["notices"])


def test_the_starters_are_the_practices_to_edit_copy_and_delete(
    ondemand_pm: pluggy.PluginManager,
) -> None:
    starters = set(switch(ondemand_pm, True))
    by_mode = {t["mode"]: t["id"] for t in templates(ondemand_pm)}
    edited = manage(
        ondemand_pm,
        op="update",
        template_id=by_mode["text"],
        template={"body": "Your balance is {{BalanceDue}}: {{QuickPayLink}}"},
    )["template"]
    assert edited["body"] == "Your balance is {{BalanceDue}}: {{QuickPayLink}}"
    copied = manage(ondemand_pm, op="copy", template_id=by_mode["email"])["template"]
    assert copied["label"] == "Copy of Balance by e-mail"
    manage(ondemand_pm, op="delete", template_id=by_mode["voice"])
    assert sorted(t["label"] for t in templates(ondemand_pm)) == [
        "Balance by e-mail",
        "Balance by text",
        "Copy of Balance by e-mail",
    ]
    assert starters == set(by_mode.values())


def test_a_later_switch_on_adds_no_starters_even_after_they_were_deleted(
    ondemand_pm: pluggy.PluginManager,
) -> None:
    for template_id in switch(ondemand_pm, True):
        manage(ondemand_pm, op="delete", template_id=template_id)
    switch(ondemand_pm, False)
    assert switch(ondemand_pm, True) == ()
    assert templates(ondemand_pm) == []


def test_a_failing_template_store_costs_the_starters_not_the_switch(
    build: Build, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        pm, _ = build(named={"cms-templates": TemplateStorePlugin(BrokenTemplateStore())})
    assert pm.hook.pm_dashboard_actions(
        dashboard="patient", subject={"type": "patient", "id": "p-lily"}, context=CONTEXT
    ) != [[]]
    assert "its starter templates could not be added" in caplog.text
    assert "cms-templates" in caplog.text


def preview(
    pm: pluggy.PluginManager, guarantor_id: str, mode: str, on: str = "p-lily"
) -> dict[str, Any]:
    by_mode = {t["mode"]: t["id"] for t in templates(pm)}
    answer: dict[str, Any] = pm.hook.pm_dashboard_action(
        action_id=SEND_ACTION_ID,
        step="preview",
        subject={"type": "patient", "id": on},
        payload={
            "guarantor_id": guarantor_id,
            "send_to": {"entity": {"type": "guarantor", "id": guarantor_id}, "mode": mode},
            "template_id": by_mode[mode],
        },
        context=CONTEXT,
    )
    assert_valid("send-preview", answer)
    return answer


NO_PAYMENT = "No payment is due at this time."


@pytest.mark.parametrize(("balance", "shown"), [("0.00", "$0.00"), ("-5.00", "$5.00 credit")])
def test_every_starter_reads_as_whole_sentences_when_nothing_can_be_paid(
    ondemand_pm: pluggy.PluginManager, ondemand_host: ReferenceHost, balance: str, shown: str
) -> None:
    switch(ondemand_pm, True)
    ondemand_host.guarantors["demo"]["g-mei"]["pops_balance"] = balance
    text = preview(ondemand_pm, "g-mei", "text")["body"]
    assert text == (
        f"Hi Mei, this is Maple Street Pediatrics. Your balance is {shown}. {NO_PAYMENT} "
        "Reply STOP to opt out."
    )
    email = preview(ondemand_pm, "g-mei", "email")["body"]
    assert email == (
        f"Dear Mei Chen,\n\nYour balance at Maple Street Pediatrics is {shown}.\n{NO_PAYMENT}\n\n"
        "Questions? Call us at +15035550100.\n\nMaple Street Pediatrics"
    )
    ondemand_host.guarantors["demo"]["g-ruth"]["pops_balance"] = balance
    call = preview(ondemand_pm, "g-ruth", "voice", on="p-ruth")["body"]
    assert call == (
        "Hello Ruth, this is Maple Street Pediatrics calling about your account. Your balance "
        f"is {shown}. If you have any questions, please call us at +15035550100. Thank you."
    )
    for body in (text, email, call):
        # No sentence is cut by the R5 wording ("Pay securely: No payment is due ...").
        assert not re.search(r":\s*No payment", body)


def test_every_starter_offers_the_pay_link_while_a_payment_can_be_made(
    ondemand_pm: pluggy.PluginManager,
) -> None:
    switch(ondemand_pm, True)
    assert "https://pay.example" in preview(ondemand_pm, "g-mei", "text")["body"]
    assert "https://pay.example" in preview(ondemand_pm, "g-mei", "email")["body"]
    for mode in ("text", "email"):
        assert preview(ondemand_pm, "g-mei", mode)["warnings"] == []


def test_the_starters_are_valid_template_input() -> None:
    assert [t["mode"] for t in STARTER_TEMPLATES] == ["text", "email", "voice"]
    for template in STARTER_TEMPLATES:
        assert_valid("template-input", template)
