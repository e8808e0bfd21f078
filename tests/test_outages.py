"""Outages and load.

The database goes away and comes back: dashboards keep answering from what they knew (the dialog's
timeline too, from the statuses this worker last knew, marked stale), the dialog and sends refuse at
once with ``store_unavailable`` and write nothing, and the plugin recovers by itself. PostgreSQL and
MariaDB are taken away for real, through a TCP forwarder the test stops; SQLite, by taking its
folder away or holding its write lock past the timeout. The times asserted are the issue's contract
figures with room for a loaded machine; each test prints what it measured.

Desks sending at once keep their connections to the provider from one burst to the next."""

from __future__ import annotations

import logging
import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from time import monotonic, sleep
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import pluggy
import pytest
from conftest import CONTEXT, Build, assert_valid, enable_addon, host_on
from peers.http import Slow
from peers.tcp_proxy import TcpProxy
from peers.twilio import TwilioPeer

from ondemand_plugin import SEND_ACTION_ID
from ondemand_plugin.channels.outbox import read_outbox
from ondemand_plugin.clock import format_timestamp, utc_now
from ondemand_plugin.errors import OnDemandError
from ondemand_plugin.rules.entitlement import REFRESH_SECONDS
from ondemand_plugin.sending import progress
from ondemand_plugin.stores import sqlite_backend as sqlite_store
from ondemand_plugin.testing import ReferenceHost, build_plugin_manager, store_of

LILY = {"type": "patient", "id": "p-lily"}
# The figures, loosened for a machine under load.
ACTIONS_WITHIN = 1.5  # contract: 1 s
REFUSED_WITHIN = 3.0  # contract: 2 s
HEALED_WITHIN = 20.0

T = TypeVar("T")


def timed(call: Callable[[], T]) -> tuple[T, float]:
    started = monotonic()
    answer = call()
    return answer, monotonic() - started


def actions(pm: pluggy.PluginManager) -> list[Any]:
    answers: list[Any] = pm.hook.pm_dashboard_actions(
        dashboard="patient", subject=LILY, context=CONTEXT
    )
    return answers


def open_dialog(pm: pluggy.PluginManager) -> Any:
    return pm.hook.pm_dashboard_action(
        action_id=SEND_ACTION_ID, step="open", subject=LILY, payload={}, context=CONTEXT
    )


def submit(pm: pluggy.PluginManager, key: str) -> Any:
    return pm.hook.pm_dashboard_action(
        action_id=SEND_ACTION_ID,
        step="submit",
        subject=LILY,
        payload={
            "guarantor_id": "g-mei",
            "send_to": {"entity": {"type": "guarantor", "id": "g-mei"}, "mode": "text"},
            "body": "Your balance is {{BalanceDue}}.",
            "idempotency_key": key,
        },
        context=CONTEXT,
    )


def status(pm: pluggy.PluginManager, notification_id: str, context: Any = CONTEXT) -> Any:
    """The step the dialog's timeline polls."""
    return pm.hook.pm_dashboard_action(
        action_id=SEND_ACTION_ID,
        step="status",
        subject=LILY,
        payload={"notification_id": notification_id},
        context=context,
    )


