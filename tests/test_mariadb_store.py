"""The MariaDB store's own concerns: its URL, its errors, its connections and its history index."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import urlsplit

import pymysql
import pytest
from conftest import _mariadb_login

from ondemand_plugin.clock import format_timestamp, utc_now
from ondemand_plugin.errors import OnDemandError
from ondemand_plugin.stores import SQLStore, open_store


@pytest.fixture
def store(mariadb_url: str) -> Iterator[SQLStore]:
    opened = open_store(mariadb_url)
    yield opened
    opened.close()


def server(url: str) -> pymysql.Connection[pymysql.cursors.Cursor]:
    return pymysql.connect(
        **_mariadb_login(url), database=urlsplit(url).path.lstrip("/"), autocommit=True
    )


def refusal_of(url: str) -> OnDemandError:
    with pytest.raises(OnDemandError) as refusal:
        open_store(url)
    assert (refusal.value.code, refusal.value.field) == ("invalid_config", "database_url")
    return refusal.value


def test_mariadb_is_accepted_as_the_scheme_too(mariadb_url: str) -> None:
    store = open_store(mariadb_url.replace("mysql://", "mariadb://", 1))
    assert store.enabled_practices() == frozenset()
    store.close()


def test_without_pymysql_a_mysql_url_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "pymysql", None)
    monkeypatch.delitem(sys.modules, "ondemand_plugin.stores.mariadb_backend", raising=False)
    refusal = refusal_of("mysql://db.example.com/ondemand")
    assert "pymysql is not installed" in refusal.message
    assert "pip install 'ondemand-plugin[mysql]'" in refusal.message


def test_a_url_without_a_database_is_refused() -> None:
    assert "names no MariaDB database" in refusal_of("mysql://root@127.0.0.1:3306/").message


def test_a_server_that_does_not_answer_is_refused_without_the_password() -> None:
    refusal = refusal_of("mysql://ondemand:s3cret-pass@127.0.0.1:1/ondemand")
    assert "127.0.0.1:1/ondemand" in refusal.message
    assert "s3cret-pass" not in refusal.message


def test_the_repr_names_the_server_but_not_the_password(store: SQLStore) -> None:
    assert "127.0.0.1" in repr(store) and "password" not in repr(store)


def many_notifications(cursor: pymysql.cursors.Cursor) -> None:
    """20,000 sends of two practices to four guarantors at eight addresses, a second apart."""
    cursor.execute(
        "INSERT INTO notifications (id, practice_id, guarantor_id, idempotency_key, "
        "request_hash, occurred_at, mode, recipient, sent_to_type, sent_to_id, sent_to_name, "
        "sent_by_id, sent_by_name, status, status_changed_at, balance, payment_allowed, "
        "detail) SELECT CONCAT('n', seq), CONCAT('pr', seq % 2), CONCAT('g', seq % 4), "
        "CONCAT('key-', seq), 'h', NOW(6) - INTERVAL seq SECOND, 'text', "
        "CONCAT('+1503555012', seq % 8), 'guarantor', 'g', 'Mei', 'u1', 'Amy', 'sent', NOW(6), "
        "'1.00', TRUE, '' FROM seq_1_to_20000"
    )
    cursor.execute("ANALYZE TABLE notifications")


def test_history_pages_are_read_off_the_history_index_without_sorting(
    store: SQLStore, mariadb_url: str
) -> None:
    with server(mariadb_url) as connection:
        cursor = connection.cursor()
        # A guarantor with many entries among others': where a sort would cost, as it must not.
        many_notifications(cursor)
        first = {"practice_id": "pr1", "guarantor_id": "g1", "limit": 20}
        # A page far down the history: read from the cursor on (a range), not from the top.
        deep_in_history = (utc_now() - timedelta(seconds=15_000)).replace(tzinfo=None)
        plans = []
        for name, parameters in (
            ("history", first),
            (
                "history_before",
                {**first, "occurred_at": deep_in_history, "id": "n15000"},
            ),
        ):
            cursor.execute("EXPLAIN " + store.sql(name), parameters)
            columns = [column[0] for column in cursor.description]
            plans += [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    for plan in plans:
        assert plan["key"] == "notifications_history", plan
        assert "filesort" not in (plan["Extra"] or ""), plan
    assert plans[1]["type"] == "range", plans[1]

    page = store.history("pr1", "g1", None, 3)
    assert len(page) == 3
    older = store.history("pr1", "g1", (format_timestamp(page[-1].occurred_at), page[-1].id), 3)
    assert older[0].occurred_at < page[-1].occurred_at


def test_reply_pages_are_read_off_their_history_index_without_sorting(
    store: SQLStore, mariadb_url: str
) -> None:
    with server(mariadb_url) as connection:
        cursor = connection.cursor()
        many_notifications(cursor)
        # A reply to each notification, a second after it.
        cursor.execute(
            "INSERT INTO patient_replies (id, practice_id, guarantor_id, notification_id, "
            "channel, sender, address, text, occurred_at) SELECT CONCAT('r', SUBSTRING(id, 2)), "
            "practice_id, guarantor_id, id, 'twilio_sms', '+15035550101', recipient, 'ok', "
            "occurred_at + INTERVAL 1 SECOND FROM notifications"
        )
        cursor.execute("ANALYZE TABLE patient_replies")
        first = {"practice_id": "pr1", "guarantor_id": "g1", "limit": 20}
        deep_in_history = (utc_now() - timedelta(seconds=15_000)).replace(tzinfo=None)
        plans = []
        for name, parameters in (
            ("reply_history", first),
            ("reply_history_before", {**first, "occurred_at": deep_in_history, "id": "r15000"}),
        ):
            cursor.execute("EXPLAIN " + store.sql(name), parameters)
            columns = [column[0] for column in cursor.description]
            plans.append([dict(zip(columns, row, strict=True)) for row in cursor.fetchall()])
    for plan in plans:
        [replies] = [row for row in plan if row["table"] == "patient_replies"]
        assert replies["key"] == "patient_replies_history", plan
        assert all("filesort" not in (row["Extra"] or "") for row in plan), plan
    [deep] = [row for row in plans[1] if row["table"] == "patient_replies"]
    assert deep["type"] == "range", plans[1]

    page = store.reply_history("pr1", "g1", None, 3)
    assert len(page) == 3 and page[0].text == "ok"
    older = store.reply_history(
        "pr1", "g1", (format_timestamp(page[-1].occurred_at), page[-1].id), 3
    )
    assert older[0].occurred_at < page[-1].occurred_at


def test_connections_the_server_closed_are_replaced_without_failing_a_call(
    store: SQLStore, mariadb_url: str
) -> None:
    store.enabled_practices()
    # What a server restart or failover does to the pool's idle connections.
    with server(mariadb_url) as admin:
        cursor = admin.cursor()
        cursor.execute(
            "SELECT id FROM information_schema.processlist "
            "WHERE db = DATABASE() AND id <> CONNECTION_ID()"
        )
        ended = [row[0] for row in cursor.fetchall()]
        assert ended
        for connection_id in ended:
            cursor.execute(f"KILL {int(connection_id)}")
    assert store.enabled_practices() == frozenset()


def test_pacing_and_the_audit_read_ranges_off_their_indexes(
    store: SQLStore, mariadb_url: str
) -> None:
    with server(mariadb_url) as connection:
        cursor = connection.cursor()
        many_notifications(cursor)
        hour_ago = (utc_now() - timedelta(hours=1)).replace(tzinfo=None)
        span = {"practice_id": "pr1", "start": hour_ago, "end": utc_now().replace(tzinfo=None)}
        for name, parameters, index in (
            (
                "notifications_to",
                {"practice_id": "pr1", "address": "+15035550121", "since": hour_ago},
                "notifications_pacing",
            ),
            ("notifications_between", span, "notifications_audit"),
            ("consent_changes", span, "consent_changes_practice"),
        ):
            cursor.execute("EXPLAIN " + store.sql(name), parameters)
            columns = [column[0] for column in cursor.description]
            [plan] = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
            assert plan["key"] == index, plan
            assert plan["type"] == "range", plan
            assert "filesort" not in (plan["Extra"] or ""), plan
