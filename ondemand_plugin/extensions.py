"""Loading the plugins of the ``pm`` entry-point group one by one, for hosts: ``load_plugins(pm)``
names a plugin whose import fails with its distribution and carries on without it
(``SkippedPlugin``). The machinery is internal (``ondemand_plugin.boundary.extensions``)."""

from __future__ import annotations

from ondemand_plugin.boundary.extensions import SkippedPlugin, load_plugins

__all__ = ["SkippedPlugin", "load_plugins"]
