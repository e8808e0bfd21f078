"""What the benchmarks share: the front desk's context, one send, and the timing rule."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pluggy
import psycopg

CONTEXT = {"practice_id": "demo", "user": {"id": "u1", "name": "Bench"}}
PATIENT = {"type": "patient", "id": "p-lily"}


def best_per_call(function: Callable[[], object], calls: int, rounds: int) -> float:
    """The fastest round's time per call, in seconds: the least disturbed by the machine."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            function()
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def send_text_to_mei(pm: pluggy.PluginManager, key: str) -> Any:
    """One text to the demo practice's Mei Chen, as the dialog's submit step sends it."""
    return pm.hook.pm_dashboard_action(
        action_id="ondemand.send_balance_notification",
        step="submit",
        subject=PATIENT,
        context=CONTEXT,
        payload={
            "guarantor_id": "g-mei",
            "send_to": {"entity": {"type": "guarantor", "id": "g-mei"}, "mode": "text"},
            "body": "Hi {{GuarantorFirstName}}, you owe {{BalanceDue}}: {{QuickPayLink}}",
            "idempotency_key": key,
        },
    )


@contextmanager
def postgres_schema(server_url: str) -> Iterator[str]:
    name = f"ondemand_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{name}"'.encode())
    try:
        separator = "&" if "?" in server_url else "?"
        yield f"{server_url}{separator}options=-csearch_path%3D{name}"
    finally:
        with psycopg.connect(server_url, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{name}" CASCADE'.encode())


@contextmanager
def mariadb_database(server_url: str) -> Iterator[str]:
    """A new MariaDB database on the server ``mysql://user@host:port/any`` names, dropped after."""
    import pymysql

    name = f"ondemand_bench_{uuid.uuid4().hex[:12]}"
    parts = urlsplit(server_url)
    login = {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 3306,
        "user": parts.username or "root",
        "password": parts.password or "",
    }
    with pymysql.connect(**login) as connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}`")
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with pymysql.connect(**login) as connection, connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE `{name}`")


@contextmanager
def database(backend: str, folder: Path, server_url: str | None) -> Iterator[str]:
    """A fresh database of the backend (a new SQLite file, PostgreSQL schema or MariaDB
    database)."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / f'{uuid.uuid4().hex}.db'}"
        return
    assert server_url is not None
    fresh = mariadb_database if backend == "mariadb" else postgres_schema
    with fresh(server_url) as url:
        yield url
