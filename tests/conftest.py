"""Helpers shared by the test modules. The fixtures ``ondemand_host`` and ``ondemand_pm`` come
from the plugin's own pytest plugin (``ondemand_plugin.testing``), loaded through ``pytest11``."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import unquote, urlsplit, urlunsplit

import pluggy
import psycopg
import pymysql
import pytest
from jsonschema.exceptions import best_match
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, Metric, NumberDataPoint
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import hookspecs
from ondemand_plugin import MANAGE_ACTION_ID, SEND_ACTION_ID, telemetry, testing
from ondemand_plugin.boundary import contracts
from ondemand_plugin.stores.sqlite_backend import SQLiteBackend
from ondemand_plugin.testing import ReferenceHost, demo_host
from ondemand_plugin.testing.pytest_plugin import ondemand_test_config

# The demo practice's dashboard context, as a host passes it.
CONTEXT: dict[str, Any] = {"practice_id": "demo", "user": {"id": "u1", "name": "Amy Front"}}


def enable_addon(pm: pluggy.PluginManager, practice_id: str = "demo") -> None:
    """Switch the premium add-on on for ``practice_id`` (the demo practice unless named), and
    take away the starter templates a first switch gives, so that a test starts from a practice
    without templates (``test_starter_templates.py`` is about them)."""
    done = testing.enable_addon(pm, practice_id)
    for template_id in done.starter_templates:
        pm.hook.pm_dashboard_action(
            action_id=MANAGE_ACTION_ID,
            step="submit",
            subject={"type": "practice", "id": practice_id},
            payload={"op": "delete", "template_id": template_id},
            context={**CONTEXT, "practice_id": practice_id},
        )


def assert_valid(schema_name: str, instance: object) -> None:
    """Fail, naming the field, unless ``instance`` follows ``contracts/<schema_name>.json``."""
    error = best_match(contracts.validator(schema_name).iter_errors(instance))
    if error is not None:
        path, problem = contracts.describe(error)
        pytest.fail(f"{schema_name}.json rejects the result: {path} {problem} ({error.message})")


def assert_valid_history_entry(entry: dict[str, Any]) -> None:
    """Fail unless a history entry follows the schema of its kind."""
    kind = entry.get("kind")
    assert_valid("history-reply" if kind == "patient_reply" else "history-entry", entry)


def patient_replies(
    pm: pluggy.PluginManager, guarantor_id: str = "g-mei", context: dict[str, Any] = CONTEXT
) -> list[dict[str, Any]]:
    """The patients' replies in the guarantor's history, newest first, each checked against
    ``contracts/history-reply.json``."""
    [entries] = pm.hook.pm_history_entries(
        guarantor_id=guarantor_id, context=context, before=None, limit=100
    )
    for entry in entries:
        assert_valid_history_entry(entry)
    return [entry for entry in entries if entry["kind"] == "patient_reply"]


def trace_sql(pm: pluggy.PluginManager) -> list[str]:
    """Every SQL statement the plugin's store runs from now on in this thread, as run.

    The store keeps one connection per thread; tracing it is how a test sees which queries a
    hook makes, with the bound values filled in (ready for EXPLAIN QUERY PLAN).
    """
    statements: list[str] = []
    store = testing.store_of(pm)
    assert isinstance(store.backend, SQLiteBackend)
    store.backend.sqlite_connection().set_trace_callback(statements.append)
    return statements


def send_to_mei(
    pm: pluggy.PluginManager,
    *,
    context: dict[str, Any] = CONTEXT,
    mode: str = "text",
    body: str | None = "Your balance is {{BalanceDue}}: {{QuickPayLink}}",
    template_id: str | None = None,
) -> dict[str, Any]:
    """Send Mei Chen (guarantor of Lily) a notification from Lily's dashboard; check the result."""
    result: dict[str, Any] = pm.hook.pm_dashboard_action(
        action_id=SEND_ACTION_ID,
        step="submit",
        subject={"type": "patient", "id": "p-lily"},
        payload={
            "guarantor_id": "g-mei",
            "send_to": {"entity": {"type": "guarantor", "id": "g-mei"}, "mode": mode},
            "template_id": template_id,
            "body": body,
        },
        context=context,
    )
    assert_valid("send-result", result)
    return result


