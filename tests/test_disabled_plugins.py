"""Plugins switched off by name: ``ONDEMAND_DISABLE_PLUGINS=name,name`` and the configuration's
``disabled_plugins``. Installed as a host finds them (a ``*.dist-info`` folder on the path)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pluggy
import pytest
import test_plugin_discovery
from conftest import send_to_mei
from test_cli import on_path, run_ondemand
from test_plugin_discovery import PIGEON, Install, build

import hookspecs
from ondemand_plugin.errors import ConfigError, OnDemandError
from ondemand_plugin.testing import build_plugin_manager, channels_of, demo_host, enable_addon

# The fake installs of test_plugin_discovery, as fixtures of this module too.
site = test_plugin_discovery.site
install = test_plugin_discovery.install
host_config = test_plugin_discovery.host_config
managers = test_plugin_discovery.managers

# A channel plugin that records each call of its hook, to show it is never asked.
CROW = """
from hookspecs import DeliveryReceipt, hookimpl

ASKED = []


class CrowChannel:
    name = "crow"
    modes = frozenset({"text"})

    def deliver(self, message):
        return DeliveryReceipt(status="sent", provider_message_id="crow-1")


@hookimpl
def ondemand_delivery_channels(config):
    ASKED.append(config)
    return [CrowChannel()]


@hookimpl
def ondemand_delivery_channel(config):  # misspelled: an error under ONDEMAND_STRICT_PLUGINS
    return []
"""


def names_of_channels(pm: pluggy.PluginManager) -> set[str]:
    return {channel.name for route in channels_of(pm).values() for channel in route}


def host_built_by_hand(config: dict[str, object]) -> pluggy.PluginManager:
    """A host wired as the README shows, with pluggy's own ``load_setuptools_entrypoints``."""
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    hookspecs.add_hookspecs(pm)
    pm.register(demo_host(config), name="host")
    pm.load_setuptools_entrypoints(hookspecs.PROJECT_NAME)
    pm.hook.pm_configure.call_historic(kwargs={"plugin_manager": pm})
    enable_addon(pm, "demo")
    return pm


