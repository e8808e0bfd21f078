"""Schema versions on every backend: recorded, applied forward on start, once, even when many
workers start at the same moment on a database that has no schema yet."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import fresh_schema

from ondemand_plugin.clock import utc_now
from ondemand_plugin.errors import OnDemandError
from ondemand_plugin.stores import OptOut, open_store, postgres, sqlite

WORKERS = 8


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a database (PostgreSQL: a schema) no store has opened yet."""
    if request.param == "sqlite":
        yield "sqlite:///" + str(tmp_path / "ondemand.db")
        return
    with fresh_schema(request.getfixturevalue("postgres_server")) as url:
        yield url


def run_sql(url: str, *statements: str) -> list[tuple[Any, ...]]:
    """Run statements on the database directly, as an older plugin or an operator would."""
    rows: list[tuple[Any, ...]] = []
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
            for statement in statements:
                rows = connection.execute(statement).fetchall()
        return rows
    with psycopg.connect(url, autocommit=True) as connection:
        for statement in statements:
            cursor = connection.execute(statement.encode())
            rows = cursor.fetchall() if cursor.description else []
    return rows


def migrations_of(url: str) -> tuple[str, ...]:
    return sqlite.MIGRATIONS if url.startswith("sqlite:///") else postgres.MIGRATIONS


def test_the_schema_version_is_recorded_once_and_reopening_changes_nothing(
    empty_database: str,
) -> None:
    open_store(empty_database).close()
    open_store(empty_database).close()
    version = len(migrations_of(empty_database))
    assert run_sql(empty_database, "SELECT version FROM schema_version") == [(version,)]


def test_workers_starting_at_once_migrate_the_schema_exactly_once(empty_database: str) -> None:
    start = threading.Barrier(WORKERS)
    failures: list[BaseException] = []

    def start_worker() -> None:
        start.wait()
        try:
            open_store(empty_database).close()
        except BaseException as failure:
            failures.append(failure)

    workers = [threading.Thread(target=start_worker) for _ in range(WORKERS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)

    assert failures == []
    version = len(migrations_of(empty_database))
    assert run_sql(empty_database, "SELECT version FROM schema_version") == [(version,)]


def test_a_database_at_version_1_is_migrated_forward_keeping_its_rows(
    empty_database: str,
) -> None:
    first = migrations_of(empty_database)[0]
    run_sql(
        empty_database,
        *[statement for statement in first.split(";") if statement.strip()],
        "CREATE TABLE schema_version (version INTEGER NOT NULL)",
        "INSERT INTO schema_version VALUES (1)",
        "INSERT INTO addon_state (practice_id, enabled) VALUES ('pr1', TRUE)",
    )
    store = open_store(empty_database)
    try:
        assert store.enabled_practices() == frozenset({"pr1"})
        # Opt-outs came with version 2.
        store.set_opt_out(OptOut("pr1", "text", "+15035550123", True, "reply STOP", utc_now()))
        assert store.is_opted_out("pr1", "text", "+15035550123")
    finally:
        store.close()
    version = len(migrations_of(empty_database))
    assert run_sql(empty_database, "SELECT version FROM schema_version") == [(version,)]


def test_a_database_migrated_by_a_newer_plugin_is_refused_and_left_alone(
    empty_database: str,
) -> None:
    open_store(empty_database).close()
    newer = len(migrations_of(empty_database)) + 1
    run_sql(empty_database, f"UPDATE schema_version SET version = {newer}")
    with pytest.raises(OnDemandError) as refusal:
        open_store(empty_database)
    assert (refusal.value.code, refusal.value.field) == ("invalid_config", "database_url")
    assert "Upgrade the plugin" in refusal.value.message
    assert run_sql(empty_database, "SELECT version FROM schema_version") == [(newer,)]


def test_a_notification_claimed_before_routes_were_recorded_reads_without_one(
    empty_database: str,
) -> None:
    earlier = migrations_of(empty_database)[:2]
    run_sql(
        empty_database,
        *[statement for script in earlier for statement in script.split(";") if statement.strip()],
        "CREATE TABLE schema_version (version INTEGER NOT NULL)",
        "INSERT INTO schema_version VALUES (2)",
        "INSERT INTO notifications (id, practice_id, guarantor_id, idempotency_key, request_hash, "
        "occurred_at, mode, recipient, sent_to_type, sent_to_id, sent_to_name, sent_by_id, "
        "sent_by_name, status, status_changed_at, balance, payment_allowed, detail) VALUES "
        "('n1', 'pr1', 'g1', 'k1', 'h', '2026-01-01T10:00:00.000000Z', 'text', '+15035550123', "
        "'guarantor', 'g1', 'Mei Chen', 'u1', 'Amy Front', 'sending', "
        "'2026-01-01T10:00:00.000000Z', '1.00', TRUE, '')",
    )
    store = open_store(empty_database)
    try:
        found = store.notification_by_id("pr1", "n1")
        assert found is not None
        assert (found.status, found.route_channels, found.looked_up_at) == ("sending", None, None)
        [stuck] = store.sending_notifications(utc_now(), 10)
        assert stuck.id == "n1"
    finally:
        store.close()
