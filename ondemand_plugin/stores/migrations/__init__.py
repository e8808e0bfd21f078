"""The schema's Alembic revisions, shipped with the plugin and applied at start (``migrate.py``)."""
