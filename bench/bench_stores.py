"""The stores under load: sends per second, and the history panel's first page as history grows.

- Sends per second to the outbox, from 1, 2 and 4 worker processes (each its own plugin manager,
  as a host's workers are), on SQLite and on PostgreSQL.
- ``pm_history_entries`` (limit 20) for a guarantor with 1,000, 10,000 and 100,000 notifications
  and a patient's reply to one in ten (rows bulk-inserted, among as many of other guarantors), on
  both backends: it should not grow.

PostgreSQL runs in a schema of its own, dropped at the end, on the server named by --postgres-url,
else $ONDEMAND_TEST_POSTGRES_URL; without either, only SQLite is measured.

Run: python bench/bench_stores.py [--sends N] [--postgres-url URL]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
from _common import CONTEXT, database, send_text_to_mei

from ondemand_plugin.clock import format_timestamp, utc_now
from ondemand_plugin.testing import build_plugin_manager, demo_host, enable_addon

PROCESS_COUNTS = (1, 2, 4)
HISTORY_SIZES = (1_000, 10_000, 100_000)
HISTORY_CALLS = 300
SPAWN = multiprocessing.get_context("spawn")
BODY = ("x" * 200,)


def plugin_manager(database_url: str, folder: Path) -> Any:
    config = {"database_url": database_url, "outbox_dir": str(folder / "outbox")}
    return build_plugin_manager(
        demo_host({**config, "send_window": {"start": "00:00", "end": "24:00"}})
    )


def send_worker(database_url: str, folder: Path, sends: int, start: Any, done: Any) -> None:
    pm = plugin_manager(database_url, folder)
    worker = uuid.uuid4().hex
    for number in range(5):  # connections opened, validators compiled
        send_text_to_mei(pm, f"warm-{worker}-{number}")
    start.wait()
    for number in range(sends):
        send_text_to_mei(pm, f"{worker}-{number}")
    done.put(time.perf_counter())
    pm.hook.pm_unconfigure(plugin_manager=pm)


def sends_per_second(database_url: str, folder: Path, processes: int, sends: int) -> float:
    start = SPAWN.Barrier(processes + 1)
    done = SPAWN.Queue()
    workers = [
        SPAWN.Process(target=send_worker, args=(database_url, folder, sends, start, done))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    start.wait()
    began = time.perf_counter()
    ended = max(done.get(timeout=600) for _ in workers)
    for worker in workers:
        worker.join()
    return processes * sends / (ended - began)


def bare_commits_per_second(database_url: str, commits: int) -> float:
    """The baseline: one small insert-and-commit at a time, with nothing else around it."""
    if database_url.startswith("sqlite:///"):
        lite = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
        lite.execute("PRAGMA journal_mode=WAL")
        lite.execute("PRAGMA synchronous=NORMAL")
        lite.execute("CREATE TABLE bare (body TEXT)")
        return commits / timed(commits, lambda: lite.execute("INSERT INTO bare VALUES (?)", BODY))
    with psycopg.connect(database_url, autocommit=True) as server:
        server.execute("CREATE TABLE bare (body TEXT)")
        insert = "INSERT INTO bare VALUES (%s)"
        return commits / timed(commits, lambda: server.execute(insert, BODY))


def timed(calls: int, function: Callable[[], object]) -> float:
    began = time.perf_counter()
    for _ in range(calls):
        function()
    return time.perf_counter() - began


def history_rows(guarantor_id: str, count: int, offset: int) -> Iterator[tuple[Any, ...]]:
    now = utc_now()
    for number in range(offset, offset + count):
        moment = format_timestamp(now - timedelta(seconds=number))
        yield (
            *(f"n{number}", "demo", guarantor_id, f"key-{number}", "h", moment, "text"),
            *("+15035550123", "guarantor", guarantor_id, "Mei Chen", "u1", "Amy Front"),
            *("sent", moment, "120.50", 1, None, "outbox", None, "", None),
        )


def reply_rows(guarantor_id: str, count: int, offset: int) -> Iterator[tuple[Any, ...]]:
    """A reply to one notification in ten, half a second after it."""
    now = utc_now()
    for number in range(offset, offset + count, 10):
        moment = format_timestamp(now - timedelta(seconds=number - 0.5))
        yield (
            *(f"r{number}", "demo", guarantor_id, f"n{number}", "outbox", "+15035550101"),
            *("+15035550123", "Can I pay on Friday?", moment),
        )


REPLY_COLUMNS = (
    "id, practice_id, guarantor_id, notification_id, channel, sender, address, text, occurred_at"
)

INSERT = (
    "INSERT INTO notifications (id, practice_id, guarantor_id, idempotency_key, request_hash, "
    "occurred_at, mode, recipient, sent_to_type, sent_to_id, sent_to_name, sent_by_id, "
    "sent_by_name, status, status_changed_at, balance, payment_allowed, template_label, channel, "
    "provider_message_id, detail, result) VALUES ({})"
)


def fill_sqlite(database_url: str, entries: int) -> None:
    with sqlite3.connect(database_url.removeprefix("sqlite:///")) as connection:
        query = INSERT.format(", ".join("?" * 22))
        connection.executemany(query, history_rows("g-mei", entries, 0))
        connection.executemany(query, history_rows("g-other", entries, entries))
        replies = f"INSERT INTO patient_replies ({REPLY_COLUMNS}) VALUES ({', '.join('?' * 9)})"
        connection.executemany(replies, reply_rows("g-mei", entries, 0))
        connection.executemany(replies, reply_rows("g-other", entries, entries))


def fill_postgres(database_url: str, entries: int) -> None:
    with psycopg.connect(database_url) as connection, connection.cursor() as cursor:
        rows = [
            (*row[:16], bool(row[16]), *row[17:])
            for guarantor, offset in (("g-mei", 0), ("g-other", entries))
            for row in history_rows(guarantor, entries, offset)
        ]
        with cursor.copy(
            "COPY notifications (id, practice_id, guarantor_id, idempotency_key, request_hash, "
            "occurred_at, mode, recipient, sent_to_type, sent_to_id, sent_to_name, sent_by_id, "
            "sent_by_name, status, status_changed_at, balance, payment_allowed, template_label, "
            "channel, provider_message_id, detail, result) FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row(row)
        with cursor.copy(f"COPY patient_replies ({REPLY_COLUMNS}) FROM STDIN") as copy:
            for guarantor, offset in (("g-mei", 0), ("g-other", entries)):
                for row in reply_rows(guarantor, entries, offset):
                    copy.write_row(row)
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("ANALYZE notifications")
        connection.execute("ANALYZE patient_replies")


def first_page_ms(database_url: str, folder: Path, entries: int) -> tuple[float, float]:
    """Median and best time of the first page of 20, in milliseconds."""
    pm = plugin_manager(database_url, folder)  # creates the schema
    if database_url.startswith("sqlite:///"):
        fill_sqlite(database_url, entries)
    else:
        fill_postgres(database_url, entries)
    times = []
    for _ in range(HISTORY_CALLS):
        began = time.perf_counter()
        [page] = pm.hook.pm_history_entries(
            guarantor_id="g-mei", context=CONTEXT, before=None, limit=20
        )
        times.append(time.perf_counter() - began)
    assert len(page) == 20
    assert {entry["kind"] for entry in page} == {"on_demand_balance_notification", "patient_reply"}
    pm.hook.pm_unconfigure(plugin_manager=pm)
    return statistics.median(times) * 1e3, min(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sends", type=int, default=200, help="sends per process")
    parser.add_argument("--postgres-url", default=os.environ.get("ONDEMAND_TEST_POSTGRES_URL"))
    parser.add_argument("--dir", default=None, help="where SQLite files go (default: a temp dir)")
    arguments = parser.parse_args()
    backends = ["sqlite"] + (["postgresql"] if arguments.postgres_url else [])

    print("| Backend | Processes | Sends per second |")
    print("| --- | --- | --- |")
    with tempfile.TemporaryDirectory(dir=arguments.dir) as directory:
        folder = Path(directory)
        for backend in backends:
            with database(backend, folder, arguments.postgres_url) as url:
                bare = bare_commits_per_second(url, 10 * arguments.sends)
            print(f"| {backend}, bare insert-and-commit (baseline) | 1 | {bare:,.0f} |", flush=True)
            for processes in PROCESS_COUNTS:
                with database(backend, folder, arguments.postgres_url) as url:
                    pm = plugin_manager(url, folder)
                    enable_addon(pm, "demo")
                    pm.hook.pm_unconfigure(plugin_manager=pm)
                    rate = sends_per_second(url, folder, processes, arguments.sends)
                print(f"| {backend} | {processes} | {rate:,.0f} |", flush=True)

        print()
        print("| Backend | Guarantor's entries | First page of 20, median | Best |")
        print("| --- | --- | --- | --- |")
        for backend in backends:
            for entries in HISTORY_SIZES:
                with database(backend, folder, arguments.postgres_url) as url:
                    median, best = first_page_ms(url, folder, entries)
                print(f"| {backend} | {entries:,} | {median:.3f} ms | {best:.3f} ms |", flush=True)


if __name__ == "__main__":
    main()
