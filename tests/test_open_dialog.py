"""The Send Balance Notification dialog (step "open"): who may determine the balance (R6, R8),
who can be sent to and how (R8), zero balance and credit (R5), and the template list (R7, R9)."""

from __future__ import annotations

from typing import Any

import pluggy
import pytest
from conftest import CONTEXT, assert_valid, enable_addon

from ondemand_plugin import MANAGE_ACTION_ID, SEND_ACTION_ID
from ondemand_plugin.testing import ReferenceHost, guarantor


@pytest.fixture
def pm(ondemand_pm: pluggy.PluginManager) -> pluggy.PluginManager:
    enable_addon(ondemand_pm)
    return ondemand_pm


def open_dialog(
    pm: pluggy.PluginManager, subject_type: str, subject_id: str, context: dict[str, Any] = CONTEXT
) -> dict[str, Any]:
    form: dict[str, Any] = pm.hook.pm_dashboard_action(
        action_id=SEND_ACTION_ID,
        step="open",
        subject={"type": subject_type, "id": subject_id},
        payload={},
        context=context,
    )
    assert_valid("send-form", form)
    return form


def entities(form: dict[str, Any]) -> set[tuple[str, str]]:
    return {(option["entity"]["type"], option["entity"]["id"]) for option in form["send_to"]}


def option(form: dict[str, Any], entity_id: str, mode: str) -> dict[str, Any]:
    [found] = [
        item
        for item in form["send_to"]
        if item["entity"]["id"] == entity_id and item["mode"] == mode
    ]
    return found


def add_template(
    pm: pluggy.PluginManager, context: dict[str, Any], **template: Any
) -> dict[str, Any]:
    answer: dict[str, Any] = pm.hook.pm_dashboard_action(
        action_id=MANAGE_ACTION_ID,
        step="submit",
        subject={"type": "practice", "id": context["practice_id"]},
        payload={"op": "create", "template": template},
        context=context,
    )
    return answer["template"]


# The dialog's shape


def test_the_dialog_for_a_patient_with_two_guarantors(pm: pluggy.PluginManager) -> None:
    form = open_dialog(pm, "patient", "p-lily")
    assert form["action_id"] == SEND_ACTION_ID
    assert form["can_send"] is True
    assert form["reason"] is None
    no_payment = "Tom Chen's balance is $0.00: the notification can be sent, but no payment can be "
    assert form["guarantors"] == [
        {
            "id": "g-mei",
            "name": "Mei Chen",
            "balance": "120.50",
            "payment_allowed": True,
            "notice": None,
        },
        {
            "id": "g-tom",
            "name": "Tom Chen",
            "balance": "0.00",
            "payment_allowed": False,
            "notice": no_payment + "made from it.",
        },
    ]
    assert option(form, "g-mei", "text") == {
        "entity": {"type": "guarantor", "id": "g-mei", "name": "Mei Chen"},
        "mode": "text",
        "address": "+15035550123",
        "allowed": True,
        "reason": None,
        "guarantor_ids": ["g-mei"],
    }
    assert form["templates"] == []
    assert all(isinstance(notice, str) and notice for notice in form["notices"])


# R8: who can be sent to


def test_a_patient_dialog_offers_the_patient_and_its_guarantors(
    pm: pluggy.PluginManager,
) -> None:
    form = open_dialog(pm, "patient", "p-ruth")
    assert entities(form) == {("patient", "p-ruth"), ("guarantor", "g-ruth")}


