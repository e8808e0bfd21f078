"""The plugin's configuration, for hosts and the command line: ``read_config_file(path)`` reads the
settings of ``pm_plugin_config`` from a JSON or TOML file. Everything else about configuration is
internal (``ondemand_plugin.boundary.config``)."""

from __future__ import annotations

from ondemand_plugin.boundary.config import ALL_DAY, CONFIG_FILE_VARIABLE, read_config_file

__all__ = ["ALL_DAY", "CONFIG_FILE_VARIABLE", "read_config_file"]
