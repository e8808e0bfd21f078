"""R7: On-Demand templates are their own set per practice, managed from the dialog's -MANAGE-
entry with the fields of a balance notification, and checked when saved and when sent."""

from __future__ import annotations

from typing import Any

import pluggy
import pytest
from conftest import CONTEXT, FIRST_TEXT_OPT_OUT, assert_valid, enable_addon, send_to_mei

from ondemand_plugin import MANAGE_ACTION_ID
from ondemand_plugin.errors import OnDemandError
from ondemand_plugin.rules import composing
from ondemand_plugin.testing import ReferenceHost

DEMO = {"type": "practice", "id": "demo"}
NORTH_CONTEXT = {"practice_id": "north", "user": {"id": "u9", "name": "Nell North"}}
REMINDER = {
    "label": "Friendly reminder",
    "mode": "text",
    "body": "Hi {{GuarantorFirstName}}, you owe {{BalanceDue}}: {{QuickPayLink}}",
}


@pytest.fixture
def pm(ondemand_pm: pluggy.PluginManager, ondemand_host: ReferenceHost) -> pluggy.PluginManager:
    ondemand_host.add_practice(
        {
            "id": "north",
            "name": "North Clinic",
            "phone": "+15035550900",
            "timezone": "America/Los_Angeles",
            "sender_email": "billing@north.example.com",
            "text_from": "+15035550901",
        }
    )
    enable_addon(ondemand_pm)
    enable_addon(ondemand_pm, "north")
    return ondemand_pm


def manage(
    pm: pluggy.PluginManager,
    op: str,
    *,
    subject: dict[str, str] = DEMO,
    context: dict[str, Any] = CONTEXT,
    **payload: Any,
) -> dict[str, Any]:
    answer: dict[str, Any] = pm.hook.pm_dashboard_action(
        action_id=MANAGE_ACTION_ID,
        step="submit",
        subject=subject,
        payload={"op": op, **payload},
        context=context,
    )
    assert_valid("template-result", answer)
    return answer


def create(pm: pluggy.PluginManager, **kwargs: Any) -> dict[str, Any]:
    template = kwargs.pop("template", REMINDER)
    return manage(pm, "create", template=template, **kwargs)["template"]


def labels(pm: pluggy.PluginManager, context: dict[str, Any] = CONTEXT) -> list[str]:
    subject = {"type": "practice", "id": context["practice_id"]}
    templates = manage(pm, "list", subject=subject, context=context)["templates"]
    return sorted(template["label"] for template in templates)


def refusal(call: Any, *args: Any, **kwargs: Any) -> OnDemandError:
    with pytest.raises(OnDemandError) as raised:
        call(*args, **kwargs)
    return raised.value


# Managing templates


def test_templates_are_created_listed_updated_copied_and_deleted(
    pm: pluggy.PluginManager,
) -> None:
    created = create(pm)
    assert created == {
        "id": created["id"],
        "active": True,
        "sender_email": None,
        "subject": None,
        **REMINDER,
    }
    assert manage(pm, "get", template_id=created["id"])["template"] == created

    updated = manage(
        pm, "update", template_id=created["id"], template={"label": "Gentle reminder"}
    )["template"]
    assert updated == {**created, "label": "Gentle reminder"}

    copied = manage(pm, "copy", template_id=created["id"])["template"]
    assert copied["id"] != created["id"]
    assert copied == {**updated, "id": copied["id"], "label": "Copy of Gentle reminder"}
    assert labels(pm) == ["Copy of Gentle reminder", "Gentle reminder"]

    deleted = manage(pm, "delete", template_id=created["id"])["template"]
    assert deleted["id"] == created["id"]
    assert labels(pm) == ["Copy of Gentle reminder"]
    assert refusal(manage, pm, "get", template_id=created["id"]).code == "template_not_found"


def test_a_copy_can_change_what_it_copies_and_leaves_the_original_alone(
    pm: pluggy.PluginManager,
) -> None:
    original = create(pm)
    copied = manage(
        pm, "copy", template_id=original["id"], template={"label": "Short", "body": "Pay"}
    )["template"]
    assert (copied["label"], copied["body"], copied["mode"]) == ("Short", "Pay", "text")
    assert manage(pm, "get", template_id=original["id"])["template"] == original


@pytest.mark.parametrize(
    "subject",
    [{"type": "patient", "id": "p-lily"}, {"type": "guarantor", "id": "g-mei"}],
)
def test_templates_can_be_managed_from_the_dashboard_the_dialog_was_opened_on(
    pm: pluggy.PluginManager, subject: dict[str, str]
) -> None:
    created = create(pm, subject=subject)
    assert [t["id"] for t in manage(pm, "list", subject=subject)["templates"]] == [created["id"]]
    assert labels(pm) == ["Friendly reminder"]


