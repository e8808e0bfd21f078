"""Extension plugins: a template store of a third party's, and broken plugins named and skipped
(or refused under ``ONDEMAND_STRICT_PLUGINS=1``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from conftest import CONTEXT, Build, send_to_mei

from hookspecs import DeliveryReceipt, OutboundMessage, Template, hookimpl
from ondemand_plugin import MANAGE_ACTION_ID
from ondemand_plugin.errors import OnDemandError

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
    built_in = pm.get_plugin("ondemand.instance").store
    assert built_in.list_templates("demo") == []
    assert send_to_mei(pm, template_id=created["id"], body=None)["body"] == "Hi"


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
