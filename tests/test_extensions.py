"""Extension plugins: a template store of a third party's, and broken plugins named and skipped
(or refused under ``ONDEMAND_STRICT_PLUGINS=1``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pluggy
import pytest
from conftest import CONTEXT, FIRST_TEXT_OPT_OUT, Build, assert_valid, send_to_mei

from hookspecs import DeliveryReceipt, OutboundMessage, Template, hookimpl
from ondemand_plugin import MANAGE_ACTION_ID, SEND_ACTION_ID
from ondemand_plugin.errors import OnDemandError
from ondemand_plugin.testing import store_of

PRACTICE = {"type": "practice", "id": "demo"}


class MemoryTemplateStore:
    """Templates kept in a dict, as a CMS-backed store would keep them elsewhere."""

    def __init__(self) -> None:
        self.templates: dict[tuple[str, str], Template] = {}

    def list_templates(self, practice_id: str) -> list[Template]:
        return [t for (practice, _), t in self.templates.items() if practice == practice_id]

    def get_template(self, practice_id: str, template_id: str) -> Template | None:
        return self.templates.get((practice_id, template_id))

    def save_template(self, practice_id: str, template: Template) -> None:
        self.templates[(practice_id, template.id)] = template

    def delete_template(self, practice_id: str, template_id: str) -> bool:
        return self.templates.pop((practice_id, template_id), None) is not None


class TemplateStorePlugin:
    def __init__(self, store: MemoryTemplateStore) -> None:
        self.store = store

    @hookimpl
    def ondemand_template_store(self, config: dict[str, Any]) -> MemoryTemplateStore:
        return self.store


class NamedChannel:
    def __init__(self, name: str, modes: Any = frozenset({"text"})) -> None:
        self.name = name
        self.modes = modes

    def deliver(self, message: OutboundMessage) -> DeliveryReceipt:
        return DeliveryReceipt(status="sent")


class ChannelsPlugin:
    def __init__(self, answer: Callable[[], Any]) -> None:
        self.answer = answer

    @hookimpl
    def ondemand_delivery_channels(self, config: dict[str, Any]) -> Any:
        return self.answer()


def raise_import_like_error() -> Any:
    raise RuntimeError("the gateway SDK is missing")


def test_a_template_store_plugin_replaces_the_built_in_store(build: Build) -> None:
    memory = MemoryTemplateStore()
    pm, _ = build(named={"cms-templates": TemplateStorePlugin(memory)})
    created = pm.hook.pm_dashboard_action(
        action_id=MANAGE_ACTION_ID,
        step="submit",
        subject=PRACTICE,
        context=CONTEXT,
        payload={"op": "create", "template": {"label": "T", "mode": "text", "body": "Hi"}},
    )["template"]
    assert list(memory.templates) == [("demo", created["id"])]
    built_in = store_of(pm)
    assert built_in.list_templates("demo") == []
    sent = send_to_mei(pm, template_id=created["id"], body=None)
    assert sent["body"] == "Hi" + FIRST_TEXT_OPT_OUT


class BrokenTemplateStore(MemoryTemplateStore):
    """A store whose every read raises once it is ``broken``, with a template's text in the
    error."""

    broken = False

    def list_templates(self, practice_id: str) -> list[Template]:
        if self.broken:
            raise ConnectionError("CMS down while reading 'Dear Mei, you owe $120.50'")
        return super().list_templates(practice_id)

    def get_template(self, practice_id: str, template_id: str) -> Template | None:
        if self.broken:
            raise ConnectionError("CMS down")
        return super().get_template(practice_id, template_id)


def build_with_broken_store(build: Build) -> pluggy.PluginManager:
    """The add-on switched on while the store ``cms-templates`` worked (a first switch on
    needs it for the starter templates), and the store broken since."""
    store = BrokenTemplateStore()
    pm, _ = build(named={"cms-templates": TemplateStorePlugin(store)})
    store.broken = True
    return pm


def open_dialog(pm: Any) -> dict[str, Any]:
    form: dict[str, Any] = pm.hook.pm_dashboard_action(
        action_id=SEND_ACTION_ID,
        step="open",
        subject={"type": "patient", "id": "p-lily"},
        payload={},
        context=CONTEXT,
    )
    assert_valid("send-form", form)
    return form


def test_a_template_store_that_raises_leaves_the_dialog_open_for_typed_text(
    build: Build, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        pm = build_with_broken_store(build)
        form = open_dialog(pm)
    assert form["can_send"] is True
    assert form["templates"] == []
    [notice] = [notice for notice in form["notices"] if "template store" in notice]
    assert "cms-templates" in notice and "type the message" in notice
    assert (
        "cms-templates: its template store failed: its list_templates raised ConnectionError"
        in (caplog.text)
    )
    assert "Mei" not in caplog.text
    assert send_to_mei(pm)["status"] == "sent"  # typed text needs no store


def test_a_template_from_a_store_that_raises_is_refused_naming_the_store(build: Build) -> None:
    pm = build_with_broken_store(build)
    with pytest.raises(OnDemandError) as refused:
        send_to_mei(pm, template_id="tpl_1", body=None)
    assert refused.value.code == "plugin_error"
    assert "cms-templates" in refused.value.message and "ConnectionError" in refused.value.message
    assert pm.hook.pm_history_entries(
        guarantor_id="g-mei", context=CONTEXT, before=None, limit=10
    ) == [[]]


def test_templates_that_break_the_contract_are_left_out_with_a_notice(
    build: Build, caplog: pytest.LogCaptureFixture
) -> None:
    memory = MemoryTemplateStore()
    memory.save_template("demo", Template(id="tpl_fax", label="Fax", mode="fax", body="Hi"))  # type: ignore[arg-type]
    memory.save_template("demo", Template(id="tpl_text", label="Text", mode="text", body="Hi"))
    memory.templates[("demo", "tpl_dict")] = {"id": "tpl_dict"}  # type: ignore[assignment]
    with caplog.at_level(logging.WARNING):
        pm, _ = build(named={"cms-templates": TemplateStorePlugin(memory)})
        form = open_dialog(pm)
    assert form["templates"] == [{"id": "tpl_text", "label": "Text", "mode": "text"}]
    assert any("2 template(s) from the template store cms-templates" in n for n in form["notices"])
    assert "cms-templates: its template store answered a template that breaks" in caplog.text
    assert "mode must be one of" in caplog.text
    with pytest.raises(OnDemandError) as refused:
        send_to_mei(pm, template_id="tpl_fax", body=None)
    assert refused.value.code == "plugin_error"
    assert "cms-templates" in refused.value.message


def test_a_template_store_without_its_methods_is_skipped_for_the_built_in_one(
    build: Build, caplog: pytest.LogCaptureFixture
) -> None:
    class NotAStore:
        def list_templates(self, practice_id: str) -> list[Template]:
            return []

    class Offers:
        @hookimpl
        def ondemand_template_store(self, config: dict[str, Any]) -> Any:
            return NotAStore()

    with caplog.at_level(logging.WARNING):
        pm, _ = build(named={"half-store": Offers()})
    assert "half-store: its template store has no get_template, save_template" in caplog.text
    manage(pm, {"op": "create", "template": {"label": "T", "mode": "text", "body": "Hi"}})
    assert len(store_of(pm).list_templates("demo")) == 1  # the built-in store was kept


def two_stores() -> dict[str, object]:
    return {
        "cms-templates": TemplateStorePlugin(MemoryTemplateStore()),
        "wiki-templates": TemplateStorePlugin(MemoryTemplateStore()),
    }


def test_two_template_stores_without_template_store_set_are_an_error_at_start(
    build: Build,
) -> None:
    with pytest.raises(OnDemandError) as refused:
        build(named=two_stores())
    assert refused.value.code == "invalid_config"
    assert refused.value.field == "template_store"
    message = refused.value.message
    assert "cms-templates" in message and "wiki-templates" in message
    assert "Set template_store" in message


@pytest.mark.parametrize("chosen", ["cms-templates", "wiki-templates"])
def test_template_store_picks_the_plugin_whose_store_is_used(build: Build, chosen: str) -> None:
    stores = two_stores()
    pm, _ = build(named=stores, template_store=chosen)
    manage(pm, {"op": "create", "template": {"label": "T", "mode": "text", "body": "Hi"}})
    for name, plugin in stores.items():
        assert isinstance(plugin, TemplateStorePlugin)
        assert len(plugin.store.templates) == (1 if name == chosen else 0)


def test_template_store_ondemand_keeps_the_built_in_store(build: Build) -> None:
    stores = two_stores()
    pm, _ = build(named=stores, template_store="ondemand")
    manage(pm, {"op": "create", "template": {"label": "T", "mode": "text", "body": "Hi"}})
    assert len(store_of(pm).list_templates("demo")) == 1


def test_template_store_naming_no_store_is_an_error_at_start(build: Build) -> None:
    with pytest.raises(OnDemandError) as refused:
        build(named=two_stores(), template_store="cms-templatez")
    assert refused.value.code == "invalid_config"
    assert "'cms-templatez'" in refused.value.message
    assert "cms-templates, wiki-templates" in refused.value.message


def manage(pm: Any, payload: dict[str, Any]) -> Any:
    return pm.hook.pm_dashboard_action(
        action_id=MANAGE_ACTION_ID,
        step="submit",
        subject=PRACTICE,
        context=CONTEXT,
        payload=payload,
    )


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (raise_import_like_error, "raised RuntimeError: the gateway SDK is missing"),
        (lambda: "not a list", "must return a list of channels"),
        (lambda: [NamedChannel("")], "has no name"),
        (lambda: [NamedChannel("fax", frozenset({"fax"}))], "must declare modes"),
        (lambda: [object()], "has no name"),
        (lambda: [NamedChannel("outbox")], "'outbox' is already provided by"),
    ],
)
def test_a_broken_channel_plugin_is_named_and_skipped(
    build: Build, caplog: pytest.LogCaptureFixture, answer: Callable[[], Any], problem: str
) -> None:
    with caplog.at_level(logging.WARNING):
        pm, _ = build(named={"acme-gateway": ChannelsPlugin(answer)})
    assert "acme-gateway" in caplog.text and problem in caplog.text
    assert send_to_mei(pm)["status"] == "sent"  # the host keeps working, through the outbox


def test_strict_plugins_turn_a_broken_plugin_into_an_error(
    build: Build, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONDEMAND_STRICT_PLUGINS", "1")
    with pytest.raises(OnDemandError) as refused:
        build(named={"acme-gateway": ChannelsPlugin(lambda: [NamedChannel("outbox")])})
    assert refused.value.code == "plugin_error"
    assert "acme-gateway" in refused.value.message
    assert "ONDEMAND_STRICT_PLUGINS" in refused.value.message


def test_a_valid_third_party_channel_can_carry_a_mode(build: Build) -> None:
    sent: list[OutboundMessage] = []

    class Recording(NamedChannel):
        def deliver(self, message: OutboundMessage) -> DeliveryReceipt:
            sent.append(message)
            return DeliveryReceipt(status="queued", provider_message_id="acme-1")

    pm, _ = build(
        named={"acme-gateway": ChannelsPlugin(lambda: [Recording("acme")])},
        channels={"text": "acme"},
    )
    result = send_to_mei(pm)
    assert result["status"] == "sent"
    assert [message.to for message in sent] == ["+15035550123"]


class Observers:
    """One plugin's view of every kind of ondemand_notification_sent implementation."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl(wrapper=True)
    def ondemand_notification_sent(self, result: dict[str, Any], context: Any) -> Any:
        self.seen.append(f"wrapper before {result['status']}")
        outcome = yield
        self.seen.append("wrapper after")
        return outcome


