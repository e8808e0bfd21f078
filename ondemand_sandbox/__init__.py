"""The reference host: a practice-management sandbox in the browser.

A small web application that integrates the On-Demand plugin the way a host should: it answers the
platform hooks from its own SQLite database (``adapter``), loads every plugin through the ``pm``
entry points (``host``), and renders only what the hooks return (``app``). It imports ``hookspecs``
and the plugin's public ``read_config_file``, never its other modules. ``ondemand sandbox`` runs it.
Its ``pm_plugin_config`` answers the configuration file it writes in its home folder
(``config_path``), which the ``ondemand`` command reads too.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette

from ondemand_sandbox.adapter import config_path
from ondemand_sandbox.app import create_app
from ondemand_sandbox.host import Sandbox

__all__ = ["Sandbox", "build_app", "config_path", "create_app", "serve"]


def build_app(home: Path, base_url: str) -> Starlette:
    """The application for a sandbox home folder; ``base_url`` is where browsers reach it."""
    return create_app(Sandbox(home, base_url))


def serve(home: Path, host: str, port: int) -> None:
    """Serve the sandbox with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(build_app(home, f"http://{host}:{port}"), host=host, port=port, log_level="warning")
