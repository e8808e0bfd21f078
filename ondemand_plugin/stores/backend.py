"""What a database backend gives the store: DBAPI connections, its SQLAlchemy dialect (to compile
the store's statements once), how it is migrated, and how its values are written and read.

The store's statements are SQLAlchemy Core, compiled once per dialect when the store opens and
run as plain SQL on the driver's connection. Through a Core ``Connection`` each statement costs
about twice as much on SQLite (24 to 31 µs against 11 to 16 µs measured for an indexed read and
an update, the compiled cache hitting), for result and type processing the store does not need:
its columns are plain text, numbers and the driver's own timestamps. Running on the driver's
connections also keeps each backend's connection handling as it was: one SQLite connection per
thread, and pools whose waits give ``store_unavailable`` within the outage limits.
"""

from __future__ import annotations

import json
import select
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ondemand_plugin.errors import ConfigError, OnDemandError
from ondemand_plugin.stores import migrate


class Backend:
    """A database the store runs on. Subclasses say how to connect, lock and convert values;
    the defaults here keep JSON as text."""

    # The statement that opens a transaction of several statements.
    begin = "BEGIN"
    where: str
    dialect: sa.Dialect

    def connection(self) -> AbstractContextManager[Any]:
        """A DBAPI connection in autocommit mode, for one call; its errors that mean the database
        cannot be used come out as ``StoreUnavailable``."""
        raise NotImplementedError

    def migrate(self) -> None:
        """Bring the schema up to date, under the backend's lock."""
        engine = self.engine()
        try:
            migrate.upgrade(engine, self.migration_lock, self.where)
        except sa.exc.OperationalError as error:
            raise self.unreachable(error.orig or error) from None
        finally:
            engine.dispose()

    def migration_lock(self, connection: sa.Connection) -> AbstractContextManager[None]:
        """Held while one worker migrates: the others wait, then find the work done."""
        raise NotImplementedError

    def unreachable(self, error: BaseException) -> OnDemandError:
        """The refusal when the database cannot be reached to migrate it."""
        return ConfigError(
            f"The On-Demand plugin cannot use its database, {self.where} ({first_line(error)}). "
            "Check database_url and that the server accepts connections.",
            field="database_url",
        )

    def open(self) -> None:
        """Ready the connections for use (after ``migrate``)."""

    def engine(self) -> sa.Engine:
        """An engine for Alembic (``ondemand db``), with no pool: it is used once and disposed."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    # Values as the driver takes and gives them.

    def to_time(self, moment: datetime) -> Any:
        return moment

    def from_time(self, value: Any) -> datetime:
        raise NotImplementedError

    def to_json(self, value: object) -> Any:
        return json.dumps(value)

    def from_json(self, value: Any) -> Any:
        return json.loads(value)

    def to_list(self, values: tuple[str, ...]) -> Any:
        return json.dumps(list(values))

    def from_list(self, value: Any) -> tuple[str, ...]:
        return tuple(json.loads(value))


def has_unread_data(fileno: int) -> bool:
    """Whether the server sent anything to an idle connection: nothing, unless it closed it (a
    restart, a failover, an idle timeout) or sent a notice. Checked before a pooled connection is
    used, with no round trip while it is healthy."""
    poll = select.poll()
    poll.register(fileno, select.POLLIN)
    return bool(poll.poll(0))


def first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
