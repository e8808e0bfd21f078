"""R1, the account manager's tools (``ondemand_plugin.admin``): switch the add-on per practice,
see its state and its audit trail, from the host's own plugin manager."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pluggy
import pytest
from conftest import CONTEXT, host_on, on_each_backend

from ondemand_plugin import SEND_ACTION_ID
from ondemand_plugin.admin import addon_log, addon_state, switch_addon
from ondemand_plugin.errors import OnDemandError
from ondemand_plugin.rules.entitlement import REFRESH_SECONDS, Entitlement
from ondemand_plugin.stores import open_store
from ondemand_plugin.testing import ReferenceHost, build_plugin_manager, enable_addon

ROOT = Path(__file__).resolve().parent.parent
SWITCH_SECONDS = 5.0


@pytest.fixture
def backend() -> str:
    """SQLite; what several managers share runs on each backend."""
    return "sqlite"


@pytest.fixture
def ondemand_host(database_url: str, tmp_path: Path) -> ReferenceHost:
    return host_on(database_url, tmp_path / "first")


@pytest.fixture
def second_pm(database_url: str, tmp_path: Path) -> Iterator[pluggy.PluginManager]:
    """Another host's manager (another worker), on the same database."""
    pm = build_plugin_manager(host_on(database_url, tmp_path / "second"))
    yield pm
    pm.hook.pm_unconfigure(plugin_manager=pm)


def action_ids(pm: pluggy.PluginManager) -> list[str]:
    answers = pm.hook.pm_dashboard_actions(
        dashboard="patient", subject={"type": "patient", "id": "p-lily"}, context=CONTEXT
    )
    return [action["id"] for answer in answers for action in answer]


def test_a_switch_returns_its_audit_record_and_takes_effect_at_once(
    ondemand_pm: pluggy.PluginManager,
) -> None:
    assert action_ids(ondemand_pm) == []  # "off" is now cached
    switch = switch_addon(
        ondemand_pm, "demo", enabled=True, by="  Ann Manager ", reason="Signed the plan"
    )
    assert switch.changed and switch.enabled and switch.practice_id == "demo"
    assert switch.record is not None
    assert (switch.record.enabled, switch.record.changed_by, switch.record.reason) == (
        True,
        "Ann Manager",
        "Signed the plan",
    )
    assert action_ids(ondemand_pm) == [SEND_ACTION_ID]

    off = switch_addon(ondemand_pm, "demo", enabled=False, by="Kim Lee")
    assert off.changed and off.record is not None and off.record.reason is None
    assert action_ids(ondemand_pm) == []
    assert addon_log(ondemand_pm, "demo") == [switch.record, off.record]


def test_switching_to_the_state_it_has_records_nothing_and_says_so(
    ondemand_pm: pluggy.PluginManager,
) -> None:
    never = switch_addon(ondemand_pm, "demo", enabled=False, by="Ann Manager")
    assert (never.changed, never.enabled, never.record) == (False, False, None)
    on = switch_addon(ondemand_pm, "demo", enabled=True, by="Ann Manager", reason="Signed")

    again = switch_addon(ondemand_pm, "demo", enabled=True, by="Kim Lee", reason="Again")
    assert (again.changed, again.enabled) == (False, True)
    assert again.record == on.record  # the switch that set the state it already has
    assert again.to_dict()["changed"] is False
    assert addon_log(ondemand_pm, "demo") == [on.record]


@pytest.mark.parametrize("by", ["", "   ", None])
def test_a_switch_without_a_name_is_invalid_and_records_nothing(
    ondemand_pm: pluggy.PluginManager, by: Any
) -> None:
    with pytest.raises(OnDemandError) as refused:
        switch_addon(ondemand_pm, "demo", enabled=True, by=by)
    assert (refused.value.code, refused.value.field) == ("invalid_request", "by")
    assert "needs a name" in refused.value.message
    assert addon_log(ondemand_pm, "demo") == []
    assert action_ids(ondemand_pm) == []


@pytest.mark.parametrize(
    ("practice_id", "enabled", "reason", "field"),
    [
        ("", True, None, "practice_id"),
        (None, True, None, "practice_id"),
        ("demo", "off", None, "enabled"),  # a truthy string must not switch it on
        ("demo", 1, None, "enabled"),
        ("demo", True, 42, "reason"),
    ],
)
def test_a_malformed_switch_is_invalid_and_records_nothing(
    ondemand_pm: pluggy.PluginManager, practice_id: Any, enabled: Any, reason: Any, field: str
) -> None:
    with pytest.raises(OnDemandError) as refused:
        switch_addon(ondemand_pm, practice_id, enabled=enabled, by="Ann Manager", reason=reason)
    assert (refused.value.code, refused.value.field) == ("invalid_request", field)
    assert addon_log(ondemand_pm, "demo") == []
    for query in (addon_state, addon_log):
        with pytest.raises(OnDemandError, match="practice_id must be"):
            query(ondemand_pm, "")