def test_the_manage_dialog_offers_the_fields_of_a_balance_notification(
    pm: pluggy.PluginManager,
) -> None:
    created = create(pm)
    form = pm.hook.pm_dashboard_action(
        action_id=MANAGE_ACTION_ID, step="open", subject=DEMO, payload={}, context=CONTEXT
    )
    assert form["templates"] == [created]
    assert form["modes"] == ["email", "text", "voice"]
    assert set(form["fields"]) >= {
        "GuarantorFirstName",
        "GuarantorLastName",
        "GuarantorFullName",
        "PatientFirstName",
        "PatientLastName",
        "PatientFullName",
        "BalanceDue",
        "PracticeName",
        "PracticePhone",
        "QuickPayLink",
    }


def test_email_settings_are_kept_for_email_templates_only(pm: pluggy.PluginManager) -> None:
    settings = {"sender_email": "Desk@MapleStreet.example.com", "subject": "Your balance"}
    email = create(pm, template={**REMINDER, "mode": "email", **settings})
    text = create(pm, template={**REMINDER, **settings})
    assert (email["sender_email"], email["subject"]) == (
        "Desk@maplestreet.example.com",
        "Your balance",
    )
    assert (text["sender_email"], text["subject"]) == (None, None)


# Per practice


def test_another_practices_id_as_subject_is_not_found(pm: pluggy.PluginManager) -> None:
    north = {"type": "practice", "id": "north"}
    assert refusal(manage, pm, "list", subject=north).code == "not_found"
    assert refusal(create, pm, subject=north).code == "not_found"
    assert labels(pm, NORTH_CONTEXT) == []


def test_a_template_of_another_practice_cannot_be_seen_changed_or_used(
    pm: pluggy.PluginManager,
) -> None:
    north = {"type": "practice", "id": "north"}
    theirs = create(pm, subject=north, context=NORTH_CONTEXT)

    assert labels(pm) == []
    for op in ("get", "update", "copy", "delete"):
        error = refusal(manage, pm, op, template_id=theirs["id"], template={"label": "Mine"})
        assert error.code == "template_not_found"
    refused = refusal(send_to_mei, pm, template_id=theirs["id"], body=None)
    assert refused.code == "template_not_found"
    still = manage(pm, "get", subject=north, context=NORTH_CONTEXT, template_id=theirs["id"])
    assert still["template"] == theirs


def test_an_unknown_template_cannot_be_sent(pm: pluggy.PluginManager) -> None:
    refused = refusal(send_to_mei, pm, template_id="tpl_nothing", body=None)
    assert refused.code == "template_not_found"


# Checked when saved


@pytest.mark.parametrize(
    "template",
    [
        {**REMINDER, "body": "You owe {{AmountOwed}}"},
        {**REMINDER, "body": "Hi {{ guarantorfirstname }}"},
        {**REMINDER, "mode": "email", "subject": "{{Invoice}}"},
    ],
)
def test_a_template_with_an_unknown_field_is_not_saved(
    pm: pluggy.PluginManager, template: dict[str, Any]
) -> None:
    error = refusal(create, pm, template=template)
    assert error.code == "unknown_field"
    assert labels(pm) == []


def test_an_update_with_an_unknown_field_leaves_the_template_as_it_was(
    pm: pluggy.PluginManager,
) -> None:
    created = create(pm)
    error = refusal(manage, pm, "update", template_id=created["id"], template={"body": "{{X}}"})
    assert error.code == "unknown_field"
    assert manage(pm, "get", template_id=created["id"])["template"] == created


def test_a_voice_template_cannot_carry_a_quickpay_link(pm: pluggy.PluginManager) -> None:
    voice = {**REMINDER, "mode": "voice"}
    assert refusal(create, pm, template=voice).code == "unknown_field"
    text = create(pm)
    error = refusal(manage, pm, "update", template_id=text["id"], template={"mode": "voice"})
    assert error.code == "unknown_field"
    assert labels(pm) == ["Friendly reminder"]
    call = create(pm, template={**voice, "body": "Please call {{PracticePhone}}."})
    assert call["mode"] == "voice"


# Checked when sent


def test_an_inactive_template_cannot_be_sent(pm: pluggy.PluginManager) -> None:
    created = create(pm, template={**REMINDER, "active": False})
    refused = refusal(send_to_mei, pm, template_id=created["id"], body=None)
    assert refused.code == "template_not_found"
    manage(pm, "update", template_id=created["id"], template={"active": True})
    assert send_to_mei(pm, template_id=created["id"], body=None)["status"] == "sent"


def test_a_template_of_another_mode_is_a_mode_mismatch(pm: pluggy.PluginManager) -> None:
    email = create(pm, template={**REMINDER, "mode": "email"})
    refused = refusal(send_to_mei, pm, template_id=email["id"], body=None)
    assert refused.code == "template_mode_mismatch"
    assert send_to_mei(pm, template_id=email["id"], mode="email", body=None)["status"] == "sent"


def test_a_template_sends_its_own_body_with_fields_merged(pm: pluggy.PluginManager) -> None:
    created = create(pm)
    result = send_to_mei(pm, template_id=created["id"], body=None)
    assert result["body"] == (
        "Hi Mei, you owe $120.50: https://pay.example.com/q/demo/g-mei?amount=120.50"
        + FIRST_TEXT_OPT_OUT
    )
    assert composing.fields_in(result["body"]) == []