Build = Callable[..., tuple[pluggy.PluginManager, ReferenceHost]]
# What the first text from a practice to a number ends with, when its body says nothing of STOP.
FIRST_TEXT_OPT_OUT = "\nReply STOP to opt out."


@pytest.fixture
def build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Build]:
    """A host built by hand as a host builds one, with extra plugins registered before
    ``pm_configure`` (channels are collected when the plugin is configured), the add-on on.

    ``build(plugin, ..., named={"acme-gateway": plugin}, **plugin_settings)``.
    """
    monkeypatch.delenv("ONDEMAND_STRICT_PLUGINS", raising=False)
    managers: list[pluggy.PluginManager] = []

    def make(
        *plugins: object, named: Mapping[str, object] | None = None, **settings: Any
    ) -> tuple[pluggy.PluginManager, ReferenceHost]:
        host = demo_host({**ondemand_test_config(tmp_path), **settings})
        pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        hookspecs.add_hookspecs(pm)
        pm.register(host, name="host")
        for plugin in plugins:
            pm.register(plugin)
        for name, plugin in (named or {}).items():
            pm.register(plugin, name=name)
        pm.load_setuptools_entrypoints(hookspecs.PROJECT_NAME)
        pm.hook.pm_configure.call_historic(kwargs={"plugin_manager": pm})
        managers.append(pm)
        enable_addon(pm)
        return pm, host

    yield make
    for pm in managers:
        pm.hook.pm_unconfigure(plugin_manager=pm)


class Telemetry:
    """What the plugin recorded through the OpenTelemetry SDK during a test: finished spans, and
    the metrics' data points as a reader collects them."""

    def __init__(self, exporter: SpanExporter, reader: InMemoryMetricReader) -> None:
        self.exporter = exporter
        self.reader = reader

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        assert isinstance(self.exporter, InMemorySpanExporter)
        finished = self.exporter.get_finished_spans()
        return [span for span in finished if name is None or span.name == name]

    def metrics(self) -> dict[str, Metric]:
        data = self.reader.get_metrics_data()
        if data is None:
            return {}
        return {
            metric.name: metric
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            if scope.scope.name == "ondemand_plugin"
            for metric in scope.metrics
        }

    def points(self, name: str) -> dict[frozenset[tuple[str, Any]], Any]:
        """The metric's points by their attributes: a counter's value, a histogram's count."""
        metric = self.metrics().get(name)
        if metric is None:
            return {}
        return {
            frozenset((point.attributes or {}).items()): point.value
            if isinstance(point, NumberDataPoint)
            else point.count
            for point in metric.data.data_points
        }


class DiscardingExporter(SpanExporter):
    """Spans exported to nowhere, as a host's exporter sends them away."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


@contextmanager
def sdk_telemetry(exporter: SpanExporter) -> Iterator[Telemetry]:
    """The OpenTelemetry SDK as the plugin's providers, as a host configures it."""
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    telemetry.use_providers(tracer_provider, meter_provider)
    try:
        yield Telemetry(exporter, reader)
    finally:
        telemetry.use_providers()
        tracer_provider.shutdown()
        meter_provider.shutdown()


@pytest.fixture
def recorded() -> Iterator[Telemetry]:
    """Spans and metrics the plugin records during the test, kept in memory."""
    with sdk_telemetry(InMemorySpanExporter()) as kept:
        yield kept


# The backends. SQLite needs nothing. PostgreSQL is found by itself: the server that
# ONDEMAND_TEST_POSTGRES_URL names, else one answering at the default local address, else a
# throwaway server that pytest-postgresql starts from PostgreSQL's installed binaries. Each test
# run works in a schema of its own.

POSTGRES_URL_VARIABLE = "ONDEMAND_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URLS = (
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgresql://postgres@127.0.0.1:5432/postgres",
)
HOW_TO_RUN_POSTGRES_TESTS = (
    "To run the PostgreSQL tests, start a server at 127.0.0.1:5432 (user postgres, trust auth), "
    "install PostgreSQL's binaries (initdb, pg_ctl) as a user other than root, or point "
    "ONDEMAND_TEST_POSTGRES_URL at a server where the user may create schemas."
)


