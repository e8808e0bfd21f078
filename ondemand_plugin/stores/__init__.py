"""Storage backends, chosen by the database URL's scheme. Add a backend here."""

from __future__ import annotations

from pathlib import Path

from ondemand_plugin.errors import ConfigError
from ondemand_plugin.stores.base import (
    AddonChange,
    Completion,
    NotificationRecord,
    OptOut,
    Store,
)
from ondemand_plugin.stores.sqlite import SQLiteStore

__all__ = [
    "AddonChange",
    "Completion",
    "NotificationRecord",
    "OptOut",
    "SQLiteStore",
    "Store",
    "open_store",
]


def open_store(database_url: str) -> Store:
    """Open (and migrate) the store a URL names: ``sqlite:////absolute/path.db``."""
    if database_url.startswith("sqlite:///"):
        return SQLiteStore(Path(database_url.removeprefix("sqlite:///")))
    raise ConfigError(
        f"The database URL scheme of {database_url.split(':', 1)[0]!r} is not supported; "
        "use sqlite:////absolute/path.db.",
        field="database_url",
    )
