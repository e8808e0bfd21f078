"""The shared store for many workers on many machines: PostgreSQL (psycopg 3) through a pool."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import Json
from psycopg_pool import ConnectionPool, PoolTimeout
from sqlalchemy.engine.interfaces import BindTyping
from sqlalchemy.pool import NullPool

from ondemand_plugin.errors import ConfigError, StoreUnavailable
from ondemand_plugin.stores.backend import Backend, first_line, has_unread_data

POOL_MAX_SIZE = 10
CONNECT_TIMEOUT_SECONDS = 10
# How long a request waits for a pooled connection before it is refused (store_unavailable): when
# the database is away, the dialog and a send say so within 2 seconds instead of hanging.
POOL_TIMEOUT_SECONDS = 1.5
# A pool's own attempts to connect while the database is away: each gives up after this long
# (their slots are then free), and the next request starts a new one. So the pool comes back within
# seconds of the database, however long it was away.
RECONNECT_SECONDS = 5.0


class PostgreSQLBackend(Backend):
    def __init__(self, url: str) -> None:
        self.url = url
        self.where = f"PostgreSQL at {_server_description(url)}"
        self.dialect = self._compiling_dialect()
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = None

    @staticmethod
    def _compiling_dialect() -> sa.Dialect:
        dialect = sa.create_engine("postgresql+psycopg://", paramstyle="pyformat").dialect
        # The statements run on psycopg directly, with its own adaptation of each value: no
        # "::VARCHAR" casts around the parameters.
        dialect.bind_typing = BindTyping.NONE
        return dialect

    def engine(self) -> sa.Engine:
        # The libpq URL as it is (search_path in options, sslmode, ...), under psycopg 3.
        return sa.create_engine(
            "postgresql+psycopg://",
            poolclass=NullPool,
            creator=lambda: psycopg.connect(self.url, connect_timeout=_connect_timeout(self.url)),
        )

    def open(self) -> None:
        self._pool = ConnectionPool(
            self.url,
            min_size=1,
            max_size=POOL_MAX_SIZE,
            timeout=POOL_TIMEOUT_SECONDS,
            reconnect_timeout=RECONNECT_SECONDS,
            kwargs={"autocommit": True, "connect_timeout": _connect_timeout(self.url)},
            check=_check_idle_connection,
            open=True,
            name="ondemand",
        )

    @contextmanager
    def migration_lock(self, connection: sa.Connection) -> Iterator[None]:
        schema = connection.exec_driver_sql("SELECT current_schema()").scalar()
        if schema is None:
            raise ConfigError(
                f"The schema that database_url's search_path names does not exist in "
                f"{self.where}. Create it (CREATE SCHEMA ...) or name an existing one.",
                field="database_url",
            )
        # Held until the migration's transaction ends: workers that start together migrate
        # one at a time, and each one after the first finds the work done.
        connection.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtext('ondemand_plugin migrations ' || :s))"),
            {"s": schema},
        )
        yield

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        assert self._pool is not None, "the store opens its backend first"
        try:
            with self._pool.connection() as connection:
                yield connection
        except (PoolTimeout, psycopg.OperationalError) as error:
            raise StoreUnavailable(self.where, first_line(error)) from error

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()

    def from_time(self, value: Any) -> datetime:
        moment: datetime = value.astimezone(UTC)
        return moment

    def to_json(self, value: object) -> Any:
        return Json(value)

    def from_json(self, value: Any) -> Any:
        return value

    def to_list(self, values: tuple[str, ...]) -> Any:
        return list(values)

    def from_list(self, value: Any) -> tuple[str, ...]:
        return tuple(value)


def _check_idle_connection(connection: psycopg.Connection[Any]) -> None:
    """A pooled connection's check before use: asked only when the server sent something."""
    if connection.closed:
        raise psycopg.OperationalError("the connection is closed")
    if has_unread_data(connection.fileno()):
        ConnectionPool.check_connection(connection)


def _connect_timeout(url: str) -> int:
    """The URL's connect_timeout, else ours: libpq's default waits as long as the network does,
    and a pool's attempt that hangs keeps it from coming back when the database does."""
    given = conninfo_to_dict(url).get("connect_timeout")
    return int(given) if given is not None else CONNECT_TIMEOUT_SECONDS


def _server_description(url: str) -> str:
    """Where the URL points, without its password: for errors and repr."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        raise ConfigError(
            "The database_url is not a PostgreSQL URL libpq can read; use "
            "postgresql://user@host:5432/database.",
            field="database_url",
        ) from None
    return f"{parts.get('host', 'localhost')}:{parts.get('port', 5432)}/{parts.get('dbname', '')}"
