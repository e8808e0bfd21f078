"""A plugin manager built exactly as a host builds one: specs, host adapter, entry points (each
loaded on its own, so that one whose import fails is named and skipped), then pluggy's
``check_pending()``, so that a misspelled hook fails a plugin's tests instead of never running."""

from __future__ import annotations

import pluggy

import hookspecs
from ondemand_plugin.boundary.extensions import check_hooks, load_plugins


def build_plugin_manager(host: object) -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    hookspecs.add_hookspecs(pm)
    pm.register(host, name="host")
    load_plugins(pm)
    check_hooks(pm)
    pm.hook.pm_configure.call_historic(kwargs={"plugin_manager": pm})
    return pm