def test_the_state_is_the_last_switch_and_the_log_every_switch_oldest_first(
    ondemand_pm: pluggy.PluginManager,
) -> None:
    never = addon_state(ondemand_pm, "demo")
    assert (never.enabled, never.last_change) == (False, None)
    assert never.to_dict() == {"practice_id": "demo", "enabled": False, "last_change": None}

    switch_addon(ondemand_pm, "demo", enabled=True, by="Sam Rivera", reason="Signed")
    switch_addon(ondemand_pm, "demo", enabled=False, by="Kim Lee", reason="Trial ended")
    switch_addon(ondemand_pm, "other", enabled=True, by="Sam Rivera")

    log = addon_log(ondemand_pm, "demo")
    assert [(c.enabled, c.changed_by, c.reason) for c in log] == [
        (True, "Sam Rivera", "Signed"),
        (False, "Kim Lee", "Trial ended"),
    ]
    assert log[0].changed_at <= log[1].changed_at and log[0].changed_at.tzinfo is not None
    state = addon_state(ondemand_pm, "demo")
    assert (state.enabled, state.last_change) == (False, log[-1])
    assert state.to_dict()["last_change"]["changed_by"] == "Kim Lee"
    assert addon_state(ondemand_pm, "other").enabled is True


@on_each_backend
def test_another_manager_on_the_same_database_sees_a_switch_within_5_seconds(
    ondemand_pm: pluggy.PluginManager, second_pm: pluggy.PluginManager
) -> None:
    assert action_ids(second_pm) == []  # the other worker has now cached "off"
    switch_addon(ondemand_pm, "demo", enabled=True, by="Ann Manager")
    switched_at = time.monotonic()
    while not action_ids(second_pm) and time.monotonic() - switched_at < SWITCH_SECONDS:
        time.sleep(0.05)
    assert action_ids(second_pm) == [SEND_ACTION_ID]
    assert addon_state(second_pm, "demo").enabled  # the state is read, not cached


@on_each_backend
def test_an_entitlement_rereads_the_switch_once_its_refresh_is_due(
    ondemand_pm: pluggy.PluginManager, database_url: str
) -> None:
    assert REFRESH_SECONDS <= SWITCH_SECONDS
    now = [0.0]
    store = open_store(database_url)
    try:
        elsewhere = Entitlement(store, clock=lambda: now[0])
        assert not elsewhere.is_enabled("demo")
        switch_addon(ondemand_pm, "demo", enabled=True, by="Ann Manager")
        now[0] = REFRESH_SECONDS - 0.01
        assert not elsewhere.is_enabled("demo")  # no query per render: the cache answers
        now[0] = REFRESH_SECONDS
        assert elsewhere.is_enabled("demo")
    finally:
        store.close()


def test_the_test_kit_switches_the_addon_on_through_the_same_switch(
    ondemand_pm: pluggy.PluginManager,
) -> None:
    first = enable_addon(ondemand_pm, "demo")
    assert first.changed and action_ids(ondemand_pm) == [SEND_ACTION_ID]
    assert not enable_addon(ondemand_pm, "demo").changed
    assert len(addon_log(ondemand_pm, "demo")) == 1


def test_a_manager_without_the_plugin_configured_is_told_how_to_configure_it(
    ondemand_host: ReferenceHost,
) -> None:
    import hookspecs

    bare = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    hookspecs.add_hookspecs(bare)
    bare.register(ondemand_host, name="host")
    for call in (
        lambda: switch_addon(bare, "demo", enabled=True, by="Ann Manager"),
        lambda: addon_state(bare, "demo"),
        lambda: addon_log(bare, "demo"),
        lambda: enable_addon(bare, "demo"),
    ):
        with pytest.raises(OnDemandError) as refused:
            call()
        assert refused.value.code == "invalid_config"
        assert "load_setuptools_entrypoints" in refused.value.message
        assert "pm_configure" in refused.value.message


def test_after_unconfigure_the_tools_say_the_plugin_is_not_configured(
    ondemand_host: ReferenceHost,
) -> None:
    pm = build_plugin_manager(ondemand_host)
    pm.hook.pm_unconfigure(plugin_manager=pm)
    with pytest.raises(OnDemandError, match="has not configured"):
        addon_state(pm, "demo")


# Nothing outside the plugin reaches its per-manager instance.

INSTANCE = re.compile(r"ondemand\.instance|INSTANCE_NAME")


def readme_examples() -> str:
    readme = (ROOT / "README.md").read_text("utf-8")
    return "\n".join(re.findall(r"```python\n(.*?)```", readme, re.DOTALL))


def test_no_test_bench_or_readme_example_names_the_plugins_instance() -> None:
    sources = {
        path.relative_to(ROOT).as_posix(): path.read_text("utf-8")
        for folder in ("tests", "bench")
        for path in (ROOT / folder).rglob("*.py")
        if path != Path(__file__)
    }
    sources["README.md (examples)"] = readme_examples()
    offenders = [
        f"{name}:{number}: {line.strip()}"
        for name, text in sources.items()
        for number, line in enumerate(text.splitlines(), 1)
        if INSTANCE.search(line)
    ]
    assert not offenders, (
        "Reach the plugin through its hooks, ondemand_plugin.admin or ondemand_plugin.testing "
        "(enable_addon, store_of, run_recovery, channels_of, config_of), not its instance:\n"
        + "\n".join(offenders)
    )