def with_schema(server_url: str, schema: str) -> str:
    """The URL of one schema of the server's database: libpq sets search_path from options."""
    return f"{server_url}{'&' if '?' in server_url else '?'}options=-csearch_path%3D{schema}"


def _postgres_unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} Under CI the PostgreSQL tests must run. {HOW_TO_RUN_POSTGRES_TESTS}")
    pytest.skip(f"{reason} {HOW_TO_RUN_POSTGRES_TESTS}")


def _answers(url: str) -> psycopg.Error | None:
    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.Error as error:
        return error
    return None


def _pg_ctl() -> str | None:
    """PostgreSQL's pg_ctl, on the PATH or where Debian installs it."""
    found = shutil.which("pg_ctl")
    if found:
        return found
    installed = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return str(installed[-1]) if installed else None


@contextmanager
def _throwaway_server(pg_ctl: str, directory: Path) -> Iterator[str]:
    """A PostgreSQL server of our own, started from the installed binaries, stopped after."""
    from pytest_postgresql.executors.proc import PostgreSQLExecutor

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    executor = PostgreSQLExecutor(
        executable=pg_ctl,
        host="127.0.0.1",
        port=port,
        datadir=str(directory / "data"),
        unixsocketdir=str(directory),
        logfile=str(directory / "postgresql.log"),
        startparams="-w",
        dbname="test",
    )
    with executor:
        executor.wait_for_postgres()
        with psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True
        ) as connection:
            connection.execute("CREATE DATABASE test")
        yield f"postgresql://postgres@127.0.0.1:{port}/test"


@contextmanager
def located_postgres(environ: Mapping[str, str], scratch: Path) -> Iterator[str]:
    """The URL of the first PostgreSQL server found (see above); skips the test, with the reason,
    where none can be found or started (under CI it fails instead)."""
    named = environ.get(POSTGRES_URL_VARIABLE)
    if named:
        error = _answers(named)
        if error is not None:
            _postgres_unavailable(
                f"The server {POSTGRES_URL_VARIABLE} names does not answer: {error}"
            )
        yield named
        return
    for url in DEFAULT_POSTGRES_URLS:
        if _answers(url) is None:
            yield url
            return
    pg_ctl = _pg_ctl()
    if pg_ctl is None:
        _postgres_unavailable(
            "No PostgreSQL server answers at 127.0.0.1:5432 and PostgreSQL's binaries are not "
            "installed."
        )
    if os.geteuid() == 0:
        _postgres_unavailable(
            "No PostgreSQL server answers at 127.0.0.1:5432, and a throwaway one cannot be "
            "started from the installed binaries as root (initdb refuses to run as root)."
        )
    with _throwaway_server(pg_ctl, scratch) as url:
        yield url


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The test server's URL."""
    with located_postgres(os.environ, tmp_path_factory.mktemp("postgresql")) as url:
        yield url


@contextmanager
def fresh_schema(server_url: str) -> Iterator[str]:
    """A new, empty schema, dropped with all it holds afterwards; yields its URL."""
    name = f"ondemand_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{name}"'.encode())
    try:
        yield with_schema(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{name}" CASCADE'.encode())


@pytest.fixture(scope="session")
def postgres_run_url(postgres_server: str) -> Iterator[str]:
    """This test run's own schema: created when first needed, dropped at the end of the run."""
    with fresh_schema(postgres_server) as url:
        yield url


@pytest.fixture
def postgres_url(postgres_run_url: str) -> str:
    """This run's schema, emptied of what earlier tests left (its migrations stay applied)."""
    with psycopg.connect(postgres_run_url, autocommit=True) as connection:
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                "AND tablename NOT IN ('alembic_version', 'schema_version')"
            )
        ]
        if tables:
            names = ", ".join(f'"{table}"' for table in tables)
            connection.execute(f"TRUNCATE {names} RESTART IDENTITY".encode())
    return postgres_run_url


# MariaDB (or MySQL) is found as PostgreSQL is: the server that ONDEMAND_TEST_MARIADB_URL names,
# else one answering at 127.0.0.1:3306 (root, no password). Each test run works in a database of
# its own, created for it and dropped at its end: others share the server.