class OldStyleWrapper:
    def __init__(self, seen: list[str]) -> None:
        self.seen = seen

    @hookimpl(hookwrapper=True)
    def ondemand_notification_sent(self, result: dict[str, Any], context: Any) -> Any:
        self.seen.append("hookwrapper before")
        yield
        self.seen.append("hookwrapper after")


class PlainObserver:
    def __init__(self, seen: list[str], fails: bool = False) -> None:
        self.seen = seen
        self.fails = fails

    @hookimpl
    def ondemand_notification_sent(self, result: dict[str, Any], context: Any) -> None:
        self.seen.append(f"{type(self).__name__} {'fails' if self.fails else 'sees'}")
        if self.fails:
            raise KeyError(result["to"])


class FailingObserver(PlainObserver):
    pass


def test_wrappers_and_observers_of_sent_notifications_all_run_in_one_hook_call(
    build: Build, caplog: pytest.LogCaptureFixture
) -> None:
    observers = Observers()
    seen = observers.seen
    pm, _ = build(
        PlainObserver(seen),
        named={"audit-trail": FailingObserver(seen, fails=True), "timing": OldStyleWrapper(seen)},
    )
    pm.register(observers, name="metrics")
    calls: list[str] = []
    undo = pm.add_hookcall_monitoring(
        lambda name, impls, kwargs: calls.append(name), lambda *_: None
    )
    try:
        with caplog.at_level(logging.WARNING):
            assert send_to_mei(pm)["status"] == "sent"
    finally:
        undo()
    assert seen == [
        "wrapper before sent",
        "hookwrapper before",
        "FailingObserver fails",
        "PlainObserver sees",
        "hookwrapper after",
        "wrapper after",
    ]
    assert calls.count("ondemand_notification_sent") == 1
    assert "audit-trail: its ondemand_notification_sent hook raised KeyError" in caplog.text
    assert "+1503" not in caplog.text  # the observer's exception quoted the address


