"""Sending (step "submit"): what goes out and to whom (R5, R6, R8, R9), what never changes on the
host (R3), idempotency under retries and races, and the practice's sending hours."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, time
from pathlib import Path
from time import monotonic
from typing import Any
from zoneinfo import ZoneInfo

import pluggy
import pytest
from conftest import CONTEXT, assert_valid, enable_addon, host_on

from hookspecs import hookimpl, platform
from ondemand_plugin import MANAGE_ACTION_ID, SEND_ACTION_ID
from ondemand_plugin.boundary.config import SendWindow
from ondemand_plugin.boundary.model import Practice
from ondemand_plugin.channels.outbox import read_outbox
from ondemand_plugin.errors import OnDemandError
from ondemand_plugin.rules import composing
from ondemand_plugin.rules.criteria import send_window_refusal
from ondemand_plugin.testing import ReferenceHost, build_plugin_manager, config_of

LILY = {"type": "patient", "id": "p-lily"}
RUTH = {"type": "patient", "id": "p-ruth"}
MEI_LINK = "https://pay.example.com/q/demo/g-mei?amount=120.50"
READ_ONLY_HOST_HOOKS = {"pm_practice", "pm_patient", "pm_guarantor", "pm_quickpay_link"}


@pytest.fixture
def ondemand_host(database_url: str, tmp_path: Path) -> ReferenceHost:
    """The demo host, with the plugin on each backend in turn."""
    return host_on(database_url, tmp_path)


@pytest.fixture
def pm(ondemand_pm: pluggy.PluginManager) -> pluggy.PluginManager:
    enable_addon(ondemand_pm)
    return ondemand_pm


@pytest.fixture
def pm_with_config(
    ondemand_host: ReferenceHost,
) -> Iterator[Callable[..., pluggy.PluginManager]]:
    """A plugin manager for the demo host, built after changing its plugin configuration."""
    managers: list[pluggy.PluginManager] = []

    def build(**settings: Any) -> pluggy.PluginManager:
        assert ondemand_host.plugin_config is not None
        ondemand_host.plugin_config.update(settings)
        manager = build_plugin_manager(ondemand_host)
        managers.append(manager)
        enable_addon(manager)
        return manager

    yield build
    for manager in managers:
        manager.hook.pm_unconfigure(plugin_manager=manager)


def send_to(entity_id: str, mode: str, entity_type: str = "guarantor", **extra: Any) -> Any:
    return {"entity": {"type": entity_type, "id": entity_id}, "mode": mode, **extra}


def submit(
    pm: pluggy.PluginManager,
    guarantor_id: str = "g-mei",
    to: dict[str, Any] | None = None,
    *,
    on: dict[str, str] = LILY,
    **payload: Any,
) -> dict[str, Any]:
    result: dict[str, Any] = pm.hook.pm_dashboard_action(
        action_id=SEND_ACTION_ID,
        step="submit",
        subject=on,
        payload={
            "guarantor_id": guarantor_id,
            "send_to": to or send_to(guarantor_id, "text"),
            **payload,
        },
        context=CONTEXT,
    )
    assert_valid("send-result", result)
    return result


def refusal_code(pm: pluggy.PluginManager, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(OnDemandError) as refusal:
        submit(pm, *args, **kwargs)
    return refusal.value.code


def add_template(pm: pluggy.PluginManager, **template: Any) -> dict[str, Any]:
    answer = pm.hook.pm_dashboard_action(
        action_id=MANAGE_ACTION_ID,
        step="submit",
        subject={"type": "practice", "id": "demo"},
        payload={"op": "create", "template": template},
        context=CONTEXT,
    )
    return dict(answer["template"])


def outbox_dir(host: ReferenceHost) -> Path:
    assert host.plugin_config is not None
    return Path(host.plugin_config["outbox_dir"])


def outbox(host: ReferenceHost) -> list[dict[str, Any]]:
    return read_outbox(outbox_dir(host), "demo")


def history(pm: pluggy.PluginManager, guarantor_id: str = "g-mei") -> list[dict[str, Any]]:
    [entries] = pm.hook.pm_history_entries(
        guarantor_id=guarantor_id, context=CONTEXT, before=None, limit=100
    )
    return list(entries)


def assert_nothing_sent(pm: pluggy.PluginManager, host: ReferenceHost) -> None:
    assert outbox(host) == []
    for guarantor_id in host.guarantors["demo"]:
        assert history(pm, guarantor_id) == []


# The happy path


def test_a_text_from_a_template_is_sent_and_lands_in_the_outbox(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    template = add_template(
        pm,
        label="Pay now",
        mode="text",
        body="Hi {{GuarantorFirstName}}, {{PatientFirstName}}'s balance at {{PracticeName}} "
        "is {{BalanceDue}}. Pay: {{QuickPayLink}}",
    )
    result = submit(pm, template_id=template["id"])

    expected_body = f"Hi Mei, Lily's balance at Maple Street Pediatrics is $120.50. Pay: {MEI_LINK}"
    assert result["status"] == "sent"
    assert result["duplicate"] is False
    assert (result["mode"], result["to"]) == ("text", "+15035550123")
    assert result["body"] == expected_body
    assert result["subject"] is None
    assert (outbox_dir(ondemand_host) / "demo" / f"{result['notification_id']}.json").is_file()
    [message] = outbox(ondemand_host)
    assert message["notification_id"] == result["notification_id"]
    assert message["body"] == expected_body
    assert message["to"] == "+15035550123"
    assert message["sender"] == "+15035550101"  # the practice's text origination number
    assert message["html"] is None


def test_an_email_escapes_every_merged_value_in_its_html(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    ondemand_host.practices["demo"]["name"] = "Smith & Jones <Kids>"
    ondemand_host.guarantors["demo"]["g-mei"]["first_name"] = "<b>Mei</b>"
    template = add_template(
        pm,
        label="E-mail",
        mode="email",
        subject="{{PracticeName}}: your balance",
        body="Dear {{GuarantorFirstName}},\nyou owe {{PracticeName}} {{BalanceDue}}.\n"
        "{{QuickPayLink}}",
    )
    result = submit(pm, to=send_to("g-mei", "email"), template_id=template["id"])

    assert result["status"] == "sent"
    assert result["to"] == "mei.chen@example.com"
    assert result["subject"] == "Smith & Jones <Kids>: your balance"
    # The plain-text part carries the values as they are; only the HTML part escapes them.
    assert result["body"].startswith("Dear <b>Mei</b>,\nyou owe Smith & Jones <Kids> $120.50.")
    [message] = outbox(ondemand_host)
    html = message["html"]
    assert "Dear &lt;b&gt;Mei&lt;/b&gt;," in html
    assert "<b>Mei</b>" not in html
    assert "Smith &amp; Jones &lt;Kids&gt;" in html
    assert "Smith & Jones" not in html
    assert "<Kids>" not in html
    assert f'<a href="{MEI_LINK}">' in html
    assert message["subject"] == "Smith & Jones <Kids>: your balance"


def test_an_email_comes_from_the_practice_sender_unless_the_template_names_one(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    own_sender = add_template(
        pm,
        label="From the billing desk",
        mode="email",
        sender_email="desk@maplestreet.example.com",
        body="{{BalanceDue}}",
    )
    practice_sender = add_template(pm, label="Plain", mode="email", body="{{BalanceDue}}")
    submit(pm, to=send_to("g-mei", "email"), template_id=own_sender["id"])
    submit(pm, to=send_to("g-mei", "email"), template_id=practice_sender["id"])
    submit(pm, to=send_to("g-mei", "email"), body="Typed {{BalanceDue}}")

    senders = [message["sender"] for message in outbox(ondemand_host)]
    assert senders == [
        "desk@maplestreet.example.com",
        "billing@maplestreet.example.com",
        "billing@maplestreet.example.com",
    ]


def test_an_email_without_a_subject_gets_the_default_one(
    pm: pluggy.PluginManager,
) -> None:
    result = submit(pm, to=send_to("g-mei", "email"), body="{{BalanceDue}}")
    assert result["subject"] == "Your balance with Maple Street Pediatrics"


# R3: nothing on the host changes but a contact staff asked to save.


def test_sends_never_change_the_dunning_count_or_anything_but_a_saved_contact(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    platform_hooks = {name for name in dir(platform) if name.startswith("pm_")}
    called: list[str] = []
    undo = pm.add_hookcall_monitoring(
        lambda name, impls, kwargs: called.append(name), lambda *args: None
    )
    before = copy.deepcopy(ondemand_host.guarantors["demo"])

    submit(pm, body="{{BalanceDue}} {{QuickPayLink}}")
    submit(pm, "g-tom", send_to("g-tom", "email"), body="{{BalanceDue}} {{QuickPayLink}}")
    submit(pm, "g-ruth", send_to("g-ruth", "voice"), on=RUTH, body="{{BalanceDue}}")
    submit(
        pm,
        to=send_to("g-mei", "text", address="503-555-0199", save_contact=True),
        body="{{BalanceDue}}",
    )
    undo()

    after = ondemand_host.guarantors["demo"]
    assert {gid: g["dunning_count"] for gid, g in after.items()} == {
        gid: g["dunning_count"] for gid, g in before.items()
    }
    for guarantor_id, record in after.items():
        unchanged = {key: value for key, value in record.items() if key != "contacts"}
        assert unchanged == {k: v for k, v in before[guarantor_id].items() if k != "contacts"}
    assert {name for name, _ in ondemand_host.calls} <= READ_ONLY_HOST_HOOKS | {"pm_update_contact"}
    assert {name for name in called if name in platform_hooks} <= READ_ONLY_HOST_HOOKS | {
        "pm_update_contact"
    }
    assert len(ondemand_host.calls_to("pm_update_contact")) == 1


# R5: $0.00 or a credit can be sent, but nothing can be paid.


def test_zero_balance_can_be_sent_but_not_paid(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    result = submit(
        pm, "g-tom", send_to("g-tom", "email"), body="You owe {{BalanceDue}}. {{QuickPayLink}}"
    )
    assert result["status"] == "sent"
    assert result["balance"] == "0.00"
    assert result["payment_allowed"] is False
    assert result["body"] == f"You owe $0.00. {composing.NO_PAYMENT_SENTENCE}"
    assert ondemand_host.calls_to("pm_quickpay_link") == []
    [message] = outbox(ondemand_host)
    assert "<a href" not in message["html"]


def test_a_credit_can_be_called_in_but_not_paid(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    result = submit(
        pm,
        "g-ruth",
        send_to("g-ruth", "voice"),
        on=RUTH,
        body="Your account shows {{BalanceDue}}.",
    )
    assert result["status"] == "sent"
    assert (result["mode"], result["to"]) == ("voice", "+15035550188")
    assert result["balance"] == "-35.00"
    assert result["payment_allowed"] is False
    assert result["body"] == "Your account shows $35.00 credit."
    assert ondemand_host.calls_to("pm_quickpay_link") == []


def test_a_credit_quickpay_field_says_no_payment_is_due(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    ondemand_host.guarantors["demo"]["g-mei"]["pops_balance"] = "-5.00"
    result = submit(pm, body="{{BalanceDue}}. {{QuickPayLink}}")
    assert result["body"] == f"$5.00 credit. {composing.NO_PAYMENT_SENTENCE}"
    assert ondemand_host.calls_to("pm_quickpay_link") == []


def test_a_positive_balance_asks_the_host_for_a_quickpay_link_of_that_amount(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    result = submit(pm, body="{{QuickPayLink}}")
    assert result["payment_allowed"] is True
    assert result["body"] == MEI_LINK
    [call] = ondemand_host.calls_to("pm_quickpay_link")
    assert (call["guarantor_id"], str(call["amount"])) == ("g-mei", "120.50")


# R6 at submit


def test_no_batched_statement_for_anyone_refuses_the_send(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    code = refusal_code(
        pm, "g-grace", on={"type": "patient", "id": "p-noah"}, body="{{BalanceDue}}"
    )
    assert code == "no_batched_statement"
    assert_nothing_sent(pm, ondemand_host)


def test_a_linked_guarantor_without_a_batched_statement_cannot_determine_the_balance(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    ondemand_host.link("demo", "p-lily", "g-grace")
    code = refusal_code(pm, "g-grace", send_to("g-mei", "text"), body="{{BalanceDue}}")
    assert code == "guarantor_not_eligible"
    assert_nothing_sent(pm, ondemand_host)


def test_a_guarantor_not_linked_to_the_dashboard_cannot_determine_the_balance(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    code = refusal_code(pm, "g-ruth", send_to("g-mei", "text"), body="{{BalanceDue}}")
    assert code == "guarantor_not_eligible"
    assert_nothing_sent(pm, ondemand_host)


# R8: the guarantor determines the balance, the Send To contact how it is sent.


def test_the_selected_guarantor_determines_the_balance(pm: pluggy.PluginManager) -> None:
    from_mei = submit(pm, "g-mei", send_to("g-mei", "email"), body="{{BalanceDue}}")
    from_tom = submit(pm, "g-tom", send_to("g-tom", "email"), body="{{BalanceDue}}")
    assert (from_mei["balance"], from_mei["body"], from_mei["payment_allowed"]) == (
        "120.50",
        "$120.50",
        True,
    )
    assert (from_tom["balance"], from_tom["body"], from_tom["payment_allowed"]) == (
        "0.00",
        "$0.00",
        False,
    )
    assert from_tom["guarantor_id"] == "g-tom"
    assert from_tom["to"] == "tom.chen@example.com"


def test_the_send_to_entity_must_be_on_this_dashboard(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    assert refusal_code(pm, to=send_to("g-ruth", "voice"), body="{{BalanceDue}}") == "not_found"
    assert_nothing_sent(pm, ondemand_host)


@pytest.mark.parametrize(
    "to",
    [
        send_to("p-lily", "email", entity_type="patient"),  # Lily has no contacts at all
        send_to("g-tom", "text"),  # Tom has an e-mail address only
    ],
)
def test_no_contact_for_the_mode_is_refused(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost, to: dict[str, Any]
) -> None:
    guarantor_id = to["entity"]["id"] if to["entity"]["type"] == "guarantor" else "g-mei"
    assert refusal_code(pm, guarantor_id, to=to, body="{{BalanceDue}}") == "no_contact"
    assert_nothing_sent(pm, ondemand_host)


def test_an_opted_out_mode_is_refused(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    ondemand_host.guarantors["demo"]["g-mei"]["opt_out"]["email"] = True
    assert refusal_code(pm, to=send_to("g-mei", "email"), body="{{BalanceDue}}") == "opted_out"
    assert submit(pm, to=send_to("g-mei", "text"), body="{{BalanceDue}}")["status"] == "sent"


@pytest.mark.parametrize(
    ("mode", "address"),
    [
        ("email", "mei.chen@@example"),
        ("email", "not an address"),
        ("text", "+1 555"),
        ("text", "call me maybe"),
        ("voice", "12345"),
    ],
)
def test_a_bad_corrected_address_is_refused_and_nothing_is_written(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost, mode: str, address: str
) -> None:
    before = copy.deepcopy(ondemand_host.guarantors["demo"]["g-mei"])
    to = send_to("g-mei", mode, address=address, save_contact=True)
    assert refusal_code(pm, to=to, body="{{BalanceDue}}") == "invalid_address"
    assert_nothing_sent(pm, ondemand_host)
    assert ondemand_host.calls_to("pm_update_contact") == []
    assert ondemand_host.guarantors["demo"]["g-mei"] == before


def test_a_corrected_number_without_country_code_is_read_in_the_practice_country(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    result = submit(pm, to=send_to("g-mei", "text", address="(503) 555-0199"), body="Hi")
    assert result["to"] == "+15035550199"
    assert outbox(ondemand_host)[0]["to"] == "+15035550199"


def test_a_practice_abroad_reads_local_numbers_in_its_own_country(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    ondemand_host.practices["demo"]["phone"] = "+44 20 7946 0000"
    result = submit(pm, to=send_to("g-mei", "text", address="07400 123456"), body="Hi")
    assert result["to"] == "+447400123456"


def test_a_corrected_contact_is_saved_on_the_host_when_asked(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    to = send_to("g-mei", "text", address="503.555.0199", save_contact=True)
    assert submit(pm, to=to, body="Hi")["to"] == "+15035550199"
    to = send_to("g-mei", "email", address="Mei.Chen@Example.COM", save_contact=True)
    assert submit(pm, to=to, body="Hi")["to"] == "Mei.Chen@example.com"

    saved = ondemand_host.calls_to("pm_update_contact")
    assert [(call["entity"], call["contact"]) for call in saved] == [
        ({"type": "guarantor", "id": "g-mei"}, {"kind": "mobile", "value": "+15035550199"}),
        ({"type": "guarantor", "id": "g-mei"}, {"kind": "email", "value": "Mei.Chen@example.com"}),
    ]
    assert ondemand_host.guarantors["demo"]["g-mei"]["contacts"] == [
        {"kind": "mobile", "value": "+15035550199"},
        {"kind": "email", "value": "Mei.Chen@example.com"},
    ]


def test_a_corrected_number_for_a_call_keeps_the_kind_of_contact_it_replaces(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    to = send_to("g-mei", "voice", address="503-555-0198", save_contact=True)
    submit(pm, to=to, body="{{BalanceDue}}")
    to = send_to("g-ruth", "voice", address="503-555-0197", save_contact=True)
    submit(pm, "g-ruth", to, on=RUTH, body="{{BalanceDue}}")

    kinds = [call["contact"]["kind"] for call in ondemand_host.calls_to("pm_update_contact")]
    assert kinds == ["mobile", "home"]


class ContactsDown:
    """A host whose contact records cannot be written: its ``pm_update_contact`` raises."""

    @hookimpl(tryfirst=True)
    def pm_update_contact(self, **arguments: Any) -> bool:
        raise RuntimeError("the contacts service is down")


def test_a_contact_that_cannot_be_saved_sends_nothing_and_frees_the_key_at_once(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    to = send_to("g-mei", "text", address="503.555.0199", save_contact=True)
    broken = ContactsDown()
    pm.register(broken)
    with pytest.raises(OnDemandError) as refused:
        submit(pm, to=to, body="Hi", idempotency_key="modify-1")
    assert refused.value.code == "host_error"
    assert "pm_update_contact" in refused.value.message
    assert_nothing_sent(pm, ondemand_host)

    pm.unregister(broken)
    started = monotonic()
    result = submit(pm, to=to, body="Hi", idempotency_key="modify-1")
    assert monotonic() - started < 1.0  # no wait for a first request still "in progress"
    assert (result["status"], result["duplicate"]) == ("sent", False)
    assert len(outbox(ondemand_host)) == 1
    assert [entry["id"] for entry in history(pm)] == [result["notification_id"]]


def test_a_corrected_contact_is_not_saved_unless_asked(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    before = copy.deepcopy(ondemand_host.guarantors["demo"]["g-mei"]["contacts"])
    result = submit(pm, to=send_to("g-mei", "text", address="503-555-0199"), body="Hi")
    assert result["to"] == "+15035550199"
    assert ondemand_host.calls_to("pm_update_contact") == []
    assert ondemand_host.guarantors["demo"]["g-mei"]["contacts"] == before


# R9: the text editor


def test_free_text_without_a_template_is_sent_as_typed_with_fields_merged(
    pm: pluggy.PluginManager,
) -> None:
    result = submit(pm, body="Hello {{GuarantorFullName}}, please call {{PracticePhone}}.")
    assert result["body"] == "Hello Mei Chen, please call +15035550100."
    assert history(pm)[0]["template_label"] is None


def test_an_edited_template_body_is_sent_instead_of_the_templates(
    pm: pluggy.PluginManager,
) -> None:
    template = add_template(pm, label="Stock", mode="text", body="Stock text {{BalanceDue}}")
    result = submit(pm, template_id=template["id"], body="Edited: {{BalanceDue}} today")
    assert result["body"] == "Edited: $120.50 today"
    assert history(pm)[0]["template_label"] == "Stock"


def test_no_template_and_no_body_is_an_invalid_request(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    assert refusal_code(pm, body=None, template_id=None) == "invalid_request"
    assert_nothing_sent(pm, ondemand_host)


def test_an_unknown_field_typed_in_the_editor_is_refused(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    assert refusal_code(pm, body="You owe {{AmountOwed}}") == "unknown_field"
    email = send_to("g-mei", "email")
    assert refusal_code(pm, to=email, subject="{{Nope}}", body="Hi") == "unknown_field"
    assert_nothing_sent(pm, ondemand_host)


# Idempotency


def test_the_same_key_returns_the_first_result_without_sending_again(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    first = submit(pm, body="{{BalanceDue}}", idempotency_key="call-42")
    again = submit(pm, body="{{BalanceDue}}", idempotency_key="call-42")
    assert first["duplicate"] is False
    assert again == {**first, "duplicate": True}
    assert len(outbox(ondemand_host)) == 1
    assert [entry["id"] for entry in history(pm)] == [first["notification_id"]]


def test_the_same_key_for_a_different_request_is_a_conflict(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    submit(pm, body="{{BalanceDue}}", idempotency_key="call-42")
    code = refusal_code(pm, body="Another message", idempotency_key="call-42")
    assert code == "idempotency_conflict"
    assert len(outbox(ondemand_host)) == 1
    assert len(history(pm)) == 1


def test_concurrent_submits_with_one_key_deliver_once(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    start = threading.Barrier(8)
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def click_send() -> None:
        start.wait()
        try:
            results.append(submit(pm, body="{{BalanceDue}}", idempotency_key="double-click"))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=click_send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert len(results) == 8
    assert len({result["notification_id"] for result in results}) == 1
    assert sorted(result["duplicate"] for result in results) == [False] + [True] * 7
    assert len(outbox(ondemand_host)) == 1
    assert len(history(pm)) == 1


# The practice's sending hours


def practice_clock() -> datetime:
    return datetime.now(ZoneInfo("America/Los_Angeles"))


def window_excluding_now() -> dict[str, str]:
    # Two hours or more away from now, so the clock cannot move into it during the test.
    if practice_clock().hour < 12:
        return {"start": "14:00", "end": "15:00"}
    return {"start": "02:00", "end": "03:00"}


def window_including_now() -> dict[str, str]:
    hour = practice_clock().hour
    return {"start": f"{max(hour - 1, 0):02d}:00", "end": f"{min(hour + 2, 24):02d}:00"}


def test_outside_the_send_window_nothing_is_sent(
    pm_with_config: Callable[..., pluggy.PluginManager], ondemand_host: ReferenceHost
) -> None:
    pm = pm_with_config(send_window=window_excluding_now())
    assert refusal_code(pm, body="{{BalanceDue}}") == "outside_send_window"
    assert_nothing_sent(pm, ondemand_host)


def test_inside_the_send_window_it_is_sent(
    pm_with_config: Callable[..., pluggy.PluginManager],
) -> None:
    pm = pm_with_config(send_window=window_including_now())
    assert submit(pm, body="{{BalanceDue}}")["status"] == "sent"


def test_the_send_window_is_read_in_the_practice_time_zone(
    pm_with_config: Callable[..., pluggy.PluginManager],
) -> None:
    # Hours around now in UTC are seven or eight hours away from now in Los Angeles.
    hour = datetime.now(UTC).hour
    around_now_in_utc = {
        "start": f"{max(hour - 1, 0):02d}:00",
        "end": f"{min(hour + 2, 24):02d}:00",
    }
    pm = pm_with_config(send_window=around_now_in_utc)
    assert refusal_code(pm, body="{{BalanceDue}}") == "outside_send_window"


def test_a_send_window_of_the_whole_day_sends_at_any_hour(
    pm_with_config: Callable[..., pluggy.PluginManager],
) -> None:
    pm = pm_with_config(send_window={"start": "00:00", "end": "24:00"})
    assert config_of(pm).send_window is None
    assert submit(pm, body="{{BalanceDue}}")["status"] == "sent"
    practice = Practice(
        id="demo",
        name="Maple Street Pediatrics",
        phone="+15035550100",
        timezone=ZoneInfo("America/Los_Angeles"),
        sender_email=None,
        text_from=None,
    )
    three_am = datetime(2024, 5, 1, 3, 0, tzinfo=ZoneInfo("America/Los_Angeles"))
    assert send_window_refusal(None, practice, three_am) is None
    daytime = SendWindow(start=time(8), end=time(21))
    assert send_window_refusal(daytime, practice, three_am) is not None


# What the host and the practice must provide


class BrokenQuickPay:
    @hookimpl(tryfirst=True)
    def pm_quickpay_link(self, practice_id: str, guarantor_id: str, amount: Any) -> str:
        return "javascript:alert(1)"


def test_a_quickpay_link_that_is_not_a_web_address_is_refused(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    pm.register(BrokenQuickPay(), name="broken-quickpay")
    with pytest.raises(OnDemandError) as refused:
        submit(pm, body="Pay here: {{QuickPayLink}}")
    assert refused.value.code == "quickpay_unavailable"
    assert "broken-quickpay" in refused.value.message
    assert_nothing_sent(pm, ondemand_host)


def test_a_practice_without_a_text_number_cannot_send_a_text(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    ondemand_host.practices["demo"]["text_from"] = None
    assert refusal_code(pm, body="{{BalanceDue}}") == "sender_not_configured"
    assert_nothing_sent(pm, ondemand_host)
