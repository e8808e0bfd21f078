"""MariaDB or MySQL (PyMySQL) through a pool, for platforms that run on one already."""

from __future__ import annotations

import select
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pymysql
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool, QueuePool

from ondemand_plugin.errors import ConfigError, StoreUnavailable
from ondemand_plugin.stores.backend import Backend, first_line, has_unread_data

POOL_MAX_SIZE = 10
# How long a request waits for a pooled connection, and a new connection for the server's
# greeting, before it is refused (store_unavailable): within 2 seconds when the database is away.
POOL_TIMEOUT_SECONDS = 1.5
CONNECT_TIMEOUT_SECONDS = 1.5
# How long migrating workers wait for the one that migrates.
MIGRATION_LOCK_SECONDS = 300
# Errors that say the server cannot be used (gone, unreachable, a lock not granted in time), as
# against a mistake in a statement.
_UNAVAILABLE = (pymysql.err.OperationalError, pymysql.err.InterfaceError, sa.exc.TimeoutError)


class MariaDBBackend(Backend):
    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        self._login: dict[str, Any] = {
            "host": parsed.host or "localhost",
            "port": parsed.port or 3306,
            "user": parsed.username or "root",
            "password": parsed.password or "",
            "database": parsed.database,
            "charset": "utf8mb4",
        }
        if not parsed.database:
            raise ConfigError(
                "The database_url names no MariaDB database; use "
                "mysql://user:password@host:3306/database.",
                field="database_url",
            )
        self.where = f"MariaDB at {self._login['host']}:{self._login['port']}/{parsed.database}"
        # SQLAlchemy's "mysql" dialect for both schemes: it speaks to MariaDB too, and the
        # tables' MariaDB types are given for it.
        self._sqlalchemy_url = parsed.set(drivername="mysql+pymysql")
        self.dialect = sa.create_engine("mysql+pymysql://", paramstyle="pyformat").dialect
        self._pool = QueuePool(
            self._connect,
            pool_size=POOL_MAX_SIZE,
            max_overflow=0,
            timeout=POOL_TIMEOUT_SECONDS,
            # Every statement commits on its own (autocommit); a transaction of several ends
            # with COMMIT or ROLLBACK before the connection goes back.
            reset_on_return=None,
        )
        event.listen(self._pool, "checkout", _check_idle_connection)

    def _connect(self) -> Any:
        """A new connection, given up on when the server does not greet it in time: PyMySQL's
        connect_timeout covers only the TCP connection, and a server that accepted it but
        answers nothing (a network black hole) would keep a request waiting forever."""
        address = (self._login["host"], self._login["port"])
        try:
            sock = socket.create_connection(address, CONNECT_TIMEOUT_SECONDS)
        except OSError as error:
            raise pymysql.err.OperationalError(2003, f"cannot connect: {error}") from error
        # The server speaks first (its greeting).
        if not select.select([sock], [], [], CONNECT_TIMEOUT_SECONDS)[0]:
            sock.close()
            raise pymysql.err.OperationalError(2013, "the server did not answer in time")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection = pymysql.connect(**self._login, autocommit=True, defer_connect=True)
        connection.connect(sock)
        return connection

    def engine(self) -> sa.Engine:
        return sa.create_engine(self._sqlalchemy_url, poolclass=NullPool)

    @contextmanager
    def migration_lock(self, connection: sa.Connection) -> Iterator[None]:
        # MariaDB commits each DDL statement on its own: a named lock, held by this session,
        # keeps the other workers out until the whole migration is done.
        name = "CONCAT('ondemand_plugin:', LEFT(SHA1(DATABASE()), 40))"
        granted = connection.exec_driver_sql(
            f"SELECT GET_LOCK({name}, {MIGRATION_LOCK_SECONDS})"
        ).scalar()
        if granted != 1:
            raise StoreUnavailable(self.where, "another worker's migration did not end in time")
        try:
            yield
        finally:
            connection.exec_driver_sql(f"SELECT RELEASE_LOCK({name})")

    @contextmanager
    def connection(self) -> Iterator[Any]:
        try:
            pooled = self._pool.connect()
        except _UNAVAILABLE as error:
            raise StoreUnavailable(self.where, first_line(error)) from error
        try:
            yield pooled
        except _UNAVAILABLE as error:
            # The connection may be broken: the pool opens a new one in its place.
            pooled.invalidate()
            raise StoreUnavailable(self.where, first_line(error)) from error
        finally:
            pooled.close()

    def close(self) -> None:
        self._pool.dispose()

    def to_time(self, moment: datetime) -> Any:
        # DATETIME has no time zone: the store keeps UTC.
        return moment.astimezone(UTC).replace(tzinfo=None)

    def from_time(self, value: Any) -> datetime:
        moment: datetime = value.replace(tzinfo=UTC)
        return moment


def _check_idle_connection(connection: Any, record: object, proxy: object) -> None:
    """A pooled connection's check before use, with no round trip while it is healthy: only
    when the server sent something (it closed the connection) is it pinged, and a dead one is
    replaced before use."""
    socket = connection._sock  # PyMySQL has no public accessor for it.
    if socket is None:
        raise sa.exc.DisconnectionError("the connection is closed")
    if has_unread_data(socket.fileno()):
        try:
            connection.ping(reconnect=False)
        except pymysql.err.Error as error:
            raise sa.exc.DisconnectionError(first_line(error)) from error
