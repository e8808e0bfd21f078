"""A plugin manager built exactly as a host builds one: specs, host adapter, entry points."""

from __future__ import annotations

import pluggy

import hookspecs


def build_plugin_manager(host: object) -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    hookspecs.add_hookspecs(pm)
    pm.register(host, name="host")
    pm.load_setuptools_entrypoints(hookspecs.PROJECT_NAME)
    pm.hook.pm_configure.call_historic(kwargs={"plugin_manager": pm})
    return pm
