"""pytest fixtures for hosts and plugin authors (registered through the ``pytest11`` entry point).

- ``ondemand_host``: a ``ReferenceHost`` holding the demo practice, its plugin configuration
  pointing at a fresh SQLite file and outbox under ``tmp_path``, with no send window.
- ``ondemand_pm``: a plugin manager built from it exactly as a host builds one (entry points
  included), unconfigured at the end of the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pluggy
import pytest

from ondemand_plugin.boundary.config import ALL_DAY
from ondemand_plugin.boundary.manager import build_plugin_manager
from ondemand_plugin.commands.reference_host import ReferenceHost, demo_host


def ondemand_test_config(directory: Path) -> dict[str, Any]:
    return {
        "database_url": "sqlite:///" + str(directory / "ondemand.db"),
        "outbox_dir": str(directory / "outbox"),
        "send_window": ALL_DAY,
    }


@pytest.fixture
def ondemand_host(tmp_path: Path) -> ReferenceHost:
    return demo_host(ondemand_test_config(tmp_path))


@pytest.fixture
def ondemand_pm(ondemand_host: ReferenceHost) -> Iterator[pluggy.PluginManager]:
    pm = build_plugin_manager(ondemand_host)
    yield pm
    pm.hook.pm_unconfigure(plugin_manager=pm)
