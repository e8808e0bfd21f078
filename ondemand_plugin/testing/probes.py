"""What a test needs of the plugin beyond the hooks' answers: the add-on switched on, and a look
at what the plugin recorded, routed and runs with. Each takes the plugin manager that configured
the plugin, as the hooks do; one that did not is told how to.

    enable_addon(pm, "demo")                    # the add-on, by a test account manager
    store_of(pm).history("demo", "g-mei", None, 10)   # what was recorded
    run_recovery(pm, older_than_seconds=0)      # settle cut-short sends, as a worker's start does
    [c.name for c in channels_of(pm)["text"]]   # the text route, in failover order
    config_of(pm).send_window                   # the configuration it runs with
"""

from __future__ import annotations

import pluggy

from hookspecs.types import Channel
from ondemand_plugin.admin import AddonSwitch, switch_addon
from ondemand_plugin.boundary.config import Config
from ondemand_plugin.plugin import instance_of
from ondemand_plugin.stores import NotificationRecord, Store

TEST_ACCOUNT_MANAGER = "Test Account Manager"


def enable_addon(plugin_manager: pluggy.PluginManager, practice_id: str) -> AddonSwitch:
    """Switch the premium add-on on for the practice, at once, through
    ``ondemand_plugin.admin.switch_addon``; already on, nothing is recorded."""
    return switch_addon(
        plugin_manager, practice_id, enabled=True, by=TEST_ACCOUNT_MANAGER, reason="tests"
    )


def store_of(plugin_manager: pluggy.PluginManager) -> Store:
    """The plugin's store: the history, idempotency records, opt-outs and templates it keeps."""
    return instance_of(plugin_manager).store


def run_recovery(
    plugin_manager: pluggy.PluginManager, older_than_seconds: float | None = None
) -> list[NotificationRecord]:
    """Settle the sends cut short by a stopped worker, as a worker does when it starts (and
    ``ondemand recover``); answers them as they are now."""
    return instance_of(plugin_manager).recovery.run(older_than_seconds)


def channels_of(plugin_manager: pluggy.PluginManager) -> dict[str, tuple[Channel, ...]]:
    """Each mode's channels, in failover order, as the configuration routes them."""
    return dict(instance_of(plugin_manager).routes)


def config_of(plugin_manager: pluggy.PluginManager) -> Config:
    """The configuration the plugin runs with: the host's ``pm_plugin_config``, else the
    ``ONDEMAND_*`` environment, else the defaults."""
    return instance_of(plugin_manager).config
