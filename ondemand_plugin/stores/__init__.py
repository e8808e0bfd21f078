"""Storage backends, chosen by the database URL's scheme. Add a backend here."""

from __future__ import annotations

from pathlib import Path

from ondemand_plugin.errors import ConfigError
from ondemand_plugin.stores.base import (
    AddonChange,
    Completion,
    NotificationRecord,
    OptOut,
    Payment,
    Reply,
    Store,
    paid_amount,
)
from ondemand_plugin.stores.sqlite import SQLiteStore

__all__ = [
    "AddonChange",
    "Completion",
    "NotificationRecord",
    "OptOut",
    "Payment",
    "Reply",
    "SQLiteStore",
    "Store",
    "open_store",
    "paid_amount",
]


POSTGRESQL_SCHEMES = ("postgresql://", "postgres://")


def open_store(database_url: str) -> Store:
    """Open (and migrate) the store a URL names: ``sqlite:////absolute/path.db``, or
    ``postgresql://user@host:5432/database`` (``postgres://`` too), any libpq URL."""
    if database_url.startswith("sqlite:///"):
        return SQLiteStore(Path(database_url.removeprefix("sqlite:///")))
    if database_url.startswith(POSTGRESQL_SCHEMES):
        return _postgres_store(database_url)
    raise ConfigError(
        f"The database URL scheme of {database_url.split(':', 1)[0]!r} is not supported; "
        "use sqlite:////absolute/path.db or postgresql://user@host:5432/database.",
        field="database_url",
    )


def _postgres_store(database_url: str) -> Store:
    # Imported here: SQLite-only installs do not have psycopg, and need not. The extra brings
    # two packages (psycopg and psycopg_pool): the one missing is named.
    try:
        from ondemand_plugin.stores.postgres import PostgresStore
    except ImportError as error:
        missing = (error.name or "psycopg").partition(".")[0]
        raise ConfigError(
            f"The database_url names a PostgreSQL database, but {missing} is not installed. "
            "Install the PostgreSQL extra: pip install 'ondemand-plugin[postgresql]'.",
            field="database_url",
        ) from None
    return PostgresStore(database_url)
