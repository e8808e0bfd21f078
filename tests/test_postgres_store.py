"""The PostgreSQL store's own concerns: its URL, its errors, and its history index."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest

from ondemand_plugin.clock import format_timestamp, utc_now
from ondemand_plugin.errors import OnDemandError
from ondemand_plugin.stores import SQLStore, open_store


@pytest.fixture
def store(postgres_url: str) -> Iterator[SQLStore]:
    opened = open_store(postgres_url + "&application_name=ondemand-store-test")
    assert isinstance(opened, SQLStore)
    yield opened
    opened.close()


def refusal_of(url: str) -> OnDemandError:
    with pytest.raises(OnDemandError) as refusal:
        open_store(url)
    assert (refusal.value.code, refusal.value.field) == ("invalid_config", "database_url")
    return refusal.value


def test_postgres_is_accepted_as_the_scheme_too(postgres_url: str) -> None:
    store = open_store(postgres_url.replace("postgresql://", "postgres://", 1))
    assert isinstance(store, SQLStore)
    store.close()


def test_without_psycopg_a_postgresql_url_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An install without the extra: the driver cannot be imported.
    monkeypatch.setitem(sys.modules, "psycopg", None)
    monkeypatch.delitem(sys.modules, "ondemand_plugin.stores.postgresql_backend", raising=False)
    refusal = refusal_of("postgresql://db.example.com/ondemand")
    assert "psycopg is not installed" in refusal.message
    assert "pip install 'ondemand-plugin[postgresql]'" in refusal.message


def test_without_the_pool_a_postgresql_url_names_it_and_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # psycopg installed on its own, without psycopg_pool, which the extra also brings.
    monkeypatch.setitem(sys.modules, "psycopg_pool", None)
    monkeypatch.delitem(sys.modules, "ondemand_plugin.stores.postgresql_backend", raising=False)
    refusal = refusal_of("postgresql://db.example.com/ondemand")
    assert "psycopg_pool is not installed" in refusal.message
    assert "pip install 'ondemand-plugin[postgresql]'" in refusal.message


def test_a_schema_that_does_not_exist_is_named_as_the_problem(postgres_server: str) -> None:
    refusal = refusal_of(f"{postgres_server}?options=-csearch_path%3Dondemand_no_such_schema")
    assert "CREATE SCHEMA" in refusal.message


def test_a_server_that_does_not_answer_is_refused_without_the_password() -> None:
    # Port 1 on loopback: nothing listens there, so the connection is refused at once.
    refusal = refusal_of("postgresql://ondemand:s3cret-pass@127.0.0.1:1/ondemand")
    assert "127.0.0.1:1/ondemand" in refusal.message
    assert "s3cret-pass" not in refusal.message


def test_the_repr_names_the_server_but_not_the_password(store: SQLStore) -> None:
    assert "127.0.0.1" in repr(store) or "localhost" in repr(store)
    assert "password" not in repr(store)


def many_notifications(connection: psycopg.Connection[tuple[object, ...]]) -> None:
    """20,000 sends of two practices to four guarantors at eight addresses, a second apart."""
    connection.execute(
        "INSERT INTO notifications (id, practice_id, guarantor_id, idempotency_key, "
        "request_hash, occurred_at, mode, recipient, sent_to_type, sent_to_id, sent_to_name, "
        "sent_by_id, sent_by_name, status, status_changed_at, balance, payment_allowed, "
        "detail) SELECT 'n' || n, 'pr' || (n % 2), 'g' || (n % 4), 'key-' || n, 'h', "
        "now() - n * interval '1 second', 'text', '+1503555012' || (n % 8), 'guarantor', 'g', "
        "'Mei', 'u1', 'Amy', 'sent', now(), '1.00', true, '' FROM generate_series(1, 20000) AS n"
    )
    connection.execute("ANALYZE notifications")


def test_history_pages_are_read_off_the_history_index_without_sorting(
    store: SQLStore, postgres_url: str
) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        # A guarantor with many entries among others': where a sort would cost, as it must not.
        many_notifications(connection)
        first = {"practice_id": "pr1", "guarantor_id": "g1", "limit": 20}
        plans = [
            connection.execute(b"EXPLAIN " + store.sql("history").encode(), first),
            connection.execute(
                b"EXPLAIN " + store.sql("history_before").encode(),
                {**first, "occurred_at": utc_now(), "id": "n100"},
            ),
        ]
        for plan in plans:
            text = "\n".join(row[0] for row in plan)
            assert "Index Scan using notifications_history" in text, text
            assert "Sort" not in text, text

    # And the store reads through that very query.
    page = store.history("pr1", "g1", None, 3)
    assert len(page) == 3
    older = store.history("pr1", "g1", (format_timestamp(page[-1].occurred_at), page[-1].id), 3)
    assert older[0].occurred_at < page[-1].occurred_at


def test_reply_pages_are_read_off_their_history_index_without_sorting(
    store: SQLStore, postgres_url: str
) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        many_notifications(connection)
        # A reply to each notification, a second after it.
        connection.execute(
            "INSERT INTO patient_replies (id, practice_id, guarantor_id, notification_id, "
            "channel, sender, address, text, occurred_at) SELECT 'r' || n, practice_id, "
            "guarantor_id, id, 'twilio_sms', '+15035550101', recipient, 'ok', "
            "occurred_at + interval '1 second' FROM notifications "
            "JOIN generate_series(1, 20000) AS n ON id = 'n' || n"
        )
        connection.execute("ANALYZE patient_replies")
        first = {"practice_id": "pr1", "guarantor_id": "g1", "limit": 20}
        for name, parameters in (
            ("reply_history", first),
            ("reply_history_before", {**first, "occurred_at": utc_now(), "id": "r100"}),
        ):
            plan = connection.execute(b"EXPLAIN " + store.sql(name).encode(), parameters)
            text = "\n".join(row[0] for row in plan)
            assert "Index Scan using patient_replies_history" in text, text
            assert "Sort" not in text, text

    page = store.reply_history("pr1", "g1", None, 3)
    assert [reply.notification_id for reply in page] == ["n1", "n5", "n9"]  # newest first
    older = store.reply_history(
        "pr1", "g1", (format_timestamp(page[-1].occurred_at), page[-1].id), 3
    )
    assert older[0].occurred_at < page[-1].occurred_at


def test_connections_the_server_closed_are_replaced_without_failing_a_call(
    store: SQLStore, postgres_server: str
) -> None:
    store.enabled_practices()
    # What a server restart or failover does to the pool's idle connections.
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        ended = [
            pid
            for pid, terminated in admin.execute(
                "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'ondemand-store-test'"
            ).fetchall()
            if terminated
        ]
        assert ended
        # pg_terminate_backend only signals: wait until those backends have ended, as after a
        # restart.
        while admin.execute(
            "SELECT 1 FROM pg_stat_activity WHERE pid = ANY(%s)", (ended,)
        ).fetchall():
            time.sleep(0.01)
    assert store.enabled_practices() == frozenset()


def test_pacing_and_the_audit_read_ranges_off_their_indexes(
    store: SQLStore, postgres_url: str
) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        many_notifications(connection)
        hour_ago = utc_now() - timedelta(hours=1)
        recent = {"practice_id": "pr1", "since": hour_ago}
        for name, parameters, index in (
            ("notifications_to", {**recent, "address": "+15035550121"}, "notifications_pacing"),
            (
                "notifications_between",
                {**recent, "start": hour_ago, "end": utc_now()},
                "notifications_audit",
            ),
            (
                "consent_changes",
                {**recent, "start": hour_ago, "end": utc_now()},
                "consent_changes_practice",
            ),
        ):
            plan = connection.execute(b"EXPLAIN " + store.sql(name).encode(), parameters)
            text = "\n".join(row[0] for row in plan)
            # An index scan ("using" the index) or a bitmap one ("on" it), never the table's.
            assert re.search(rf"Index Scan (using|on) {index} ", text), text
            # (A span of many rows the planner may gather by bitmap and sort: its choice.)
            assert "Seq Scan" not in text, text
