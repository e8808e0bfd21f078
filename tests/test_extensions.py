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
