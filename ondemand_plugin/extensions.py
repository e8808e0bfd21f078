"""Calling extension plugins one by one, so that a broken one is named and skipped.

A plugin whose hook raises or answers something that breaks the contract is reported in a
warning naming it and its distribution, and the host keeps working. With
``ONDEMAND_STRICT_PLUGINS=1`` each of these is an error instead, for CI.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from typing import Any

import pluggy

from hookspecs.types import MODES, Channel
from ondemand_plugin.errors import PluginError

log = logging.getLogger(__name__)


def strict_plugins() -> bool:
    return os.environ.get("ONDEMAND_STRICT_PLUGINS", "") not in ("", "0")


def plugin_label(pm: pluggy.PluginManager, plugin: object) -> str:
    """``name`` with ``(provided by: dist version)`` when it came from an entry point."""
    name = pm.get_name(plugin) or repr(plugin)
    for loaded, dist in pm.list_plugin_distinfo():
        if loaded is plugin:
            return f"{name} (provided by: {dist.project_name} {dist.version})"
    return name


def report(pm: pluggy.PluginManager, plugin: object, problem: str) -> None:
    message = f"On-Demand plugin {plugin_label(pm, plugin)}: {problem}"
    if strict_plugins():
        raise PluginError(message + " (ONDEMAND_STRICT_PLUGINS is set).")
    log.warning("%s; it is skipped.", message)


def call_each(
    pm: pluggy.PluginManager, hook_name: str, kwargs: Mapping[str, Any]
) -> Iterator[tuple[object, Any]]:
    """Each implementation's answer, in pluggy's order; a raising one is reported and skipped."""
    for impl in reversed(getattr(pm.hook, hook_name).get_hookimpls()):
        try:
            answer = impl.function(*(kwargs[name] for name in impl.argnames))
        except Exception as error:
            report(pm, impl.plugin, f"its {hook_name} hook raised {type(error).__name__}: {error}")
            continue
        yield impl.plugin, answer


def collect_channels(pm: pluggy.PluginManager, config: Mapping[str, Any]) -> dict[str, Channel]:
    """Every valid channel, by name; a channel whose name is taken already is skipped."""
    return {name: channel for name, (channel, _plugin) in channels_with_owners(pm, config).items()}


def channels_with_owners(
    pm: pluggy.PluginManager, config: Mapping[str, Any]
) -> dict[str, tuple[Channel, object]]:
    """Every valid channel by name, with the plugin that provides it."""
    channels: dict[str, Channel] = {}
    owners: dict[str, object] = {}
    for plugin, answer in call_each(pm, "ondemand_delivery_channels", {"config": config}):
        if not isinstance(answer, list | tuple):
            report(pm, plugin, "ondemand_delivery_channels must return a list of channels")
            continue
        for channel in answer:
            problem = channel_problem(channel)
            if problem is None and channel.name in channels:
                problem = (
                    f"its channel {channel.name!r} is already provided by "
                    f"{plugin_label(pm, owners[channel.name])}"
                )
            if problem is not None:
                report(pm, plugin, problem)
                continue
            channels[channel.name] = channel
            owners[channel.name] = plugin
    return {name: (channel, owners[name]) for name, channel in channels.items()}


def channel_problem(channel: object) -> str | None:
    name = getattr(channel, "name", None)
    if not isinstance(name, str) or not name:
        return f"{channel!r} has no name"
    modes = getattr(channel, "modes", None)
    if not isinstance(modes, frozenset | set) or not modes or not modes <= set(MODES):
        return f"channel {name!r} must declare modes, a set drawn from {', '.join(MODES)}"
    if not callable(getattr(channel, "deliver", None)):
        return f"channel {name!r} has no deliver(message) method"
    return None