def test_a_guarantor_dialog_offers_the_guarantor_and_its_patients(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    ondemand_host.patients["demo"]["p-lily"]["contacts"] = [
        {"kind": "email", "value": "lily.chen@example.com"}
    ]
    form = open_dialog(pm, "guarantor", "g-mei")
    # g-tom is another guarantor of Lily's, not someone on Mei's dashboard.
    assert entities(form) == {("guarantor", "g-mei"), ("patient", "p-lily")}
    [ruth] = open_dialog(pm, "guarantor", "g-ruth")["guarantors"]
    assert (ruth["id"], ruth["balance"], ruth["payment_allowed"]) == ("g-ruth", "-35.00", False)


def test_entities_without_contact_information_are_not_listed(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    assert ("patient", "p-lily") not in entities(open_dialog(pm, "patient", "p-lily"))
    assert ("patient", "p-lily") not in entities(open_dialog(pm, "guarantor", "g-mei"))
    ondemand_host.patients["demo"]["p-lily"]["contacts"] = [
        {"kind": "mobile", "value": "+15035550150"}
    ]
    assert ("patient", "p-lily") in entities(open_dialog(pm, "patient", "p-lily"))


def test_each_contact_kind_is_offered_in_the_modes_that_can_reach_it(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    ondemand_host.guarantors["demo"]["g-mei"]["contacts"] = [
        {"kind": "email", "value": "mei@example.com"},
        {"kind": "mobile", "value": "+15035550123"},
        {"kind": "home", "value": "+15035550124"},
        {"kind": "work", "value": "+15035550125"},
    ]
    form = open_dialog(pm, "guarantor", "g-mei")
    modes_by_address: dict[str, set[str]] = {}
    for item in form["send_to"]:
        modes_by_address.setdefault(item["address"], set()).add(item["mode"])
    assert modes_by_address == {
        "mei@example.com": {"email"},
        "+15035550123": {"text", "voice"},
        "+15035550124": {"voice"},
        "+15035550125": {"voice"},
    }


def test_an_opted_out_mode_is_listed_as_not_allowed_with_a_reason(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    ondemand_host.guarantors["demo"]["g-mei"]["opt_out"]["text"] = True
    form = open_dialog(pm, "patient", "p-lily")
    text = option(form, "g-mei", "text")
    assert text["allowed"] is False
    assert "opted out" in text["reason"]
    assert option(form, "g-mei", "voice")["allowed"] is True  # the same number, another mode
    assert option(form, "g-mei", "email")["allowed"] is True


def test_a_practice_without_sender_email_or_text_number_cannot_send_those_modes(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    ondemand_host.practices["demo"]["sender_email"] = None
    ondemand_host.practices["demo"]["text_from"] = None
    form = open_dialog(pm, "guarantor", "g-mei")
    for mode in ("email", "text"):
        refused = option(form, "g-mei", mode)
        assert refused["allowed"] is False
        assert "practice has no" in refused["reason"]
    assert option(form, "g-mei", "voice")["allowed"] is True


# R5: $0.00 or a credit


def test_zero_balance_can_be_sent_but_not_paid(pm: pluggy.PluginManager) -> None:
    form = open_dialog(pm, "patient", "p-lily")
    tom = next(item for item in form["guarantors"] if item["id"] == "g-tom")
    assert tom["payment_allowed"] is False
    assert form["can_send"] is True
    assert tom["notice"] == (
        "Tom Chen's balance is $0.00: the notification can be sent, but no payment can be made "
        "from it."
    )
    mei = next(item for item in form["guarantors"] if item["id"] == "g-mei")
    assert mei["notice"] is None
    # Said beside Tom only, so that a host does not show it while Mei is chosen.
    assert not any("Tom Chen" in notice for notice in form["notices"])


def test_a_credit_can_be_sent_but_not_paid(pm: pluggy.PluginManager) -> None:
    form = open_dialog(pm, "patient", "p-ruth")
    assert form["guarantors"][0]["payment_allowed"] is False
    assert form["can_send"] is True
    assert "$35.00 credit" in form["guarantors"][0]["notice"]


# R6 and R8: batched statements


@pytest.mark.parametrize(
    ("subject_type", "subject_id"), [("patient", "p-noah"), ("guarantor", "g-grace")]
)
def test_without_a_batched_statement_the_dialog_cannot_send_and_says_why(
    pm: pluggy.PluginManager, subject_type: str, subject_id: str
) -> None:
    form = open_dialog(pm, subject_type, subject_id)
    assert form["can_send"] is False
    assert "batched statement" in form["reason"]
    assert form["guarantors"] == []


def test_guarantors_without_a_batched_statement_are_not_listed(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    ondemand_host.add_guarantor(
        "demo",
        guarantor("g-zoe", "Zoe", "Chen", "45.00", statements=0, contacts=[("email", "z@x.org")]),
    )
    ondemand_host.link("demo", "p-lily", "g-zoe")
    form = open_dialog(pm, "patient", "p-lily")
    assert [item["id"] for item in form["guarantors"]] == ["g-mei", "g-tom"]
    assert form["can_send"] is True
    assert any("1 guarantor" in notice and "not listed" in notice for notice in form["notices"])


# R7 and R9: the template dropdown


def test_the_dropdown_lists_only_active_templates_of_this_practice(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    active = add_template(
        pm, CONTEXT, label="Friendly reminder", mode="text", body="Pay at {{QuickPayLink}}"
    )
    add_template(pm, CONTEXT, label="Old wording", mode="text", body="Old", active=False)
    ondemand_host.add_practice({**ondemand_host.practices["demo"], "id": "north"})
    north = {**CONTEXT, "practice_id": "north"}
    enable_addon(pm, "north")
    add_template(pm, north, label="North only", mode="email", body="Hello from North")

    form = open_dialog(pm, "patient", "p-lily")
    assert form["templates"] == [{"id": active["id"], "label": "Friendly reminder", "mode": "text"}]
    assert not any("no On-Demand templates" in notice for notice in form["notices"])
