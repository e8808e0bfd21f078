"""The embedded SQLite store: its connections under a host's thread pools, and its URL."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from ondemand_plugin.errors import OnDemandError
from ondemand_plugin.stores import open_store
from ondemand_plugin.stores.sqlite_backend import SQLiteBackend


def test_connections_of_threads_that_ended_are_closed(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'ondemand.db'}")
    backend = store.backend
    assert isinstance(backend, SQLiteBackend)
    for _ in range(30):
        worker = threading.Thread(target=store.enabled_practices)
        worker.start()
        worker.join()
    store.enabled_practices()
    # This thread's, plus at most the last worker's, which no later thread has pruned yet.
    assert backend.open_connections() <= 2
    store.close()
    assert backend.open_connections() == 0


def test_an_unsupported_database_url_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(OnDemandError) as refused:
        open_store("oracle://localhost/ondemand")
    assert refused.value.code == "invalid_config"
    assert refused.value.field == "database_url"
