"""The schema's migrations (Alembic, ``migrations/``), applied forward under a lock per database.

Workers that start together on one database take turns: the first migrates, the others find the
work done. A database migrated by a newer release (a revision this one does not know) is refused
and left as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from ondemand_plugin.errors import ConfigError

SCRIPTS = "ondemand_plugin.stores:migrations"

# How a backend keeps two workers from migrating its database at once.
Lock = Callable[[sa.Connection], AbstractContextManager[None]]


def alembic_config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPTS)
    config.attributes["connection"] = connection
    return config


def scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def current_revisions(connection: sa.Connection) -> tuple[str, ...]:
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


def upgrade(engine: sa.Engine, lock: Lock, where: str) -> None:
    """Bring the database to this release's schema, once, even with many workers starting."""
    with engine.connect() as connection, lock(connection):
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
