"""The send's preview (step "preview"): the payload of submit, composed as submit composes it,
answered with its length, SMS segments and warnings; nothing sent, recorded or saved."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pluggy
import pytest
from conftest import CONTEXT, assert_valid, enable_addon

from ondemand_plugin import SEND_ACTION_ID
from ondemand_plugin.channels.outbox import read_outbox
from ondemand_plugin.errors import OnDemandError
from ondemand_plugin.sending import service
from ondemand_plugin.sending.service import PREVIEW_PAY_LINK
from ondemand_plugin.testing import ReferenceHost

LILY = {"type": "patient", "id": "p-lily"}
NO_LINK = "There is no pay link in the message: insert {{QuickPayLink}} so they can pay online."
NO_STOP = "Texts should say how to stop them: end with “Reply STOP to opt out.”"
STOP = " Reply STOP to opt out."


@pytest.fixture
def pm(ondemand_pm: pluggy.PluginManager) -> pluggy.PluginManager:
    enable_addon(ondemand_pm)
    return ondemand_pm


def payload(guarantor_id: str = "g-mei", mode: str = "text", **extra: Any) -> dict[str, Any]:
    send_to = {"entity": {"type": "guarantor", "id": guarantor_id}, "mode": mode}
    send_to.update(extra.pop("send_to", {}))
    return {"guarantor_id": guarantor_id, "send_to": send_to, **extra}


def call(
    pm: pluggy.PluginManager, step: str, values: dict[str, Any], on: dict[str, str] = LILY
) -> dict[str, Any]:
    answer: dict[str, Any] = pm.hook.pm_dashboard_action(
        action_id=SEND_ACTION_ID, step=step, subject=on, payload=values, context=CONTEXT
    )
    assert_valid("send-preview" if step == "preview" else "send-result", answer)
    return answer


def preview(pm: pluggy.PluginManager, **values: Any) -> dict[str, Any]:
    return call(pm, "preview", payload(**values))


def refusal(pm: pluggy.PluginManager, step: str, values: dict[str, Any]) -> tuple[str, str | None]:
    with pytest.raises(OnDemandError) as refused:
        pm.hook.pm_dashboard_action(
            action_id=SEND_ACTION_ID, step=step, subject=LILY, payload=values, context=CONTEXT
        )
    return refused.value.code, refused.value.field


def outbox(host: ReferenceHost) -> list[dict[str, Any]]:
    assert host.plugin_config is not None
    return read_outbox(Path(host.plugin_config["outbox_dir"]), "demo")


def history(pm: pluggy.PluginManager) -> list[Any]:
    [entries] = pm.hook.pm_history_entries(
        guarantor_id="g-mei", context=CONTEXT, before=None, limit=100
    )
    return list(entries)


def test_a_preview_is_what_submit_sends_and_nothing_is_sent_recorded_or_saved(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    values = payload(
        body="Hi {{GuarantorFirstName}}, your balance is {{BalanceDue}}." + STOP,
        send_to={"address": "(503) 555-0199", "save_contact": True},
        idempotency_key="the-dialogs-key",
    )
    shown = call(pm, "preview", values)
    assert shown == {
        "subject": None,
        "body": "Hi Mei, your balance is $120.50. Reply STOP to opt out.",
        "html": None,
        "mode": "text",
        "to": "+15035550199",
        "segments": 1,
        "encoding": "GSM-7",
        "characters": 55,
        "warnings": [NO_LINK],
    }
    assert outbox(ondemand_host) == []
    assert history(pm) == []
    assert ondemand_host.calls_to("pm_update_contact") == []
    # The same key still sends: the preview took nothing of it.
    sent = call(pm, "submit", values)
    assert (sent["status"], sent["duplicate"]) == ("sent", False)
    assert (sent["body"], sent["to"]) == (shown["body"], shown["to"])


def test_a_preview_does_not_ask_the_host_for_a_pay_link(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    shown = preview(pm, body="Pay here: {{QuickPayLink}}" + STOP)
    assert shown["body"] == f"Pay here: {PREVIEW_PAY_LINK}{STOP}"
    assert shown["warnings"] == []
    assert ondemand_host.calls_to("pm_quickpay_link") == []


def test_an_email_preview_has_its_subject_and_html_and_no_segments(
    pm: pluggy.PluginManager,
) -> None:
    shown = preview(pm, mode="email", body="Dear {{GuarantorFullName}}: {{QuickPayLink}}")
    assert shown["subject"] == "Your balance with Maple Street Pediatrics"
    assert shown["html"] is not None and f'<a href="{PREVIEW_PAY_LINK}">' in shown["html"]
    assert (shown["segments"], shown["encoding"]) == (None, None)
    assert shown["characters"] == len(shown["body"])
    assert shown["warnings"] == []


def test_a_call_is_not_asked_for_a_pay_link_nor_an_opt_out_line(
    pm: pluggy.PluginManager,
) -> None:
    shown = call(
        pm,
        "preview",
        {
            **payload("g-ruth", "voice"),
            "body": "Your account shows {{BalanceDue}}.",
        },
        on={"type": "patient", "id": "p-ruth"},
    )
    assert shown["body"] == "Your account shows $35.00 credit."
    assert (shown["segments"], shown["warnings"]) == (None, [])


@pytest.mark.parametrize(
    ("body", "segments", "encoding"),
    [
        ("a" * (160 - len(STOP)), 1, "GSM-7"),
        ("a" * (161 - len(STOP)), 2, "GSM-7"),
        ("€" * 68 + "a" * (160 - 136 - len(STOP)), 1, "GSM-7"),
        ("€" + "a" * (160 - len(STOP)), 2, "GSM-7"),
        ("😊" + "a" * (68 - len(STOP)), 1, "UCS-2"),
        ("“" + "a" * (70 - len(STOP)), 2, "UCS-2"),
        ("“" + "a" * (134 - 1 - len(STOP)), 2, "UCS-2"),
        ("“" + "a" * (135 - 1 - len(STOP)), 3, "UCS-2"),
    ],
)
def test_segments_follow_gsm7_and_ucs2(
    pm: pluggy.PluginManager, body: str, segments: int, encoding: str
) -> None:
    shown = preview(pm, body=body + STOP)
    assert (shown["segments"], shown["encoding"]) == (segments, encoding)
    assert shown["characters"] == len(body + STOP)
    several = f"This text goes out as {segments} text messages. A shorter one arrives as one."
    assert (several in shown["warnings"]) == (segments > 1)


def test_the_warnings_name_a_missing_link_a_missing_opt_out_line_and_an_empty_field(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    # A second patient for Mei: on her own dashboard, no one patient's name is known.
    ondemand_host.add_patient(
        "demo",
        {
            "id": "p-max",
            "first_name": "Max",
            "last_name": "Chen",
            "guarantor_ids": [],
            "contacts": [],
        },
    )
    ondemand_host.link("demo", "p-max", "g-mei")
    shown = call(
        pm,
        "preview",
        payload(body="About {{PatientFirstName}}: {{BalanceDue}}"),
        on={"type": "guarantor", "id": "g-mei"},
    )
    assert shown["body"] == "About : $120.50"
    assert shown["warnings"] == [
        NO_LINK,
        NO_STOP,
        "{{PatientFirstName}} has nothing to show for this recipient: it will be left blank.",
    ]


def test_at_zero_no_pay_link_is_asked_for(pm: pluggy.PluginManager) -> None:
    shown = preview(pm, guarantor_id="g-tom", mode="email", body="Your balance is {{BalanceDue}}.")
    assert NO_LINK not in shown["warnings"]


@pytest.mark.parametrize(
    ("values", "refused"),
    [
        (payload(body="{{Diagnosis}}"), ("unknown_field", "body")),
        (payload(body="Hi", send_to={"address": "555"}), ("invalid_address", "address")),
        (payload(body=None), ("invalid_request", "body")),
        (payload("g-tom", "text", body="Hi"), ("no_contact", "send_to.address")),
    ],
)
def test_a_preview_is_refused_as_submit_would_be(
    pm: pluggy.PluginManager,
    ondemand_host: ReferenceHost,
    values: dict[str, Any],
    refused: tuple[str, str],
) -> None:
    assert refusal(pm, "preview", values) == refused
    assert refusal(pm, "submit", values) == refused
    assert outbox(ondemand_host) == []


def test_the_templates_step_has_no_preview(pm: pluggy.PluginManager) -> None:
    with pytest.raises(OnDemandError) as refused:
        pm.hook.pm_dashboard_action(
            action_id="ondemand.manage_templates",
            step="preview",
            subject={"type": "practice", "id": "demo"},
            payload={},
            context=CONTEXT,
        )
    assert refused.value.field == "step"


def test_preview_and_submit_compose_through_one_function() -> None:
    # The send flow composes in one place, for both steps: no second copy of the composing.
    source = inspect.getsource(service)
    assert source.count("composing.compose(") == 1
    assert "render_text" not in source and "Composed(" not in source
