"""Test kit for hosts and plugin authors: a reference host, a plugin manager built as a host
builds one, probes of what the plugin recorded (``probes``), and conformance suites to subclass in
a pytest module: ``ChannelConformance`` (a channel), ``TemplateStoreConformance`` (a template
store) and ``HostConformance`` (a host's adapter). Loaded by pytest through the ``pytest11``
entry point; see ``pytest_plugin``.

The suites are imported when first named, so that this package needs pytest only in tests."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ondemand_plugin.boundary.manager import build_plugin_manager
from ondemand_plugin.commands.reference_host import ReferenceHost, demo_host, guarantor
from ondemand_plugin.testing.probes import (
    channels_of,
    config_of,
    enable_addon,
    run_recovery,
    store_of,
)

if TYPE_CHECKING:
    from ondemand_plugin.testing.conformance import ChannelConformance
    from ondemand_plugin.testing.host_conformance import HostConformance
    from ondemand_plugin.testing.template_store_conformance import TemplateStoreConformance

_SUITES = {
    "ChannelConformance": "ondemand_plugin.testing.conformance",
    "HostConformance": "ondemand_plugin.testing.host_conformance",
    "TemplateStoreConformance": "ondemand_plugin.testing.template_store_conformance",
}

__all__ = [
    "ChannelConformance",
    "HostConformance",
    "ReferenceHost",
    "TemplateStoreConformance",
    "build_plugin_manager",
    "channels_of",
    "config_of",
    "demo_host",
    "enable_addon",
    "guarantor",
    "run_recovery",
    "store_of",
]


def __getattr__(name: str) -> Any:
    module = _SUITES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
