"""The dashboard action (R1 premium add-on, R2 where it appears, R6 when it is disabled) and the
cost of the actions hook, which the host calls on every dashboard render."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pluggy
import pytest
from conftest import CONTEXT, assert_valid, enable_addon, host_on, on_each_backend, trace_sql

from hookspecs import hookimpl
from ondemand_plugin import MANAGE_ACTION_ID, SEND_ACTION_ID
from ondemand_plugin.admin import switch_addon
from ondemand_plugin.errors import OnDemandError
from ondemand_plugin.rules import entitlement
from ondemand_plugin.testing import ReferenceHost, build_plugin_manager, demo_host, guarantor

DASHBOARDS = [("patient", "p-lily"), ("guarantor", "g-mei")]
SWITCH_SECONDS = 5  # the promise: a switch made anywhere takes effect within 5 seconds


@pytest.fixture
def backend() -> str:
    """SQLite (the tests trace its SQL); tests of sharing with other processes run on each."""
    return "sqlite"


@pytest.fixture
def ondemand_host(database_url: str, tmp_path: Path) -> ReferenceHost:
    return host_on(database_url, tmp_path)


def actions(
    pm: pluggy.PluginManager, dashboard: str, subject_id: str, subject_type: str | None = None
) -> list[dict[str, Any]]:
    answers = pm.hook.pm_dashboard_actions(
        dashboard=dashboard,
        subject={"type": subject_type or dashboard, "id": subject_id},
        context=CONTEXT,
    )
    return [action for answer in answers for action in answer]


def switch(pm: pluggy.PluginManager, enabled: bool) -> None:
    switch_addon(pm, "demo", enabled=enabled, by="Ann Manager", reason="test")


def wait_for(condition: Any, seconds: float) -> bool:
    give_up_at = time.monotonic() + seconds
    while time.monotonic() < give_up_at:
        if condition():
            return True
        time.sleep(0.1)
    return bool(condition())


# R1: the premium add-on


@pytest.mark.parametrize(("dashboard", "subject_id"), DASHBOARDS)
def test_without_the_addon_no_action_is_shown(
    ondemand_pm: pluggy.PluginManager, dashboard: str, subject_id: str
) -> None:
    assert actions(ondemand_pm, dashboard, subject_id) == []


@pytest.mark.parametrize("action_id", [SEND_ACTION_ID, MANAGE_ACTION_ID])
@pytest.mark.parametrize("step", ["open", "submit"])
def test_without_the_addon_every_action_is_refused_as_not_entitled(
    ondemand_pm: pluggy.PluginManager, action_id: str, step: str
) -> None:
    with pytest.raises(OnDemandError) as refusal:
        ondemand_pm.hook.pm_dashboard_action(
            action_id=action_id,
            step=step,
            subject={"type": "patient", "id": "p-lily"},
            payload={"op": "list"} if action_id == MANAGE_ACTION_ID else {},
            context=CONTEXT,
        )
    assert refusal.value.code == "not_entitled"


@pytest.mark.parametrize(("dashboard", "subject_id"), DASHBOARDS)
def test_with_the_addon_one_action_is_shown(
    ondemand_pm: pluggy.PluginManager, dashboard: str, subject_id: str
) -> None:
    enable_addon(ondemand_pm)
    shown = actions(ondemand_pm, dashboard, subject_id)
    assert [action["id"] for action in shown] == [SEND_ACTION_ID]
    assert_valid("dashboard-action", shown[0])


def test_switching_the_addon_off_and_on_is_reflected_at_once(
    ondemand_pm: pluggy.PluginManager,
) -> None:
    switch(ondemand_pm, True)
    assert len(actions(ondemand_pm, "patient", "p-lily")) == 1
    switch(ondemand_pm, False)
    assert actions(ondemand_pm, "patient", "p-lily") == []
    switch(ondemand_pm, True)
    assert len(actions(ondemand_pm, "patient", "p-lily")) == 1


@on_each_backend
def test_a_switch_made_by_another_process_is_seen_within_five_seconds(
    ondemand_pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    # A second manager on the same database stands for another host process, or the CLI.
    other = build_plugin_manager(demo_host(ondemand_host.plugin_config))
    try:
        assert actions(ondemand_pm, "patient", "p-lily") == []  # the add-on state is now cached
        switch(other, True)
        assert wait_for(lambda: len(actions(ondemand_pm, "patient", "p-lily")) == 1, SWITCH_SECONDS)
        switch(other, False)
        assert wait_for(lambda: actions(ondemand_pm, "patient", "p-lily") == [], SWITCH_SECONDS)
    finally:
        other.hook.pm_unconfigure(plugin_manager=other)


# R2: where the action appears


def test_the_action_sits_in_the_balance_panel_of_the_patient_dashboard(
    ondemand_pm: pluggy.PluginManager,
) -> None:
    enable_addon(ondemand_pm)
    assert actions(ondemand_pm, "patient", "p-lily") == [
        {
            "id": SEND_ACTION_ID,
            "label": "Send Balance Notification",
            "dashboard": "patient",
            "panel": "balance",
            "enabled": True,
            "disabled_reason": None,
        }
    ]


def test_the_action_sits_in_the_history_panel_of_the_guarantor_dashboard(
    ondemand_pm: pluggy.PluginManager,
) -> None:
    enable_addon(ondemand_pm)
    assert actions(ondemand_pm, "guarantor", "g-mei") == [
        {
            "id": SEND_ACTION_ID,
            "label": "Send Balance Notification",
            "dashboard": "guarantor",
            "panel": "statement_notification_history",
            "enabled": True,
            "disabled_reason": None,
        }
    ]


@pytest.mark.parametrize(
    ("dashboard", "subject_type", "subject_id"),
    [
        ("patient", "guarantor", "g-mei"),
        ("guarantor", "patient", "p-lily"),
    ],
)
def test_a_subject_that_does_not_match_its_dashboard_is_an_invalid_request(
    ondemand_pm: pluggy.PluginManager, dashboard: str, subject_type: str, subject_id: str
) -> None:
    enable_addon(ondemand_pm)
    with pytest.raises(OnDemandError) as refusal:
        actions(ondemand_pm, dashboard, subject_id, subject_type=subject_type)
    assert refusal.value.code == "invalid_request"


class AppointmentsPlugin:
    """Another feature plugin, with an action on a dashboard the On-Demand plugin has none on."""

    @hookimpl
    def pm_dashboard_actions(
        self, dashboard: str, subject: dict[str, Any], context: dict[str, Any]
    ) -> list[dict[str, Any]]:
        if dashboard != "appointment":
            return []
        return [{"id": "appointments.reschedule", "label": "Reschedule"}]


@pytest.mark.parametrize(
    "subject",
    [{"type": "appointment", "id": "a-17"}, {"appointment": 17}, None],
    ids=["its own subject", "any subject", "no subject"],
)
def test_a_dashboard_the_plugin_does_not_know_gets_no_action_and_leaves_the_others(
    ondemand_pm: pluggy.PluginManager, subject: Any
) -> None:
    enable_addon(ondemand_pm)
    ondemand_pm.register(AppointmentsPlugin())
    answers = ondemand_pm.hook.pm_dashboard_actions(
        dashboard="appointment", subject=subject, context=CONTEXT
    )
    assert sorted(answers) == [[], [{"id": "appointments.reschedule", "label": "Reschedule"}]]


@pytest.mark.parametrize("context", [{}, {"practice_id": 7}, None])
def test_a_malformed_context_is_an_invalid_request_on_any_dashboard(
    ondemand_pm: pluggy.PluginManager, context: Any
) -> None:
    enable_addon(ondemand_pm)
    with pytest.raises(OnDemandError) as refusal:
        ondemand_pm.hook.pm_dashboard_actions(
            dashboard="appointment", subject={"type": "appointment", "id": "a-17"}, context=context
        )
    assert refusal.value.code == "invalid_request"
    assert refusal.value.field == "context"


# R6: no batched statement, no send


@pytest.mark.parametrize(
    ("dashboard", "subject_id"), [("patient", "p-noah"), ("guarantor", "g-grace")]
)
def test_the_action_is_disabled_with_a_reason_when_no_guarantor_had_a_batched_statement(
    ondemand_pm: pluggy.PluginManager, dashboard: str, subject_id: str
) -> None:
    enable_addon(ondemand_pm)
    [action] = actions(ondemand_pm, dashboard, subject_id)
    assert action["enabled"] is False
    assert "batched statement" in action["disabled_reason"]
    assert_valid("dashboard-action", action)


def test_one_guarantor_with_a_batched_statement_is_enough_to_enable_the_action(
    ondemand_pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    enable_addon(ondemand_pm)
    ondemand_host.add_guarantor("demo", guarantor("g-ben", "Ben", "Park", "10.00", statements=4))
    ondemand_host.link("demo", "p-noah", "g-ben")
    [action] = actions(ondemand_pm, "patient", "p-noah")
    assert action["enabled"] is True
    assert action["disabled_reason"] is None


# The actions hook runs on every render: only the host lookups it needs, no query of ours.


def test_the_actions_hook_asks_the_host_only_what_it_needs(
    ondemand_pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    enable_addon(ondemand_pm)
    ondemand_host.calls.clear()
    actions(ondemand_pm, "patient", "p-lily")
    # g-mei has statements, so g-tom is never looked up; the practice is not needed at all.
    assert ondemand_host.calls == [
        ("pm_patient", {"practice_id": "demo", "patient_id": "p-lily"}),
        ("pm_guarantor", {"practice_id": "demo", "guarantor_id": "g-mei"}),
    ]
    ondemand_host.calls.clear()
    actions(ondemand_pm, "guarantor", "g-mei")
    assert ondemand_host.calls == [
        ("pm_guarantor", {"practice_id": "demo", "guarantor_id": "g-mei"}),
    ]


def test_the_actions_hook_asks_the_host_nothing_without_the_addon(
    ondemand_pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    ondemand_host.calls.clear()
    actions(ondemand_pm, "patient", "p-lily")
    assert ondemand_host.calls == []


def test_the_actions_hook_makes_no_database_query_while_the_addon_state_is_fresh(
    ondemand_pm: pluggy.PluginManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A long refresh time, so that a slow machine cannot make the cached state stale mid-test.
    monkeypatch.setattr(entitlement, "REFRESH_SECONDS", 3600.0)
    enable_addon(ondemand_pm)
    statements = trace_sql(ondemand_pm)
    for dashboard, subject_id in [*DASHBOARDS, ("patient", "p-noah")]:
        actions(ondemand_pm, dashboard, subject_id)
    assert statements == []