def test_a_plugin_named_in_the_variable_is_never_imported(
    install: Install,
    host_config: dict[str, object],
    managers: list[pluggy.PluginManager],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    install("pigeon-channel", "9.9.1", PIGEON)
    install("crow-channel", "0.3.0", CROW)
    monkeypatch.setenv("ONDEMAND_DISABLE_PLUGINS", " crow , ")
    pm = build({**host_config, "channels": {"text": "pigeon"}}, managers)
    assert "crow_channel" not in sys.modules
    assert pm.is_blocked("crow") and pm.get_plugin("crow") is None
    assert names_of_channels(pm) >= {"pigeon"} and "crow" not in names_of_channels(pm)
    assert send_to_mei(pm)["detail"].startswith("Accepted by pigeon")


def test_a_plugin_named_in_the_configuration_is_switched_off_before_it_is_asked_anything(
    install: Install,
    host_config: dict[str, object],
    managers: list[pluggy.PluginManager],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    install("crow-channel", "0.3.0", CROW)
    # Its misspelled hook would stop a strict start: a disabled plugin is not checked either.
    monkeypatch.setenv("ONDEMAND_STRICT_PLUGINS", "1")
    pm = host_built_by_hand({**host_config, "disabled_plugins": ["crow"]})
    managers.append(pm)
    crow = sys.modules["crow_channel"]  # the host's pluggy imported it; it is switched off
    assert pm.is_blocked("crow") and not pm.is_registered(crow)
    assert crow.ASKED == []
    assert "crow" not in names_of_channels(pm)
    assert send_to_mei(pm)["status"] == "sent"


def test_load_plugins_reads_the_hosts_disabled_plugins_and_never_imports_them(
    install: Install,
    host_config: dict[str, object],
    managers: list[pluggy.PluginManager],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    install("crow-channel", "0.3.0", CROW)
    monkeypatch.setenv("ONDEMAND_STRICT_PLUGINS", "1")
    pm = build({**host_config, "disabled_plugins": ["crow"]}, managers)
    assert "crow_channel" not in sys.modules
    assert pm.is_blocked("crow")
    assert send_to_mei(pm)["status"] == "sent"


# A plugin that configures itself per manager, as On-Demand does.
OWL = """
from hookspecs import hookimpl

CONFIGURED = []


@hookimpl
def pm_configure(plugin_manager):
    CONFIGURED.append(plugin_manager)
"""


def test_a_disabled_plugin_loaded_before_on_demand_is_not_configured_either(
    install: Install, host_config: dict[str, object], managers: list[pluggy.PluginManager]
) -> None:
    install("owl-channel", "1.0.0", OWL)  # first on the path: registered before On-Demand
    pm = host_built_by_hand({**host_config, "disabled_plugins": ["owl"]})
    managers.append(pm)
    assert pm.is_blocked("owl")
    assert sys.modules["owl_channel"].CONFIGURED == []


def test_a_route_to_a_disabled_plugins_channel_is_an_error_at_start(
    install: Install, host_config: dict[str, object], managers: list[pluggy.PluginManager]
) -> None:
    install("crow-channel", "0.3.0", CROW)
    config = {**host_config, "channels": {"text": "crow"}, "disabled_plugins": ["crow"]}
    with pytest.raises(OnDemandError) as refused:
        build(config, managers)
    assert refused.value.field == "channels.text"
    assert "disabled_plugins: crow; if its plugin is one of them, enable it again" in (
        refused.value.message
    )


def test_a_built_in_channel_can_be_switched_off_by_its_plugins_name(
    host_config: dict[str, object], managers: list[pluggy.PluginManager]
) -> None:
    config = {
        **host_config,
        "webhook": {"url": "https://hooks.example/ondemand", "secret": "s" * 16},
        "disabled_plugins": ["ondemand_plugin.channels.webhook"],
    }
    pm = build_plugin_manager(demo_host(config))
    managers.append(pm)
    assert pm.is_blocked("ondemand_plugin.channels.webhook")
    assert "webhook" not in {
        channel.name
        for answer in pm.hook.ondemand_delivery_channels(config=config)
        for channel in answer
    }


@pytest.mark.parametrize("where", ["variable", "configuration"])
def test_the_on_demand_plugin_itself_cannot_be_disabled(
    where: str,
    host_config: dict[str, object],
    managers: list[pluggy.PluginManager],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = dict(host_config)
    if where == "variable":
        monkeypatch.setenv("ONDEMAND_DISABLE_PLUGINS", "pigeon,ondemand")
    else:
        config["disabled_plugins"] = ["ondemand"]
    with pytest.raises(ConfigError) as refused:
        build(config, managers)
    assert refused.value.field == "disabled_plugins"
    assert "'ondemand', the On-Demand plugin itself" in refused.value.message
    assert "ondemand addon disable" in refused.value.message


def test_a_name_no_plugin_has_is_warned_of_as_a_likely_misspelling(
    host_config: dict[str, object],
    managers: list[pluggy.PluginManager],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        build({**host_config, "disabled_plugins": ["pigoen"]}, managers)
    assert "disabled_plugins names 'pigoen', but no plugin of that name is installed" in (
        caplog.text
    )


def test_disabled_plugins_must_be_a_list_of_names(
    host_config: dict[str, object], managers: list[pluggy.PluginManager]
) -> None:
    with pytest.raises(ConfigError) as refused:
        build({**host_config, "disabled_plugins": "crow"}, managers)
    assert refused.value.field == "disabled_plugins"
    assert "disabled_plugins must be of type array" in refused.value.message


def test_plugins_lists_a_disabled_plugin_as_disabled_with_its_distribution(
    install: Install, site: Path, tmp_path: Path
) -> None:
    install("pigeon-channel", "9.9.1", PIGEON)
    install("crow-channel", "0.3.0", CROW)
    config = tmp_path / "ondemand.json"
    config.write_text(json.dumps({"disabled_plugins": ["crow"]}), encoding="utf-8")
    env = {**on_path(site), "ONDEMAND_DISABLE_PLUGINS": "pigeon,pigoen"}

    result = run_ondemand("--config", str(config), "plugins", "--json", home=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    plugins = {plugin["name"]: plugin for plugin in json.loads(result.stdout)["plugins"]}
    assert plugins["crow"] == {
        "name": "crow",
        "distribution": "crow-channel",
        "version": "0.3.0",
        "hooks": [],
        "channels": [],
        "status": "disabled",
    }
    assert plugins["pigeon"]["status"] == "disabled"
    assert plugins["pigoen"]["status"].startswith("disabled, but no plugin of this name")
    assert plugins["ondemand"]["status"] == "active"
    channels = {channel["name"] for channel in json.loads(result.stdout)["channels"]}
    assert not channels & {"crow", "pigeon"}

    text = run_ondemand("--config", str(config), "plugins", home=tmp_path, env=env)
    assert "crow 0.3.0 (crow-channel): disabled" in text.stdout


def test_disabling_nothing_changes_nothing(
    install: Install, host_config: dict[str, object], managers: list[pluggy.PluginManager]
) -> None:
    install("pigeon-channel", "9.9.1", PIGEON)
    pm = build({**host_config, "channels": {"text": "pigeon"}, "disabled_plugins": []}, managers)
    assert send_to_mei(pm)["detail"].startswith("Accepted by pigeon")
