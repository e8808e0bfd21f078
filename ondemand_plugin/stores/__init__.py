"""Storage, chosen by the database URL's scheme: one store (``sql_store.py``) on SQLite,
PostgreSQL or MariaDB/MySQL, whose differences live in a backend module each."""

from __future__ import annotations

from pathlib import Path

from ondemand_plugin.errors import ConfigError
from ondemand_plugin.stores.backend import Backend
from ondemand_plugin.stores.base import (
    AddonChange,
    Completion,
    ConsentChange,
    NotificationRecord,
    OptOut,
    Payment,
    Reply,
    Store,
    paid_amount,
)
from ondemand_plugin.stores.sql_store import SQLStore

__all__ = [
    "AddonChange",
    "Backend",
    "Completion",
    "ConsentChange",
    "NotificationRecord",
    "OptOut",
    "Payment",
    "Reply",
    "SQLStore",
    "Store",
    "backend_for",
    "open_store",
    "paid_amount",
]

SQLITE_SCHEME = "sqlite:///"
POSTGRESQL_SCHEMES = ("postgresql://", "postgres://")
MARIADB_SCHEMES = ("mysql://", "mariadb://")
SUPPORTED = (
    "sqlite:////absolute/path.db, postgresql://user@host:5432/database or "
    "mysql://user:password@host:3306/database"
)


def open_store(database_url: str) -> SQLStore:
    """Open (and migrate) the store a URL names: ``sqlite:////absolute/path.db``;
    ``postgresql://user@host:5432/database`` (``postgres://`` too), any libpq URL; or
    ``mysql://user:password@host:3306/database`` (``mariadb://`` too)."""
    return SQLStore(backend_for(database_url))


def backend_for(database_url: str) -> Backend:
    """The backend a URL names, not yet migrated or connected."""
    if database_url.startswith(SQLITE_SCHEME):
        from ondemand_plugin.stores.sqlite_backend import SQLiteBackend

        return SQLiteBackend(Path(database_url.removeprefix(SQLITE_SCHEME)))
    if database_url.startswith(POSTGRESQL_SCHEMES):
        # Imported here: installs without the extra do not have the driver, and need not. The
        # PostgreSQL extra brings two packages (psycopg and psycopg_pool): the one missing is
        # named.
        try:
            from ondemand_plugin.stores.postgresql_backend import PostgreSQLBackend
        except ImportError as error:
            raise _missing(error, "psycopg", "PostgreSQL", "postgresql") from None
        return PostgreSQLBackend(database_url)
    if database_url.startswith(MARIADB_SCHEMES):
        try:
            from ondemand_plugin.stores.mariadb_backend import MariaDBBackend
        except ImportError as error:
            raise _missing(error, "pymysql", "MariaDB or MySQL", "mysql") from None
        return MariaDBBackend(database_url)
    raise ConfigError(
        f"The database URL scheme of {database_url.split(':', 1)[0]!r} is not supported; "
        f"use {SUPPORTED}.",
        field="database_url",
    )


def _missing(error: ImportError, driver: str, database: str, extra: str) -> ConfigError:
    missing = (error.name or driver).partition(".")[0]
    return ConfigError(
        f"The database_url names a {database} database, but {missing} is not installed. "
        f"Install the {extra} extra: pip install 'ondemand-plugin[{extra}]'.",
        field="database_url",
    )
