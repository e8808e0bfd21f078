"""The starter templates: one per mode for a practice whose add-on is switched on for the first
time, the practice's own to edit, copy or delete; whole sentences at $0.00 and a credit (R5)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pluggy
import pytest
from conftest import CONTEXT, Build, assert_valid, host_on, on_each_backend
from test_extensions import MemoryTemplateStore, TemplateStorePlugin

from hookspecs import Template
from ondemand_plugin import MANAGE_ACTION_ID, SEND_ACTION_ID
from ondemand_plugin.admin import addon_log, addon_state, switch_addon
from ondemand_plugin.errors import OnDemandError
from ondemand_plugin.rules.templates import STARTER_TEMPLATES
from ondemand_plugin.testing import ReferenceHost, build_plugin_manager, store_of

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


class Died(BaseException):
    """The process dying at a store write: nothing of the plugin's can catch it."""


def die_at_write(
    monkeypatch: pytest.MonkeyPatch, pm: pluggy.PluginManager, fatal: int
) -> list[str]:
    """Make the store's ``fatal``-th write of a switch (0 first) kill the process before it is
    written; the writes that happened are listed."""
    store = store_of(pm)
    writes: list[str] = []
    for name in ("record_addon_change", "save_template"):
        write = getattr(store, name)

        def dying(*args: Any, _write: Any = write, _name: str = name) -> Any:
            if len(writes) == fatal:
                raise Died
            writes.append(_name)
            return _write(*args)

        monkeypatch.setattr(store, name, dying)
    return writes


@pytest.fixture
def backend() -> str:
    """SQLite; what the store must keep through a dying process runs on each backend."""
    return "sqlite"


@pytest.fixture
def ondemand_host(database_url: str, tmp_path: Path) -> ReferenceHost:
    return host_on(database_url, tmp_path / "first")


@on_each_backend
@pytest.mark.parametrize("fatal", range(1 + len(STARTER_TEMPLATES)))
def test_a_first_switch_on_cut_short_anywhere_gives_every_starter_once_when_made_again(
    ondemand_pm: pluggy.PluginManager,
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    tmp_path: Path,
    fatal: int,
) -> None:
    writes = die_at_write(monkeypatch, ondemand_pm, fatal)
    with pytest.raises(Died):
        switch(ondemand_pm, True)
    assert len(writes) == fatal
    monkeypatch.undo()

    # Another worker, started after the one that died, on the same database.
    restarted = build_plugin_manager(host_on(database_url, tmp_path / "restarted"))
    try:
        done = switch_addon(restarted, "demo", enabled=True, by="Sam Rivera")
        assert done.changed
        assert sorted(done.starter_templates) == sorted(t["id"] for t in templates(restarted))
        assert sorted(t["label"] for t in templates(restarted)) == sorted(
            t["label"] for t in STARTER_TEMPLATES
        )
        assert [change.enabled for change in addon_log(restarted, "demo")] == [True]
    finally:
        restarted.hook.pm_unconfigure(plugin_manager=restarted)


class FlakyTemplateStore(MemoryTemplateStore):
    """A third party's store whose save fails once, after letting ``fail_after`` saves
    through, when that is set."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_after: int | None = None

    def save_template(self, practice_id: str, template: Template) -> None:
        if self.fail_after == 0:
            self.fail_after = None
            raise ConnectionError("CMS down")
        if self.fail_after is not None:
            self.fail_after -= 1
        super().save_template(practice_id, template)


def test_a_failing_template_store_refuses_a_first_switch_on_until_it_works(
    build: Build,
) -> None:
    flaky = FlakyTemplateStore()
    pm, _ = build(named={"cms-templates": TemplateStorePlugin(flaky)})
    flaky.fail_after = 1  # the second starter
    with pytest.raises(OnDemandError) as refused:
        switch_addon(pm, "other", enabled=True, by="Sam Rivera")
    assert refused.value.code == "plugin_error"
    assert "cms-templates" in refused.value.message
    assert "not switched on" in refused.value.message
    assert addon_log(pm, "other") == []
    assert not addon_state(pm, "other").enabled

    done = switch_addon(pm, "other", enabled=True, by="Sam Rivera")
    assert done.changed and len(done.starter_templates) == 3
    assert sorted(t.mode for t in flaky.list_templates("other")) == ["email", "text", "voice"]


def test_a_practice_with_templates_of_its_own_gets_no_starters(build: Build) -> None:
    own = MemoryTemplateStore()
    own.save_template("demo", Template(id="tpl_cms", label="From the CMS", mode="text", body="Hi"))
    pm, _ = build(named={"cms-templates": TemplateStorePlugin(own)})
    assert [t["id"] for t in templates(pm)] == ["tpl_cms"]


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