def test_under_strict_plugins_an_observer_that_raises_is_an_error(
    build: Build, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    pm, _ = build(named={"audit-trail": FailingObserver(seen, fails=True)})
    monkeypatch.setenv("ONDEMAND_STRICT_PLUGINS", "1")
    with pytest.raises(OnDemandError) as refused:
        send_to_mei(pm)
    assert refused.value.code == "plugin_error"
    assert "audit-trail" in refused.value.message


class Misspelled:
    @hookimpl
    def ondemand_delivery_channel(self, config: dict[str, Any]) -> list[Any]:
        return [NamedChannel("acme")]


def test_under_strict_plugins_a_misspelled_hook_is_an_error_naming_the_plugin(
    build: Build, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONDEMAND_STRICT_PLUGINS", "1")
    with pytest.raises(OnDemandError) as refused:
        build(named={"acme-gateway": Misspelled()})
    assert refused.value.code == "plugin_error"
    message = refused.value.message
    assert "acme-gateway" in message
    assert "ondemand_delivery_channel (did you mean ondemand_delivery_channels?)" in message


def test_without_strict_plugins_a_misspelled_hook_does_not_stop_the_host(build: Build) -> None:
    pm, _ = build(named={"acme-gateway": Misspelled()})
    assert send_to_mei(pm)["status"] == "sent"
