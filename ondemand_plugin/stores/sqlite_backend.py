"""The embedded default: one SQLite file in WAL mode, one connection per thread."""

from __future__ import annotations

import fcntl
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from ondemand_plugin.clock import format_timestamp, parse_timestamp
from ondemand_plugin.errors import StoreUnavailable
from ondemand_plugin.stores.backend import Backend

# How long a statement waits for another process's write lock before it is refused.
LOCK_TIMEOUT_SECONDS = 30.0
# The database cannot be used just now (its file or folder gone, the disk failing or full, a lock
# held past the timeout), as against a mistake in a statement: the first are store_unavailable.
_UNAVAILABLE = {
    sqlite3.SQLITE_BUSY,
    sqlite3.SQLITE_LOCKED,
    sqlite3.SQLITE_READONLY,
    sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_FULL,
    sqlite3.SQLITE_CANTOPEN,
}


def _is_unavailable(error: sqlite3.Error) -> bool:
    # The primary result code is the low byte (SQLITE_IOERR_WRITE is an SQLITE_IOERR); errors the
    # sqlite3 module raises itself carry none.
    code = getattr(error, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in _UNAVAILABLE


class SQLiteBackend(Backend):
    # Takes the write lock at once: a transaction that reads first and writes later would
    # otherwise fail, not wait, when another writer came in between.
    begin = "BEGIN IMMEDIATE"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = f"SQLite at {path}"
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connections: dict[threading.Thread, sqlite3.Connection] = {}
        self._connections_lock = threading.Lock()
        # sqlite3 takes ":name" parameters from a dict.
        self.dialect = sa.create_engine("sqlite://", paramstyle="named").dialect

    def engine(self) -> sa.Engine:
        return sa.create_engine(
            f"sqlite:///{self.path}",
            poolclass=NullPool,
            connect_args={"timeout": LOCK_TIMEOUT_SECONDS},
        )

    def unreachable(self, error: BaseException) -> StoreUnavailable:
        return StoreUnavailable(self.where, str(error))

    @contextmanager
    def migration_lock(self, connection: sa.Connection) -> Iterator[None]:
        # A file beside the database: SQLite's own locks do not span Alembic's several
        # transactions.
        with open(self.path.with_name(self.path.name + ".migration-lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        try:
            if connection is None:
                connection = self._open()
            yield connection
        except sqlite3.Error as error:
            if _is_unavailable(error):
                raise StoreUnavailable(self.where, str(error)) from error
            raise

    def sqlite_connection(self) -> sqlite3.Connection:
        """This thread's connection (for tests that trace its statements)."""
        with self.connection() as connection:
            return connection

    def _open(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self.path, timeout=LOCK_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
        )
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA foreign_keys=ON")
        self._local.connection = connection
        with self._connections_lock:
            self._close_connections_of_ended_threads()
            self._connections[threading.current_thread()] = connection
        return connection

    def _close_connections_of_ended_threads(self) -> None:
        """Hosts run requests on pools whose threads come and go: a connection per thread that
        ever ran would pile up open files."""
        for thread in [thread for thread in self._connections if not thread.is_alive()]:
            self._connections.pop(thread).close()

    def open_connections(self) -> int:
        with self._connections_lock:
            return len(self._connections)

    def close(self) -> None:
        with self._connections_lock:
            for connection in self._connections.values():
                connection.close()
            self._connections.clear()
        self._local = threading.local()

    def to_time(self, moment: datetime) -> Any:
        return format_timestamp(moment)

    def from_time(self, value: Any) -> datetime:
        return parse_timestamp(value)