MARIADB_URL_VARIABLE = "ONDEMAND_TEST_MARIADB_URL"
DEFAULT_MARIADB_URL = "mysql://root@127.0.0.1:3306/test"
HOW_TO_RUN_MARIADB_TESTS = (
    "To run the MariaDB tests, start a server at 127.0.0.1:3306 (user root, no password), or "
    "point ONDEMAND_TEST_MARIADB_URL at a server where the user may create databases."
)


def _mariadb_login(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 3306,
        "user": unquote(parts.username or "root"),
        "password": unquote(parts.password or ""),
        "connect_timeout": 3,
    }


def _mariadb_answers(url: str) -> pymysql.Error | None:
    try:
        pymysql.connect(**_mariadb_login(url)).close()
    except pymysql.Error as error:
        return error
    return None


def located_mariadb(environ: Mapping[str, str]) -> str:
    """The URL of the MariaDB server to test on; skips the test, with the reason, where none
    answers (under CI it fails instead)."""
    url = environ.get(MARIADB_URL_VARIABLE) or DEFAULT_MARIADB_URL
    error = _mariadb_answers(url)
    if error is None:
        return url
    parts = urlsplit(url)  # host and port only: never the password
    reason = f"No MariaDB server answers at {parts.hostname}:{parts.port or 3306}: {error}."
    if environ.get("CI"):
        pytest.fail(f"{reason} Under CI the MariaDB tests must run. {HOW_TO_RUN_MARIADB_TESTS}")
    pytest.skip(f"{reason} {HOW_TO_RUN_MARIADB_TESTS}")


@pytest.fixture(scope="session")
def mariadb_server() -> str:
    return located_mariadb(os.environ)


@contextmanager
def fresh_mariadb_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the server, dropped with all it holds afterwards; yields its
    URL."""
    name = f"ondemand_test_{uuid.uuid4().hex[:12]}"
    with pymysql.connect(**_mariadb_login(server_url)) as connection:
        connection.cursor().execute(f"CREATE DATABASE `{name}`")
    try:
        yield urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))
    finally:
        with pymysql.connect(**_mariadb_login(server_url)) as connection:
            connection.cursor().execute(f"DROP DATABASE `{name}`")


@pytest.fixture(scope="session")
def mariadb_run_url(mariadb_server: str) -> Iterator[str]:
    """This test run's own database: created when first needed, dropped at the end of the run."""
    with fresh_mariadb_database(mariadb_server) as url:
        yield url


@pytest.fixture
def mariadb_url(mariadb_run_url: str) -> str:
    """This run's database, emptied of what earlier tests left (its migrations stay applied)."""
    database = urlsplit(mariadb_run_url).path.lstrip("/")
    with pymysql.connect(**_mariadb_login(mariadb_run_url), database=database) as connection:
        cursor = connection.cursor()
        cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() "
            "AND table_name NOT IN ('alembic_version', 'schema_version')"
        )
        for (table,) in cursor.fetchall():
            cursor.execute(f"TRUNCATE TABLE `{table}`")
    return mariadb_run_url


BACKENDS = ("sqlite", "postgresql", "mariadb")
# For a module whose ``backend`` fixture is SQLite only: run this test on each backend.
on_each_backend = pytest.mark.parametrize("backend", BACKENDS)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each backend in turn; ``@pytest.mark.parametrize("backend", ["sqlite"])`` picks one."""
    name: str = request.param
    return name


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database of the backend."""
    if backend == "sqlite":
        return "sqlite:///" + str(tmp_path / "ondemand.db")
    url: str = request.getfixturevalue("postgres_url" if backend == "postgresql" else "mariadb_url")
    return url


def host_on(database_url: str, directory: Path) -> ReferenceHost:
    """The demo host, its plugin configured for ``database_url`` and an outbox in ``directory``."""
    return demo_host({**ondemand_test_config(directory), "database_url": database_url})


@contextmanager
def serving_sandbox(home: Path) -> Iterator[str]:
    """A sandbox served for real by uvicorn on a free loopback port, in a thread; yields its URL."""
    import uvicorn

    from ondemand_sandbox import build_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    server = uvicorn.Server(uvicorn.Config(build_app(home, url), port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)