def stale(known: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    """``known`` as the status step answers it from memory, ``as_of`` as ``answer`` has it."""
    assert_valid("send-status", answer)
    return {**known, "stale": True, "as_of": answer.get("as_of")}


def another_workers_send(database_url: str, directory: Path) -> str:
    """The id of a notification sent through another worker on the same database."""
    pm = build_plugin_manager(host_on(database_url, directory))
    try:
        notification_id: str = submit(pm, "another-worker")["notification_id"]
    finally:
        pm.hook.pm_unconfigure(plugin_manager=pm)
    return notification_id


def refused_in(call: Callable[[], object]) -> float:
    """How long ``call`` took to refuse with store_unavailable."""
    started = monotonic()
    with pytest.raises(OnDemandError) as refusal:
        call()
    elapsed = monotonic() - started
    assert refusal.value.code == "store_unavailable", refusal.value
    assert "unavailable" in refusal.value.message and "try again" in refusal.value.message
    return elapsed


def in_a_new_thread(call: Callable[[], T]) -> T:
    """``call`` on a thread of its own, as a host's request threads come and go."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["answer"] = call()
        except BaseException as error:
            outcome["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=60)
    if "error" in outcome:
        raise outcome["error"]
    answer: T = outcome["answer"]
    return answer


def history(pm: pluggy.PluginManager) -> list[dict[str, Any]]:
    [entries] = pm.hook.pm_history_entries(
        guarantor_id="g-mei", context=CONTEXT, before=None, limit=100
    )
    return list(entries)


def outbox(host: ReferenceHost) -> list[dict[str, Any]]:
    assert host.plugin_config is not None
    return read_outbox(Path(host.plugin_config["outbox_dir"]), "demo")


def database_notices(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "ondemand_plugin.rules.entitlement" and "database" in record.getMessage()
    ]


# PostgreSQL and MariaDB, through a forwarder that the test takes away


@pytest.fixture(params=["postgresql", "mariadb"])
def server_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(f"{request.param.replace('postgresql', 'postgres')}_url")
    return url


@pytest.fixture
def proxy(server_url: str) -> Iterator[TcpProxy]:
    parts = urlsplit(server_url)
    assert parts.hostname is not None and parts.port is not None
    with TcpProxy((parts.hostname, parts.port)) as forwarder:
        yield forwarder


@pytest.fixture
def proxied(
    server_url: str, proxy: TcpProxy, tmp_path: Path
) -> Iterator[tuple[pluggy.PluginManager, ReferenceHost]]:
    parts = urlsplit(server_url)
    netloc = f"{parts.username}@127.0.0.1:{proxy.port}" if parts.username else parts.netloc
    host = host_on(urlunsplit(parts._replace(netloc=netloc)), tmp_path)
    pm = build_plugin_manager(host)
    enable_addon(pm)
    yield pm, host
    proxy.resume()
    pm.hook.pm_unconfigure(plugin_manager=pm)


@pytest.mark.parametrize("outage", ["stop", "blackhole"])
def test_while_the_server_is_away_dashboards_answer_sends_refuse_and_the_pool_heals(
    proxied: tuple[pluggy.PluginManager, ReferenceHost],
    proxy: TcpProxy,
    outage: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pm, host = proxied
    caplog.set_level(logging.INFO, logger="ondemand_plugin")
    known = actions(pm)
    assert [action["id"] for action in known[0]] == [SEND_ACTION_ID]

    getattr(proxy, outage)()
    slowest_render = 0.0
    # Renders over more than two refreshes of the add-on state.
    until = monotonic() + 2 * REFRESH_SECONDS + 0.5
    while monotonic() < until:
        answer, took = timed(lambda: actions(pm))
        assert answer == known
        slowest_render = max(slowest_render, took)
        sleep(0.05)
    opening = refused_in(lambda: open_dialog(pm))
    sending = refused_in(lambda: submit(pm, "while-away"))
    away = database_notices(caplog)
    assert len(away) == 1 and "unavailable" in away[0], away

    proxy.resume()
    started = monotonic()
    while True:
        try:
            result = submit(pm, "once-back")
            break
        except OnDemandError as refusal:
            assert refusal.code == "store_unavailable"
            assert monotonic() - started < HEALED_WITHIN, "the pool did not come back"
            sleep(0.2)
    healed = monotonic() - started
    # The next render past the refresh re-reads the state aside, and says once that it is back.
    said_back = monotonic() + 2 * REFRESH_SECONDS + 5
    while len(database_notices(caplog)) < 2 and monotonic() < said_back:
        assert actions(pm) == known
        sleep(0.1)
    print(
        f"\n{store_of(pm)!r} {outage}: slowest dashboard render {slowest_render:.3f} s, "
        f"open refused in {opening:.3f} s, submit refused in {sending:.3f} s, "
        f"healed {healed:.3f} s after the database came back"
    )

    assert slowest_render < ACTIONS_WITHIN
    assert opening < REFUSED_WITHIN and sending < REFUSED_WITHIN
    assert result["status"] == "sent"
    # The refused submit left nothing: only the send made once the database was back.
    assert [entry["id"] for entry in history(pm)] == [result["notification_id"]]
    assert len(outbox(host)) == 1
    notices = database_notices(caplog)
    assert len(notices) == 2 and "back" in notices[1], notices


@pytest.mark.parametrize("outage", ["stop", "blackhole"])
def test_while_the_server_is_away_the_timeline_answers_what_this_worker_last_knew(
    proxied: tuple[pluggy.PluginManager, ReferenceHost],
    proxy: TcpProxy,
    server_url: str,
    tmp_path: Path,
    outage: str,
) -> None:
    pm, _ = proxied
    submitted = submit(pm, "submitted")["notification_id"]
    polled = submit(pm, "polled")["notification_id"]
    before = format_timestamp(utc_now())
    known = status(pm, polled)
    after = format_timestamp(utc_now())
    theirs = another_workers_send(server_url, tmp_path)

    getattr(proxy, outage)()
    slowest_poll = 0.0
    # Polls over more than two refreshes of the add-on state, which is judged as last read.
    until = monotonic() + 2 * REFRESH_SECONDS + 0.5
    while monotonic() < until:
        answer, took = timed(lambda: status(pm, polled))
        assert answer == stale(known, answer)
        assert before <= answer["as_of"] <= after
        slowest_poll = max(slowest_poll, took)
        sleep(0.05)
    at_submit = status(pm, submitted)
    assert (at_submit["status"], at_submit["stale"]) == ("delivered", True)
    # What this worker never knew, it cannot say.
    never_known = refused_in(lambda: status(pm, theirs))
    refused_in(lambda: status(pm, "ntf_nope"))

    proxy.resume()
    started = monotonic()
    while "stale" in (answer := status(pm, polled)):
        assert monotonic() - started < HEALED_WITHIN, "the status stayed stale"
        sleep(0.2)
    print(
        f"\n{store_of(pm)!r} {outage}: slowest stale status {slowest_poll:.3f} s, "
        f"an unknown one refused in {never_known:.3f} s"
    )
    assert answer == known
    assert status(pm, theirs)["notification_id"] == theirs
    assert slowest_poll < REFUSED_WITHIN and never_known < REFUSED_WITHIN


# SQLite


@pytest.fixture
def on_sqlite(tmp_path: Path) -> Iterator[tuple[pluggy.PluginManager, ReferenceHost, Path]]:
    folder = tmp_path / "data"
    host = host_on(f"sqlite:///{folder / 'ondemand.db'}", tmp_path)
    pm = build_plugin_manager(host)
    enable_addon(pm)
    yield pm, host, folder
    pm.hook.pm_unconfigure(plugin_manager=pm)


def test_while_the_sqlite_folder_is_gone_dashboards_answer_and_sends_refuse(
    on_sqlite: tuple[pluggy.PluginManager, ReferenceHost, Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    pm, host, folder = on_sqlite
    caplog.set_level(logging.INFO, logger="ondemand_plugin")
    known = actions(pm)
    shutil.rmtree(folder)

    sleep(REFRESH_SECONDS)
    for _ in range(3):
        answer, took = timed(lambda: in_a_new_thread(lambda: actions(pm)))
        assert answer == known and took < ACTIONS_WITHIN
    opening = refused_in(lambda: in_a_new_thread(lambda: open_dialog(pm)))
    sending = refused_in(lambda: in_a_new_thread(lambda: submit(pm, "folder-gone")))
    print(f"\nSQLite folder gone: open refused in {opening:.3f} s, submit in {sending:.3f} s")
    assert opening < REFUSED_WITHIN and sending < REFUSED_WITHIN
    assert len(database_notices(caplog)) == 1
    assert outbox(host) == []


def test_while_the_sqlite_folder_is_gone_the_timeline_answers_what_this_worker_last_knew(
    on_sqlite: tuple[pluggy.PluginManager, ReferenceHost, Path],
) -> None:
    pm, host, folder = on_sqlite
    submitted = submit(pm, "submitted")["notification_id"]
    known = status(pm, submitted)
    # Workers started since: one that has read nothing yet, not even the add-on's state, and one
    # that was sent the same request again (a host retrying through another worker).
    fresh, retried = build_plugin_manager(host), build_plugin_manager(host)
    assert submit(retried, "submitted")["duplicate"] is True
    shutil.rmtree(folder)

    sleep(REFRESH_SECONDS)
    try:
        for _ in range(3):
            answer, took = timed(lambda: in_a_new_thread(lambda: status(pm, submitted)))
            assert answer == stale(known, answer) and took < ACTIONS_WITHIN
        answer = in_a_new_thread(lambda: status(retried, submitted))
        assert answer == stale(known, answer)
        refused_in(lambda: in_a_new_thread(lambda: status(pm, "ntf_nope")))
        refused_in(lambda: in_a_new_thread(lambda: status(fresh, submitted)))
    finally:
        for worker in (fresh, retried):
            worker.hook.pm_unconfigure(plugin_manager=worker)


def test_the_timeline_remembers_the_latest_few_and_only_what_the_host_asked_about(
    on_sqlite: tuple[pluggy.PluginManager, ReferenceHost, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pm, _, folder = on_sqlite
    monkeypatch.setattr(progress, "KNOWN_LIMIT", 2)
    enable_addon(pm, "other")
    first, second, third = (submit(pm, f"key-{n}")["notification_id"] for n in range(3))
    known = status(pm, second)  # used since the third
    fourth = submit(pm, "key-3")["notification_id"]  # the least recently used, the third, goes
    # None of these is a notification the practice has: nothing is remembered of them.
    for notification_id in ("ntf_nope", "ntf_nope_2", "ntf_nope_3"):
        with pytest.raises(OnDemandError, match="no notification"):
            status(pm, notification_id)
    with pytest.raises(OnDemandError, match="no notification"):
        status(pm, fourth, {**CONTEXT, "practice_id": "other"})
    stranger = pm.hook.pm_inbound_request(
        plugin_name="ondemand",
        method="GET",
        path="pay/0000000000000000000000",
        url="https://pay.example/plugins/ondemand/pay/0000000000000000000000",
        headers={},
        form={},
        body="",
    )
    assert stranger["status"] == 404
    shutil.rmtree(folder)

    sleep(REFRESH_SECONDS)
    answer = in_a_new_thread(lambda: status(pm, second))
    assert answer == stale(known, answer)
    assert in_a_new_thread(lambda: status(pm, fourth))["stale"] is True
    for forgotten in (first, third):
        refused_in(lambda: in_a_new_thread(lambda: status(pm, forgotten)))  # noqa: B023
    refused_in(
        lambda: in_a_new_thread(lambda: status(pm, fourth, {**CONTEXT, "practice_id": "other"}))
    )


def test_a_write_lock_held_past_the_timeout_refuses_the_send_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_store, "LOCK_TIMEOUT_SECONDS", 0.2)
    path = tmp_path / "ondemand.db"
    host = host_on(f"sqlite:///{path}", tmp_path)
    pm = build_plugin_manager(host)
    enable_addon(pm)
    try:
        other_process = sqlite3.connect(path, isolation_level=None)
        other_process.execute("BEGIN EXCLUSIVE")
        sending = refused_in(lambda: submit(pm, "locked"))
        other_process.execute("ROLLBACK")
        other_process.close()

        assert sending < REFUSED_WITHIN
        assert history(pm) == [] and outbox(host) == []
        assert submit(pm, "locked")["status"] == "sent"
    finally:
        pm.hook.pm_unconfigure(plugin_manager=pm)


def test_a_send_whose_outcome_cannot_be_recorded_still_says_it_left(
    build: Build, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_store, "LOCK_TIMEOUT_SECONDS", 0.2)
    other_process = sqlite3.connect(
        tmp_path / "ondemand.db", isolation_level=None, check_same_thread=False
    )
    with TwilioPeer() as gateway:
        # The database locks up while the provider takes the message.
        gateway.before_answering = lambda sid: other_process.execute("BEGIN EXCLUSIVE")
        pm, _ = build(channels={"text": "twilio_sms"}, twilio_sms=gateway.settings())
        result = submit(pm, "locked-after-delivery")
        other_process.execute("ROLLBACK")

    assert result["status"] == "sent"
    assert len(gateway.created) == 1
    [entry] = history(pm)  # written before delivery; recovery settles it
    assert entry["id"] == result["notification_id"]


# Load


def test_desks_sending_at_once_keep_their_provider_connections_for_the_next_burst(
    build: Build,
) -> None:
    desks = 32
    with TwilioPeer() as gateway:
        gateway.rule = lambda number: Slow(0.2)  # every desk's send is in flight at once
        pm, _ = build(channels={"text": "twilio_sms"}, twilio_sms=gateway.settings())
        for burst in range(2):
            keys = [f"burst-{burst}-desk-{desk}" for desk in range(desks)]
            with ThreadPoolExecutor(max_workers=desks) as pool:
                results = list(pool.map(lambda key: submit(pm, key), keys))
            assert {result["status"] for result in results} == {"sent"}

    assert len(gateway.requests) == 2 * desks
    assert len({request.client_port for request in gateway.requests}) <= desks
