"""Tenant isolation: every hook and every command, called for one practice with another practice's
ids (patients, guarantors, templates, history cursors, idempotency keys), finds nothing of it, asks
the host nothing about it, and writes nothing."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pluggy
import pytest
from conftest import CONTEXT, Build, enable_addon, send_to_mei
from peers.twilio import TwilioPeer
from test_cli import refused, run_ondemand
from test_inbound import MEI, SMS_TOKEN, add_north, reply, sms_status, twilio_settings

from ondemand_plugin import MANAGE_ACTION_ID, SEND_ACTION_ID
from ondemand_plugin.admin import switch_addon
from ondemand_plugin.errors import OnDemandError
from ondemand_plugin.testing import ReferenceHost, guarantor, store_of

NORTH = {"practice_id": "north", "user": {"id": "u9", "name": "Nils North"}}
PRACTICES = ("demo", "north")
LILY = {"type": "patient", "id": "p-lily"}
# Words only the other practice's records hold: no answer to the demo practice may carry them.
NORTH_WORDS = ("Olga", "Berg", "North Clinic", "+15035550111", "Northern")


@pytest.fixture
def pm(ondemand_pm: pluggy.PluginManager, ondemand_host: ReferenceHost) -> pluggy.PluginManager:
    """The demo practice and a second practice, north, each with the add-on, a template and a
    send in its history."""
    host = ondemand_host
    host.add_practice({**host.practices["demo"], "id": "north", "name": "North Clinic"})
    host.add_patient(
        "north",
        {
            "id": "p-olga",
            "first_name": "Olga",
            "last_name": "Berg",
            "guarantor_ids": [],
            "contacts": [],
        },
    )
    host.add_guarantor(
        "north",
        guarantor(
            "g-olga", "Olga", "Berg", "50.00", statements=1, contacts=[("mobile", "+15035550111")]
        ),
    )
    host.link("north", "p-olga", "g-olga")
    enable_addon(ondemand_pm)
    enable_addon(ondemand_pm, "north")
    for context, label in ((CONTEXT, "Plain"), (NORTH, "Northern reminder")):
        template = {"label": label, "mode": "text", "body": "{{BalanceDue}}"}
        manage(ondemand_pm, context, "create", template=template)
    send_to_mei(ondemand_pm)
    ondemand_pm.hook.pm_dashboard_action(
        action_id=SEND_ACTION_ID,
        step="submit",
        subject={"type": "patient", "id": "p-olga"},
        payload={
            "guarantor_id": "g-olga",
            "send_to": {"entity": {"type": "guarantor", "id": "g-olga"}, "mode": "text"},
            "body": "Northern balance {{BalanceDue}}",
            "idempotency_key": "north-key",
        },
        context=NORTH,
    )
    host.calls.clear()
    return ondemand_pm


def manage(
    pm: pluggy.PluginManager,
    context: dict[str, Any],
    op: str,
    subject: dict[str, Any] | None = None,
    **payload: Any,
) -> Any:
    return pm.hook.pm_dashboard_action(
        action_id=MANAGE_ACTION_ID,
        step="submit",
        subject=subject or {"type": "practice", "id": context["practice_id"]},
        payload={"op": op, **payload},
        context=context,
    )


def north_template_id(pm: pluggy.PluginManager) -> str:
    [template] = manage(pm, NORTH, "list")["templates"]
    return str(template["id"])


def north_cursor(pm: pluggy.PluginManager) -> str:
    [[entry]] = pm.hook.pm_history_entries(
        guarantor_id="g-olga", context=NORTH, before=None, limit=10
    )
    return str(entry["cursor"])


def snapshot(pm: pluggy.PluginManager, host: ReferenceHost) -> dict[str, Any]:
    """Everything either practice has, in the store, the outbox and the host."""
    store = store_of(pm)
    outbox = Path(host.plugin_config["outbox_dir"])  # type: ignore[index]
    return {
        "templates": {p: store.list_templates(p) for p in PRACTICES},
        "addon": {p: store.addon_log(p) for p in PRACTICES},
        "history": {
            (p, g): store.history(p, g, None, 100) for p in PRACTICES for g in host.guarantors[p]
        },
        "outbox": sorted(str(path) for path in outbox.rglob("*")),
        "host": copy.deepcopy((host.practices, host.patients, host.guarantors)),
    }


def send(subject: dict[str, Any], guarantor_id: str, to: str, **extra: Any) -> Callable[..., Any]:
    payload = {
        "guarantor_id": guarantor_id,
        "send_to": {"entity": {"type": "guarantor", "id": to}, "mode": "text"},
        "body": "{{BalanceDue}}",
        **extra,
    }
    return lambda pm: pm.hook.pm_dashboard_action(
        action_id=SEND_ACTION_ID, step="submit", subject=subject, payload=payload, context=CONTEXT
    )


def open_send(subject: dict[str, Any]) -> Callable[..., Any]:
    return lambda pm: pm.hook.pm_dashboard_action(
        action_id=SEND_ACTION_ID, step="open", subject=subject, payload={}, context=CONTEXT
    )


def actions(dashboard: str, subject_id: str) -> Callable[..., Any]:
    return lambda pm: pm.hook.pm_dashboard_actions(
        dashboard=dashboard, subject={"type": dashboard, "id": subject_id}, context=CONTEXT
    )


def on_north_template(op: str, **payload: Any) -> Callable[..., Any]:
    return lambda pm: manage(pm, CONTEXT, op, template_id=north_template_id(pm), **payload)


REFUSED = {
    "actions on the other's patient": (actions("patient", "p-olga"), "not_found"),
    "actions on the other's guarantor": (actions("guarantor", "g-olga"), "not_found"),
    "open on the other's patient": (open_send({"type": "patient", "id": "p-olga"}), "not_found"),
    "open on the other's guarantor": (
        open_send({"type": "guarantor", "id": "g-olga"}),
        "not_found",
    ),
    "submit on the other's patient": (
        send({"type": "patient", "id": "p-olga"}, "g-olga", "g-olga"),
        "not_found",
    ),
    "submit for the other's guarantor": (send(LILY, "g-olga", "g-mei"), "guarantor_not_eligible"),
    "submit to the other's guarantor": (send(LILY, "g-mei", "g-olga"), "not_found"),
    "submit with the other's template": (
        lambda pm: send(LILY, "g-mei", "g-mei", template_id=north_template_id(pm), body=None)(pm),
        "template_not_found",
    ),
    "manage opened on the other practice": (
        lambda pm: pm.hook.pm_dashboard_action(
            action_id=MANAGE_ACTION_ID,
            step="open",
            subject={"type": "practice", "id": "north"},
            payload={},
            context=CONTEXT,
        ),
        "not_found",
    ),
    "manage list of the other practice": (
        lambda pm: manage(pm, CONTEXT, "list", subject={"type": "practice", "id": "north"}),
        "not_found",
    ),
    "get the other's template": (on_north_template("get"), "template_not_found"),
    "update the other's template": (
        on_north_template("update", template={"label": "Mine now"}),
        "template_not_found",
    ),
    "copy the other's template": (on_north_template("copy", template={}), "template_not_found"),
    "delete the other's template": (on_north_template("delete"), "template_not_found"),
}

EMPTY = {
    "history of the other's guarantor": lambda pm: pm.hook.pm_history_entries(
        guarantor_id="g-olga", context=CONTEXT, before=None, limit=100
    ),
    "history of the other's guarantor from its cursor": lambda pm: pm.hook.pm_history_entries(
        guarantor_id="g-olga", context=CONTEXT, before=north_cursor(pm), limit=100
    ),
    "own history from the other's cursor": lambda pm: pm.hook.pm_history_entries(
        guarantor_id="g-mei", context=CONTEXT, before=north_cursor(pm), limit=100
    ),
    "own templates": lambda pm: manage(pm, CONTEXT, "list"),
    "own manage form": lambda pm: pm.hook.pm_dashboard_action(
        action_id=MANAGE_ACTION_ID, step="open", subject=LILY, payload={}, context=CONTEXT
    ),
    "own send form": open_send(LILY),
}


def assert_north_untouched(
    pm: pluggy.PluginManager, host: ReferenceHost, before: dict[str, Any]
) -> None:
    assert snapshot(pm, host) == before
    assert {call.get("practice_id") for _, call in host.calls} <= {"demo"}


@pytest.mark.parametrize("attempt", list(REFUSED), ids=list(REFUSED))
def test_a_hook_given_another_practices_ids_refuses_and_writes_nothing(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost, attempt: str
) -> None:
    call, code = REFUSED[attempt]
    before = snapshot(pm, ondemand_host)
    with pytest.raises(OnDemandError) as refusal:
        call(pm)
    assert refusal.value.code == code
    assert not any(word in refusal.value.message for word in NORTH_WORDS)
    assert_north_untouched(pm, ondemand_host, before)


@pytest.mark.parametrize("attempt", list(EMPTY), ids=list(EMPTY))
def test_a_hook_reading_with_another_practices_ids_finds_nothing_of_it(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost, attempt: str
) -> None:
    before = snapshot(pm, ondemand_host)
    answer = json.dumps(EMPTY[attempt](pm))
    assert not any(word in answer for word in NORTH_WORDS), answer
    assert "g-olga" not in answer and north_template_id(pm) not in answer
    assert_north_untouched(pm, ondemand_host, before)


def test_another_practices_idempotency_key_is_a_new_send_not_its_result(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    [[north_entry]] = pm.hook.pm_history_entries(
        guarantor_id="g-olga", context=NORTH, before=None, limit=10
    )
    result = send(LILY, "g-mei", "g-mei", idempotency_key="north-key")(pm)
    assert (result["duplicate"], result["to"]) == (False, "+15035550123")
    assert result["notification_id"] != north_entry["id"]
    [[still]] = pm.hook.pm_history_entries(
        guarantor_id="g-olga", context=NORTH, before=None, limit=10
    )
    assert still == north_entry


def test_one_practices_addon_switch_does_not_open_another(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    switch_addon(pm, "demo", enabled=False, by="Account Manager")
    assert pm.hook.pm_dashboard_actions(dashboard="patient", subject=LILY, context=CONTEXT) == [[]]
    with pytest.raises(OnDemandError) as refusal:
        open_send(LILY)(pm)
    assert refusal.value.code == "not_entitled"
    north_actions = pm.hook.pm_dashboard_actions(
        dashboard="patient", subject={"type": "patient", "id": "p-olga"}, context=NORTH
    )
    assert [action["enabled"] for [action] in north_actions] == [True]


# The command line


def test_every_command_given_another_practices_ids_finds_nothing_and_writes_nothing(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost, tmp_path: Path
) -> None:
    database = ["--database-url", ondemand_host.plugin_config["database_url"]]  # type: ignore[index]
    template_id = north_template_id(pm)
    before = snapshot(pm, ondemand_host)

    def ondemand(*args: str) -> Any:
        return run_ondemand(*database, *args, home=tmp_path / "home")

    for command in (
        ("templates", "show", "--practice", "demo", template_id),
        ("templates", "edit", "--practice", "demo", template_id, "--label", "Mine now"),
        ("templates", "copy", "--practice", "demo", template_id),
        ("templates", "delete", "--practice", "demo", template_id),
    ):
        refusal = refused(ondemand(*command), "template_not_found")
        assert not any(word in refusal for word in NORTH_WORDS)
    for command in (
        ("templates", "list", "--practice", "demo", "--json"),
        ("history", "--practice", "demo", "--guarantor", "g-olga", "--json"),
        ("history", "--practice", "north", "--guarantor", "g-mei", "--json"),
        ("addon", "status", "--practice", "demo", "--json"),
        ("addon", "log", "--practice", "demo", "--json"),
    ):
        shown = ondemand(*command)
        assert shown.returncode == 0, shown.stderr
        assert template_id not in shown.stdout
        assert not any(word in shown.stdout for word in NORTH_WORDS), shown.stdout
        assert "north" not in shown.stdout
    assert json.loads(ondemand("history", "--practice", "demo", "--guarantor", "g-olga",
                               "--json").stdout) == []  # fmt: skip
    assert snapshot(pm, ondemand_host) == before


# Provider requests (pm_inbound_request). Twilio signs with the auth token of the plugin's
# configuration, which every practice shares: a signature cannot tell practices apart. What ties a
# request to one practice is the message id it names, or the practice's number a reply went to.

DEMO_NUMBER = "+15035550101"
NORTH_NUMBER = "+15035550102"


@pytest.fixture
def texting(build: Build) -> Iterator[tuple[pluggy.PluginManager, ReferenceHost]]:
    """Demo and north texting Mei through Twilio, each from its own number."""
    with TwilioPeer(auth_token=SMS_TOKEN) as gateway:
        pm, host = build(channels={"text": "twilio_sms"}, twilio_sms=twilio_settings(gateway))
        yield pm, host


def notification(pm: pluggy.PluginManager, practice_id: str, notification_id: str) -> Any:
    store = store_of(pm)
    [found] = [r for r in store.history(practice_id, "g-mei", None, 10) if r.id == notification_id]
    return found


def test_a_stop_to_one_practices_number_counts_for_that_practice_only(
    texting: tuple[pluggy.PluginManager, ReferenceHost],
) -> None:
    pm, host = texting
    north = add_north(pm, host, NORTH_NUMBER)
    send_to_mei(pm, context=north)  # demo never texted Mei, but she wrote to its number

    reply(pm, "STOP", To=DEMO_NUMBER)
    store = store_of(pm)
    assert store.is_opted_out("demo", "text", MEI)
    assert not store.is_opted_out("north", "text", MEI)
    assert [call["practice_id"] for call in host.calls_to("pm_set_opt_out")] == ["demo"]
    host.calls.clear()
    reply(pm, "STOP", To=NORTH_NUMBER)
    assert [call["practice_id"] for call in host.calls_to("pm_set_opt_out")] == ["north"]


def test_a_status_callback_changes_only_the_practice_whose_message_it_names(
    texting: tuple[pluggy.PluginManager, ReferenceHost],
) -> None:
    pm, host = texting
    north = add_north(pm, host, NORTH_NUMBER)
    ours = notification(pm, "demo", send_to_mei(pm)["notification_id"])
    theirs = notification(pm, "north", send_to_mei(pm, context=north)["notification_id"])

    sms_status(pm, theirs.provider_message_id, "undelivered", ErrorCode="21610")
    assert notification(pm, "north", theirs.id).status == "undelivered"
    assert notification(pm, "demo", ours.id) == ours
    store = store_of(pm)
    assert store.is_opted_out("north", "text", MEI)
    assert not store.is_opted_out("demo", "text", MEI)
    assert [call["practice_id"] for call in host.calls_to("pm_set_opt_out")] == ["north"]
