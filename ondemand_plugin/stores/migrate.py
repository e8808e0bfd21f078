"""The schema's migrations (Alembic, ``migrations/``), applied forward under a lock per database.

Workers that start together on one database take turns: the first migrates, the others find the
work done. A database migrated by a newer release (a revision this one does not know) is refused
and left as it is. A worker whose database is already at ``HEAD`` finds so in one query and never
imports Alembic: a worker's start stays short.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

import sqlalchemy as sa

from ondemand_plugin.errors import ConfigError

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

SCRIPTS = "ondemand_plugin.stores:migrations"
# The newest revision in migrations/versions/ (a test keeps the two together).
HEAD = "0004"

# How a backend keeps two workers from migrating its database at once.
Lock = Callable[[sa.Connection], AbstractContextManager[None]]


def alembic_config(connection: sa.Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", SCRIPTS)
    config.attributes["connection"] = connection
    return config


def scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def current_revisions(connection: sa.Connection) -> tuple[str, ...]:
    from alembic.runtime.migration import MigrationContext

    return tuple(MigrationContext.configure(connection).get_current_heads())


def refuse_unknown(revisions: tuple[str, ...], where: str) -> None:
    known = {script.revision for script in scripts().walk_revisions()}
    unknown = [revision for revision in revisions if revision not in known]
    if unknown:
        raise ConfigError(
            f"The database at {where} was migrated by a newer release of the plugin "
            f"(schema revision {', '.join(unknown)}, which this one does not know). "
            "Upgrade the plugin on this worker.",
            field="database_url",
        )


def at_head(connection: sa.Connection) -> bool:
    """Whether the database is at this release's revision, in one query (no reflection)."""
    try:
        found = connection.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    except sa.exc.DBAPIError:
        connection.rollback()  # no such table: the database has no revision yet
        return False
    connection.rollback()
    return [row[0] for row in found] == [HEAD]


def upgrade(engine: sa.Engine, lock: Lock, where: str) -> None:
    """Bring the database to this release's schema, once, even with many workers starting."""
    with engine.connect() as connection:
        if at_head(connection):
            return
        from alembic import command

        with lock(connection):
            revisions = current_revisions(connection)
            refuse_unknown(revisions, where)
            if set(revisions) != set(scripts().get_heads()):
                command.upgrade(alembic_config(connection), "head")
            connection.commit()


def current(engine: sa.Engine) -> tuple[str, ...]:
    """The revisions the database is at (none before its first migration)."""
    with engine.connect() as connection:
        return current_revisions(connection)


def history() -> list[tuple[str, str, bool]]:
    """Every revision this release knows, oldest first: (revision, what it does, is head)."""
    known = scripts()
    heads = set(known.get_heads())
    return [
        (script.revision, script.doc, script.revision in heads)
        for script in reversed(list(known.walk_revisions()))
    ]
