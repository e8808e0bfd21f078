"""Test kit for hosts and channel authors: a reference host, a plugin manager built as a host
builds one, and probes of what the plugin recorded (``probes``). Loaded by pytest through the
``pytest11`` entry point; see ``pytest_plugin``.

Channel authors subclass ``ondemand_plugin.testing.conformance.ChannelConformance`` (imported from
its module, so that this package does not need pytest at run time)."""

from ondemand_plugin.testing.host import ReferenceHost, demo_host, guarantor
from ondemand_plugin.testing.manager import build_plugin_manager
from ondemand_plugin.testing.probes import (
    channels_of,
    config_of,
    enable_addon,
    run_recovery,
    store_of,
)

__all__ = [
    "ReferenceHost",
    "build_plugin_manager",
    "channels_of",
    "config_of",
    "demo_host",
    "enable_addon",
    "guarantor",
    "run_recovery",
    "store_of",
]
