"""The contract with the host: its answers are checked before they are used, a broken answer names
the hook and the host plugin, refusals write nothing, every hook result follows its schema, and
plugin managers in one process share nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pluggy
import pytest
from conftest import CONTEXT, assert_valid, enable_addon

import hookspecs
from ondemand_plugin import MANAGE_ACTION_ID, SEND_ACTION_ID
from ondemand_plugin.admin import switch_addon
from ondemand_plugin.boundary.host import Host
from ondemand_plugin.channels.outbox import read_outbox
from ondemand_plugin.errors import HostError, OnDemandError
from ondemand_plugin.plugin import OnDemandPlugin
from ondemand_plugin.testing import ReferenceHost, build_plugin_manager, demo_host
from ondemand_plugin.testing.pytest_plugin import ondemand_test_config

TEXT_TO_MEI = {
    "guarantor_id": "g-mei",
    "send_to": {"entity": {"type": "guarantor", "id": "g-mei"}, "mode": "text"},
    "body": "Your balance is {{BalanceDue}}: {{QuickPayLink}}",
}


@pytest.fixture
def pm(ondemand_pm: pluggy.PluginManager) -> pluggy.PluginManager:
    enable_addon(ondemand_pm)
    return ondemand_pm


@pytest.fixture
def second_pm(tmp_path: Path) -> Iterator[pluggy.PluginManager]:
    """Another host in the same process, with its own database file and outbox."""
    second = build_plugin_manager(demo_host(ondemand_test_config(tmp_path / "second")))
    yield second
    second.hook.pm_unconfigure(plugin_manager=second)


def dashboard_action(
    pm: pluggy.PluginManager,
    step: str,
    subject: dict[str, str],
    payload: dict[str, Any] | None = None,
    action_id: str = SEND_ACTION_ID,
) -> Any:
    return pm.hook.pm_dashboard_action(
        action_id=action_id, step=step, subject=subject, payload=payload or {}, context=CONTEXT
    )


def actions(pm: pluggy.PluginManager, dashboard: str, subject_id: str) -> list[dict[str, Any]]:
    answers = pm.hook.pm_dashboard_actions(
        dashboard=dashboard, subject={"type": dashboard, "id": subject_id}, context=CONTEXT
    )
    return [action for answer in answers for action in answer]


def history(pm: pluggy.PluginManager, guarantor_id: str) -> list[dict[str, Any]]:
    [entries] = pm.hook.pm_history_entries(
        guarantor_id=guarantor_id, context=CONTEXT, before=None, limit=100
    )
    return list(entries)


def outbox(host: ReferenceHost) -> list[dict[str, Any]]:
    assert host.plugin_config is not None
    return read_outbox(Path(host.plugin_config["outbox_dir"]), "demo")


LILY = {"type": "patient", "id": "p-lily"}


# The host's answers are validated; a broken one names the hook and the host plugin.


def break_balance(host: ReferenceHost) -> None:
    host.guarantors["demo"]["g-mei"]["pops_balance"] = "12.5.0"


def drop_opt_out(host: ReferenceHost) -> None:
    del host.guarantors["demo"]["g-mei"]["opt_out"]


def bad_timezone(host: ReferenceHost) -> None:
    host.practices["demo"]["timezone"] = "Mars/Olympus_Mons"


def answer_with_another_patient(host: ReferenceHost) -> None:
    host.patients["demo"]["p-lily"]["id"] = "p-someone-else"


def float_balance(host: ReferenceHost) -> None:
    host.guarantors["demo"]["g-mei"]["pops_balance"] = 120.5


BROKEN_ANSWERS: list[tuple[Callable[[ReferenceHost], None], str]] = [
    (break_balance, "pm_guarantor"),
    (drop_opt_out, "pm_guarantor"),
    (bad_timezone, "pm_practice"),
    (answer_with_another_patient, "pm_patient"),
    (float_balance, "pm_guarantor"),
]


@pytest.mark.parametrize(("breakage", "hook_name"), BROKEN_ANSWERS)
def test_an_invalid_host_answer_is_a_host_error_naming_the_hook_and_plugin(
    pm: pluggy.PluginManager,
    ondemand_host: ReferenceHost,
    breakage: Callable[[ReferenceHost], None],
    hook_name: str,
) -> None:
    breakage(ondemand_host)
    with pytest.raises(OnDemandError) as refusal:
        dashboard_action(pm, "open", LILY)
    assert refusal.value.code == "host_error"
    assert hook_name in refusal.value.message
    assert "(host)" in refusal.value.message  # the name the host registered its adapter under


def test_the_host_plugin_is_named_as_it_was_registered(tmp_path: Path) -> None:
    host = demo_host(ondemand_test_config(tmp_path))
    break_balance(host)
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    hookspecs.add_hookspecs(pm)
    pm.register(host, name="acme-billing-adapter")
    pm.load_setuptools_entrypoints(hookspecs.PROJECT_NAME)
    pm.hook.pm_configure.call_historic(kwargs={"plugin_manager": pm})
    try:
        enable_addon(pm)
        with pytest.raises(OnDemandError) as refusal:
            dashboard_action(pm, "open", LILY)
    finally:
        pm.hook.pm_unconfigure(plugin_manager=pm)
    assert "acme-billing-adapter" in refusal.value.message


@pytest.mark.parametrize("count", ["2", -1, None, 1.5])
def test_the_actions_hook_checks_the_statement_count_it_reads(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost, count: Any
) -> None:
    ondemand_host.guarantors["demo"]["g-mei"]["batched_statement_count"] = count
    with pytest.raises(OnDemandError) as refusal:
        actions(pm, "guarantor", "g-mei")
    assert refusal.value.code == "host_error"
    assert "pm_guarantor" in refusal.value.message


@pytest.mark.parametrize("step", ["open", "submit"])
def test_an_unknown_patient_is_not_found(pm: pluggy.PluginManager, step: str) -> None:
    with pytest.raises(OnDemandError) as refusal:
        dashboard_action(pm, step, {"type": "patient", "id": "p-nobody"}, TEXT_TO_MEI)
    assert refusal.value.code == "not_found"


def test_an_unknown_patient_on_a_dashboard_is_not_found(pm: pluggy.PluginManager) -> None:
    with pytest.raises(OnDemandError) as refusal:
        actions(pm, "patient", "p-nobody")
    assert refusal.value.code == "not_found"


# A refused request writes nothing and delivers nothing.


def addon_off(pm: pluggy.PluginManager, host: ReferenceHost) -> None:
    switch_addon(pm, "demo", enabled=False, by="Ann Manager", reason="test")


def host_breaks(pm: pluggy.PluginManager, host: ReferenceHost) -> None:
    break_balance(host)


def opted_out(pm: pluggy.PluginManager, host: ReferenceHost) -> None:
    host.guarantors["demo"]["g-mei"]["opt_out"]["text"] = True


def mei_never_had_a_statement(pm: pluggy.PluginManager, host: ReferenceHost) -> None:
    host.guarantors["demo"]["g-mei"]["batched_statement_count"] = 0


@pytest.mark.parametrize(
    ("refusal_cause", "code"),
    [
        (addon_off, "not_entitled"),
        (host_breaks, "host_error"),
        (opted_out, "opted_out"),
        (mei_never_had_a_statement, "guarantor_not_eligible"),
    ],
)
def test_a_refused_send_records_and_delivers_nothing(
    pm: pluggy.PluginManager,
    ondemand_host: ReferenceHost,
    refusal_cause: Callable[[pluggy.PluginManager, ReferenceHost], None],
    code: str,
) -> None:
    refusal_cause(pm, ondemand_host)
    with pytest.raises(OnDemandError) as refusal:
        dashboard_action(pm, "submit", LILY, TEXT_TO_MEI)
    assert refusal.value.code == code
    assert history(pm, "g-mei") == []
    assert outbox(ondemand_host) == []


def test_a_send_without_any_batched_statement_is_refused_and_records_nothing(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    with pytest.raises(OnDemandError) as refusal:
        dashboard_action(
            pm,
            "submit",
            {"type": "patient", "id": "p-noah"},
            {
                "guarantor_id": "g-grace",
                "send_to": {"entity": {"type": "guarantor", "id": "g-grace"}, "mode": "text"},
                "body": "Your balance is {{BalanceDue}}.",
            },
        )
    assert refusal.value.code == "no_batched_statement"
    assert history(pm, "g-grace") == []
    assert outbox(ondemand_host) == []


# Every hook result follows its schema in contracts/.


def test_every_hook_result_follows_its_schema(pm: pluggy.PluginManager) -> None:
    for action in actions(pm, "patient", "p-lily") + actions(pm, "guarantor", "g-grace"):
        assert_valid("dashboard-action", action)
    for subject in (
        LILY,
        {"type": "guarantor", "id": "g-ruth"},
        {"type": "patient", "id": "p-noah"},
    ):
        assert_valid("send-form", dashboard_action(pm, "open", subject))

    practice = {"type": "practice", "id": "demo"}
    assert_valid("manage-form", dashboard_action(pm, "open", practice, action_id=MANAGE_ACTION_ID))
    created = dashboard_action(
        pm,
        "submit",
        practice,
        {
            "op": "create",
            "template": {"label": "Pay now", "mode": "text", "body": "{{BalanceDue}}"},
        },
        action_id=MANAGE_ACTION_ID,
    )
    assert_valid("template-result", created)
    listed = dashboard_action(pm, "submit", LILY, {"op": "list"}, action_id=MANAGE_ACTION_ID)
    assert_valid("template-result", listed)
    assert_valid("manage-form", dashboard_action(pm, "open", practice, action_id=MANAGE_ACTION_ID))

    sent = dashboard_action(
        pm, "submit", LILY, {**TEXT_TO_MEI, "body": None, "template_id": created["template"]["id"]}
    )
    assert_valid("send-result", sent)
    zero = dashboard_action(
        pm,
        "submit",
        LILY,
        {
            "guarantor_id": "g-tom",
            "send_to": {"entity": {"type": "guarantor", "id": "g-tom"}, "mode": "email"},
            "subject": "Your balance",
            "body": "{{BalanceDue}}: {{QuickPayLink}}",
        },
    )
    assert_valid("send-result", zero)
    entries = history(pm, "g-mei") + history(pm, "g-tom")
    assert len(entries) == 2
    for entry in entries:
        assert_valid("history-entry", entry)


# Several plugin managers in one process share nothing.


def ondemand_instances(pm: pluggy.PluginManager) -> list[OnDemandPlugin]:
    """What ``pm_configure`` registered in the manager, found by its class, not its name."""
    return [plugin for plugin in pm.get_plugins() if isinstance(plugin, OnDemandPlugin)]


def test_each_plugin_manager_gets_its_own_plugin_instance(
    ondemand_pm: pluggy.PluginManager, second_pm: pluggy.PluginManager
) -> None:
    [first] = ondemand_instances(ondemand_pm)
    [second] = ondemand_instances(second_pm)
    assert isinstance(first, OnDemandPlugin)
    assert isinstance(second, OnDemandPlugin)
    assert first is not second
    assert first.store is not second.store
    assert first.entitlement is not second.entitlement
    assert first.pm is ondemand_pm
    assert second.pm is second_pm


def test_the_addon_switched_on_in_one_manager_stays_off_in_another(
    ondemand_pm: pluggy.PluginManager, second_pm: pluggy.PluginManager
) -> None:
    enable_addon(ondemand_pm)
    assert len(actions(ondemand_pm, "patient", "p-lily")) == 1
    assert actions(second_pm, "patient", "p-lily") == []
    with pytest.raises(OnDemandError) as refusal:
        dashboard_action(second_pm, "open", LILY)
    assert refusal.value.code == "not_entitled"


def test_unconfigure_closes_the_store_and_unregisters_the_instance(
    ondemand_pm: pluggy.PluginManager, second_pm: pluggy.PluginManager
) -> None:
    enable_addon(ondemand_pm)
    enable_addon(second_pm)
    [instance] = ondemand_instances(ondemand_pm)
    wal = Path(str(instance.store.backend.path) + "-wal")
    assert wal.exists()  # an open WAL database keeps its log beside it

    ondemand_pm.hook.pm_unconfigure(plugin_manager=ondemand_pm)

    assert ondemand_instances(ondemand_pm) == []
    assert not ondemand_pm.is_registered(instance)
    assert not wal.exists()  # SQLite removes the log when the last connection closes
    assert actions(ondemand_pm, "patient", "p-lily") == []  # no one answers the hook any more
    # The other manager's plugin is untouched.
    assert len(actions(second_pm, "patient", "p-lily")) == 1


def test_refusals_and_outbound_messages_follow_their_schemas(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    with pytest.raises(OnDemandError) as refused:
        dashboard_action(pm, "open", {"type": "patient", "id": "nobody"})
    assert_valid("error", refused.value.to_dict())
    assert refused.value.to_dict()["code"] == "not_found"

    dashboard_action(
        pm,
        "submit",
        {"type": "patient", "id": "p-lily"},
        payload={
            "guarantor_id": "g-mei",
            "send_to": {"entity": {"type": "guarantor", "id": "g-mei"}, "mode": "email"},
            "body": "{{BalanceDue}}",
        },
    )
    assert ondemand_host.plugin_config is not None
    [message] = read_outbox(Path(ondemand_host.plugin_config["outbox_dir"]), "demo")
    assert_valid("outbound-message", {k: v for k, v in message.items() if k != "delivered_at"})


def test_the_receipt_type_and_its_schema_agree() -> None:
    for status in ("queued", "sent", "delivered"):
        receipt = hookspecs.DeliveryReceipt(status=status, provider_message_id="SM1")
        assert_valid("delivery-receipt", attrs.asdict(receipt))
    with pytest.raises(ValueError):
        hookspecs.DeliveryReceipt(status="lost")


class RaisingBilling:
    """A host adapter in front of the reference host whose every platform hook raises, with
    patient data in the exception's text, as a KeyError from a host's lookup would carry it."""

    def fail(self) -> Any:
        raise LookupError("no balance row for Mei Chen, born 2011-03-04")

    @hookspecs.hookimpl(tryfirst=True)
    def pm_practice(self, practice_id: str) -> Any:
        return self.fail()

    @hookspecs.hookimpl(tryfirst=True)
    def pm_patient(self, practice_id: str, patient_id: str) -> Any:
        return self.fail()

    @hookspecs.hookimpl(tryfirst=True)
    def pm_guarantor(self, practice_id: str, guarantor_id: str) -> Any:
        return self.fail()

    @hookspecs.hookimpl(tryfirst=True)
    def pm_quickpay_link(self, practice_id: str, guarantor_id: str, amount: Any) -> Any:
        return self.fail()

    @hookspecs.hookimpl(tryfirst=True)
    def pm_update_contact(self, practice_id: str, entity: Any, contact: Any, context: Any) -> Any:
        return self.fail()

    @hookspecs.hookimpl(tryfirst=True)
    def pm_set_opt_out(
        self, practice_id: str, mode: str, address: str, opted_out: bool, context: Any
    ) -> Any:
        return self.fail()

    @hookspecs.hookimpl(tryfirst=True)
    def pm_plugin_config(self, plugin_name: str) -> Any:
        return self.fail()


HOST_CALLS: list[tuple[str, Callable[[Host], object]]] = [
    ("pm_practice", lambda host: host.practice("demo")),
    ("pm_patient", lambda host: host.patient("demo", "p-lily")),
    ("pm_patient", lambda host: host.guarantor_ids_of_patient("demo", "p-lily")),
    ("pm_guarantor", lambda host: host.guarantor("demo", "g-mei")),
    ("pm_guarantor", lambda host: host.batched_statement_count("demo", "g-mei")),
    ("pm_quickpay_link", lambda host: host.quickpay_link("demo", "g-mei", Decimal("1.00"))),
    (
        "pm_update_contact",
        lambda host: host.update_contact(
            "demo", {"type": "guarantor", "id": "g-mei"}, {"kind": "mobile", "value": "x"}, CONTEXT
        ),
    ),
    ("pm_set_opt_out", lambda host: host.set_opt_out("demo", "text", "+15035550123", True, {})),
    ("pm_plugin_config", lambda host: host.plugin_config("ondemand")),
]


@pytest.mark.parametrize(
    ("name", "shown"), [(None, "RaisingBilling"), ("acme-billing-adapter", "acme-billing-adapter")]
)
@pytest.mark.parametrize(("hook_name", "call"), HOST_CALLS, ids=[h for h, _ in HOST_CALLS])
def test_a_host_hook_that_raises_is_a_host_error_naming_the_hook_and_the_host_plugin(
    tmp_path: Path,
    hook_name: str,
    call: Callable[[Host], object],
    name: str | None,
    shown: str,
) -> None:
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    hookspecs.add_hookspecs(pm)
    pm.register(demo_host(ondemand_test_config(tmp_path)), name="host")
    broken = RaisingBilling()
    pm.register(broken, name=name)
    with pytest.raises(HostError) as refusal:
        call(Host(pm))
    message = refusal.value.message
    assert refusal.value.code == "host_error"
    assert refusal.value.field == hook_name
    # the one host plugin that raised, not every implementer of the hook
    assert f"host plugin {shown} raised LookupError in its {hook_name} hook" in message
    assert str(id(broken)) not in message
    assert "Mei" not in message  # the host's exception text could quote a patient
    assert isinstance(refusal.value.__cause__, LookupError)


def test_a_host_hook_that_raises_during_a_dialog_is_a_host_error(
    pm: pluggy.PluginManager,
) -> None:
    pm.register(RaisingBilling())
    with pytest.raises(OnDemandError) as refusal:
        dashboard_action(pm, "open", LILY)
    assert refusal.value.code == "host_error"
    assert "RaisingBilling" in refusal.value.message
    assert "pm_practice" in refusal.value.message


def test_a_host_plugin_registered_without_a_name_is_named_by_its_class(tmp_path: Path) -> None:
    host = demo_host(ondemand_test_config(tmp_path))
    break_balance(host)
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    hookspecs.add_hookspecs(pm)
    pm.register(host)
    pm.load_setuptools_entrypoints(hookspecs.PROJECT_NAME)
    pm.hook.pm_configure.call_historic(kwargs={"plugin_manager": pm})
    try:
        enable_addon(pm)
        with pytest.raises(OnDemandError) as refusal:
            dashboard_action(pm, "open", LILY)
    finally:
        pm.hook.pm_unconfigure(plugin_manager=pm)
    assert "(ReferenceHost)" in refusal.value.message
    assert str(id(host)) not in refusal.value.message
