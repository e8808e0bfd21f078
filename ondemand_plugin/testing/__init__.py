"""Test kit for hosts and channel authors: a reference host and a plugin manager built as a host
builds one. Loaded by pytest through the ``pytest11`` entry point; see ``pytest_plugin``.

Channel authors subclass ``ondemand_plugin.testing.conformance.ChannelConformance`` (imported from
its module, so that this package does not need pytest at run time)."""

from ondemand_plugin.testing.host import ReferenceHost, demo_host, guarantor
from ondemand_plugin.testing.manager import build_plugin_manager

__all__ = ["ReferenceHost", "build_plugin_manager", "demo_host", "guarantor"]
