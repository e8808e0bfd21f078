"""Start and stop of a plugin manager's plugins."""

from __future__ import annotations

import pluggy

from hookspecs._markers import hookspec


@hookspec(historic=True)
def pm_configure(plugin_manager: pluggy.PluginManager) -> None:
    """Called by the host once its plugins are registered.

    Historic: a plugin registered later is configured too. A plugin registers here its
    per-manager state, so that several managers in one process share nothing.

    Example::

        pm.hook.pm_configure.call_historic(kwargs={"plugin_manager": pm})
    """


@hookspec
def pm_unconfigure(plugin_manager: pluggy.PluginManager) -> None:
    """Called by the host on shutdown: plugins close their stores and connections.

    Example::

        pm.hook.pm_unconfigure(plugin_manager=pm)
    """
