"""Alembic's environment: the plugin hands it the connection it migrates, already locked."""

from __future__ import annotations

from alembic import context

from ondemand_plugin.stores.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most of a table: Alembic copies it instead ("batch" mode).
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
