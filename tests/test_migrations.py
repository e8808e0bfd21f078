"""Schema revisions on every backend (Alembic): recorded, applied forward on start, once, even
when many workers start at the same moment on a database that has no schema yet; a database of a
newer release refused; a database of the releases before Alembic adopted with every row."""

from __future__ import annotations

import multiprocessing
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs
import psycopg
import pymysql
import pytest
import sqlalchemy as sa
from conftest import _mariadb_login, fresh_mariadb_database, fresh_schema

from ondemand_plugin.errors import OnDemandError
from ondemand_plugin.stores import (
    AddonChange,
    ConsentChange,
    OptOut,
    Reply,
    backend_for,
    migrate,
    open_store,
    schema,
)
from ondemand_plugin.stores.migrate import history

WORKERS = 8
SPAWN = multiprocessing.get_context("spawn")
PRE_ALEMBIC = Path(__file__).with_name("fixtures") / "pre_alembic"
HEAD = [revision for revision, _, head in history() if head]


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a database (PostgreSQL: a schema) no store has opened yet."""
    if request.param == "sqlite":
        yield "sqlite:///" + str(tmp_path / "ondemand.db")
    elif request.param == "postgresql":
        with fresh_schema(request.getfixturevalue("postgres_server")) as url:
            yield url
    else:
        with fresh_mariadb_database(request.getfixturevalue("mariadb_server")) as url:
            yield url


def run_sql(url: str, *statements: str) -> list[tuple[Any, ...]]:
    """Run statements on the database directly, as an older plugin or an operator would."""
    rows: list[tuple[Any, ...]] = []
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
            for statement in statements:
                if statement.startswith("SELECT"):
                    rows = connection.execute(statement).fetchall()
                else:
                    # Whole scripts, as sqlite3 runs them (not split on ";").
                    connection.executescript(statement)
        return rows
    if url.startswith("postgresql://"):
        with psycopg.connect(url, autocommit=True) as connection:
            for statement in statements:
                cursor = connection.execute(statement.encode())
                rows = cursor.fetchall() if cursor.description else []
        return rows
    login = _mariadb_login(url)
    database = urlsplit(url).path.lstrip("/")
    with pymysql.connect(**login, database=database, autocommit=True) as connection:
        cursor = connection.cursor()
        for statement in statements:
            cursor.execute(statement)
            rows = list(cursor.fetchall())
    return rows


def revisions(url: str) -> list[tuple[Any, ...]]:
    return run_sql(url, "SELECT version_num FROM alembic_version")


def test_head_names_the_newest_revision_of_the_migrations_shipped() -> None:
    # A worker compares its database with HEAD before it would import Alembic at all.
    assert HEAD == [migrate.HEAD]


def test_the_revision_is_recorded_once_and_reopening_changes_nothing(empty_database: str) -> None:
    open_store(empty_database).close()
    open_store(empty_database).close()
    assert revisions(empty_database) == [(revision,) for revision in HEAD]


def start_worker(database_url: str, start: Any, failures: Any) -> None:
    start.wait()
    try:
        open_store(database_url).close()
    except BaseException as failure:
        failures.put(repr(failure))
        raise


def test_workers_starting_at_once_migrate_the_schema_exactly_once(empty_database: str) -> None:
    start = SPAWN.Barrier(WORKERS)
    failures = SPAWN.Queue()
    workers = [
        SPAWN.Process(target=start_worker, args=(empty_database, start, failures))
        for _ in range(WORKERS)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)

    assert [worker.exitcode for worker in workers] == [0] * WORKERS
    assert failures.empty()
    assert revisions(empty_database) == [(revision,) for revision in HEAD]
    # One schema: the adoption marker written once, and the tables usable.
    assert run_sql(empty_database, "SELECT version FROM schema_version") == [(6,)]
    store = open_store(empty_database)
    try:
        assert store.enabled_practices() == frozenset()
    finally:
        store.close()


def test_the_migrated_schema_is_the_one_schema_py_describes(empty_database: str) -> None:
    # Each revision keeps a frozen copy of what it adds; this keeps their sum equal to the
    # newest shape the store's statements are written for.
    open_store(empty_database).close()
    engine = backend_for(empty_database).engine()
    try:
        inspector = sa.inspect(engine)
        migrated = set(inspector.get_table_names()) - {"alembic_version", "schema_version"}
        assert migrated == set(schema.metadata.tables)
        for table in schema.metadata.sorted_tables:
            columns = {
                column["name"]: column["nullable"] for column in inspector.get_columns(table.name)
            }
            assert columns == {column.name: column.nullable for column in table.columns}, table.name
            primary_key = inspector.get_pk_constraint(table.name)["constrained_columns"]
            assert primary_key == [column.name for column in table.primary_key], table.name
            indexes = {index["name"] for index in inspector.get_indexes(table.name)}
            assert indexes == {index.name for index in table.indexes}, table.name
    finally:
        engine.dispose()


def test_a_database_migrated_by_a_newer_plugin_is_refused_and_left_alone(
    empty_database: str,
) -> None:
    open_store(empty_database).close()
    run_sql(empty_database, "UPDATE alembic_version SET version_num = 'f00dfeed'")
    with pytest.raises(OnDemandError) as refusal:
        open_store(empty_database)
    assert (refusal.value.code, refusal.value.field) == ("invalid_config", "database_url")
    assert "newer release" in refusal.value.message and "f00dfeed" in refusal.value.message
    assert "Upgrade the plugin" in refusal.value.message
    assert revisions(empty_database) == [("f00dfeed",)]


# Databases of the releases before Alembic: their migrations, as they shipped, in fixtures/.

MOMENT = datetime(2026, 1, 1, 10, 0, 0, 123456, tzinfo=UTC)
STAMP = "'2026-01-01T10:00:00.123456Z'"
TRUE = {"sqlite": "1", "postgresql": "TRUE"}


def pre_alembic_database(url: str, backend: str, version: int) -> None:
    """Today's schema at ``version`` as the earlier release built it, with its version
    recorded as it recorded it."""
    scripts = [
        (PRE_ALEMBIC / f"{backend}_{number}.sql").read_text(encoding="utf-8")
        for number in range(1, version + 1)
    ]
    run_sql(
        url,
        *scripts,
        "CREATE TABLE schema_version (version INTEGER NOT NULL)",
        f"INSERT INTO schema_version VALUES ({version})",
    )


def rows_of_version_5(backend: str) -> list[str]:
    true = TRUE[backend]
    channels = '\'["dawdling", "outbox"]\'' if backend == "sqlite" else "'{dawdling,outbox}'"
    return [
        "INSERT INTO addon_changes (practice_id, enabled, changed_by, reason, changed_at) "
        f"VALUES ('pr1', {true}, 'Ann Manager', 'signed up', {STAMP})",
        f"INSERT INTO addon_state (practice_id, enabled) VALUES ('pr1', {true})",
        "INSERT INTO templates (practice_id, id, label, mode, active, sender_email, subject, "
        f"body, updated_at) VALUES ('pr1', 'tpl_1', 'Reminder', 'email', {true}, "
        f"'billing@example.com', 'Your balance', 'You owe {{{{BalanceDue}}}}.', {STAMP})",
        "INSERT INTO notifications (id, practice_id, guarantor_id, idempotency_key, request_hash, "
        "occurred_at, mode, recipient, sent_to_type, sent_to_id, sent_to_name, sent_by_id, "
        "sent_by_name, status, status_changed_at, balance, payment_allowed, template_label, "
        "channel, provider_message_id, detail, result, route_channels, looked_up_at) VALUES "
        f"('n1', 'pr1', 'g1', 'k1', 'h1', {STAMP}, 'text', '+15035550123', 'guarantor', 'g1', "
        f"'Mei Chen', 'u1', 'Amy Front', 'delivered', {STAMP}, '120.50', {true}, 'Reminder', "
        f"'outbox', 'SM1', 'delivered', '{{\"accepted\": true}}', {channels}, {STAMP})",
        "INSERT INTO notifications (id, practice_id, guarantor_id, idempotency_key, request_hash, "
        "occurred_at, mode, recipient, sent_to_type, sent_to_id, sent_to_name, sent_by_id, "
        "sent_by_name, status, status_changed_at, balance, payment_allowed, detail) VALUES "
        f"('n2', 'pr1', 'g1', 'k2', 'h2', {STAMP}, 'text', '+15035550123', 'guarantor', 'g1', "
        f"'Mei Chen', 'u1', 'Amy Front', 'sending', {STAMP}, '120.50', {true}, '')",
        "INSERT INTO opt_outs (practice_id, mode, address, opted_out, source, changed_at) "
        f"VALUES ('pr1', 'text', '+15035550123', {true}, 'reply STOP', {STAMP})",
        "INSERT INTO inbound_messages (channel, message_id, handled_at) "
        f"VALUES ('twilio_sms', 'SMin1', {STAMP})",
        "INSERT INTO replies (practice_id, channel, sender, address, text, occurred_at) "
        f"VALUES ('pr1', 'twilio_sms', 'Mei', '+15035550123', 'Thanks!', {STAMP})",
        # A reply from a number the practice never notified: it answers no notification.
        "INSERT INTO replies (practice_id, channel, sender, address, text, occurred_at) "
        f"VALUES ('pr1', 'twilio_sms', 'Mei', '+15035550999', 'Who is this?', {STAMP})",
    ]


def reply_to_n2(text: str) -> Reply:
    return Reply(
        id="",
        practice_id="pr1",
        guarantor_id="g1",
        notification_id="n2",
        channel="twilio_sms",
        sender="Mei",
        address="+15035550123",
        text=text,
        occurred_at=MOMENT,
        mode="text",
        answered_at=MOMENT,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def earlier_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """An empty database of a backend the releases before Alembic had, and its name."""
    if request.param == "sqlite":
        yield "sqlite:///" + str(tmp_path / "ondemand.db"), "sqlite"
        return
    with fresh_schema(request.getfixturevalue("postgres_server")) as url:
        yield url, "postgresql"


def test_a_database_of_the_last_release_before_alembic_is_adopted_keeping_every_row(
    earlier_database: tuple[str, str],
) -> None:
    url, backend = earlier_database
    pre_alembic_database(url, backend, 5)
    run_sql(url, *rows_of_version_5(backend))

    store = open_store(url)
    try:
        assert store.enabled_practices() == frozenset({"pr1"})
        assert store.addon_log("pr1") == [
            AddonChange("pr1", True, "Ann Manager", "signed up", MOMENT)
        ]
        [template] = store.list_templates("pr1")
        assert (template.id, template.label, template.subject, template.active) == (
            "tpl_1",
            "Reminder",
            "Your balance",
            True,
        )
        assert template.body == "You owe {{BalanceDue}}."
        done = store.notification_by_id("pr1", "n1")
        assert done is not None
        assert (done.status, done.channel, done.provider_message_id, done.result) == (
            "delivered",
            "outbox",
            "SM1",
            {"accepted": True},
        )
        assert (done.route_channels, done.looked_up_at, done.occurred_at) == (
            ("dawdling", "outbox"),
            MOMENT,
            MOMENT,
        )
        assert done.payment_allowed is True and done.template_label == "Reminder"
        [stuck] = store.sending_notifications(datetime.now(UTC), 10)
        assert (stuck.id, stuck.route_channels, stuck.result) == ("n2", None, None)
        assert [record.id for record in store.history("pr1", "g1", None, 10)] == ["n2", "n1"]
        assert store.notification_by_key("pr1", "k2") == stuck
        assert store.is_opted_out("pr1", "text", "+15035550123")
        assert store.inbound_message_seen("twilio_sms", "SMin1")
        # The reply now answers the latest notification to its number (n2, the tie broken by
        # id as the history orders them), in that guarantor's history.
        [kept] = store.reply_history("pr1", "g1", None, 10)
        assert attrs.evolve(kept, id="") == reply_to_n2("Thanks!")
        assert kept.id.startswith("rpl_")
        assert sorted(run_sql(url, "SELECT text, guarantor_id FROM patient_replies")) == [
            ("Thanks!", "g1"),
            ("Who is this?", None),
        ]
        # And it goes on working: the idempotency key still holds, new rows go in.
        holder = store.claim_notification(attrs.evolve(stuck, id="n3"))
        assert holder is not None and holder.id == "n2"
        store.record_reply(attrs.evolve(reply_to_n2("Again"), id="rpl_2"))
        assert len(store.reply_history("pr1", "g1", None, 10)) == 2
    finally:
        store.close()
    assert revisions(url) == [(revision,) for revision in HEAD]
    # A worker still on the earlier release now refuses this database ("newer than this
    # plugin's"), rather than migrating it again.
    assert run_sql(url, "SELECT version FROM schema_version") == [(6,)]


@pytest.mark.parametrize("version", [1, 2, 3, 4])
def test_a_database_at_an_earlier_numbered_version_is_migrated_forward_keeping_its_rows(
    earlier_database: tuple[str, str], version: int
) -> None:
    url, backend = earlier_database
    pre_alembic_database(url, backend, version)
    run_sql(url, f"INSERT INTO addon_state (practice_id, enabled) VALUES ('pr1', {TRUE[backend]})")
    store = open_store(url)
    try:
        assert store.enabled_practices() == frozenset({"pr1"})
        # Opt-outs came with version 2, inbound messages with 4, replies with 5.
        store.set_opt_out(OptOut("pr1", "text", "+15035550123", True, "reply STOP", MOMENT))
        assert store.is_opted_out("pr1", "text", "+15035550123")
        store.record_inbound_message("twilio_sms", "SMin1", MOMENT)
        assert store.inbound_message_seen("twilio_sms", "SMin1")
        store.record_reply(attrs.evolve(reply_to_n2("Hi"), id="rpl_1"))
        assert run_sql(url, "SELECT text FROM patient_replies") == [("Hi",)]
    finally:
        store.close()
    assert revisions(url) == [(revision,) for revision in HEAD]


def test_a_database_at_the_first_revision_gains_the_consent_ledger_keeping_its_rows(
    empty_database: str,
) -> None:
    from alembic import command

    engine = backend_for(empty_database).engine()
    try:
        with engine.connect() as connection:
            command.upgrade(migrate.alembic_config(connection), "0001")
            connection.commit()
    finally:
        engine.dispose()
    assert revisions(empty_database) == [("0001",)]
    # The first revision made its own tables, not the newer ones schema.py describes.
    assert "consent_changes" not in tables(empty_database)
    run_sql(empty_database, "INSERT INTO addon_state (practice_id, enabled) VALUES ('pr1', TRUE)")
    store = open_store(empty_database)
    try:
        assert store.enabled_practices() == frozenset({"pr1"})
        change = ConsentChange(
            "pr1", "text", "+15035550123", True, "reply", "twilio_sms", "STOP", None, MOMENT
        )
        store.record_consent_change(change)
        assert store.consent_changes("pr1", None, None) == [change]
    finally:
        store.close()
    assert revisions(empty_database) == [(revision,) for revision in HEAD]
    assert {"notifications_pacing", "notifications_audit"} <= indexes(empty_database)


def tables(url: str) -> set[str]:
    engine = backend_for(url).engine()
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def indexes(url: str) -> set[str]:
    engine = backend_for(url).engine()
    try:
        return {str(index["name"]) for index in sa.inspect(engine).get_indexes("notifications")}
    finally:
        engine.dispose()
