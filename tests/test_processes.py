"""Past one process: workers that share a database see one another's sends, switches and templates.

Each worker is a process of its own (spawned, as a host's workers are started), with its own plugin
manager built as a host builds one; only the database and the outbox folder are shared.
"""

from __future__ import annotations

import multiprocessing
import queue
from collections import Counter
from pathlib import Path
from typing import Any

import pluggy
import pytest
from conftest import CONTEXT, enable_addon, host_on

from ondemand_plugin import SEND_ACTION_ID
from ondemand_plugin.channels.outbox import read_outbox
from ondemand_plugin.errors import OnDemandError
from ondemand_plugin.testing import ReferenceHost, build_plugin_manager

WORKERS = 4
ROUNDS = 30
SPAWN = multiprocessing.get_context("spawn")


def send_worker(
    database_url: str,
    directory: Path,
    keys: list[str],
    start: Any,
    results: Any,
) -> None:
    """Submit the same request as every other worker, one key per round, all at the barrier."""
    pm = build_plugin_manager(host_on(database_url, directory))
    try:
        for key in keys:
            start.wait()
            try:
                results.put((key, pm.hook.pm_dashboard_action(**send_request(key))))
            except OnDemandError as refusal:
                results.put((key, refusal.code))
    finally:
        pm.hook.pm_unconfigure(plugin_manager=pm)


def send_request(key: str) -> dict[str, Any]:
    return {
        "action_id": SEND_ACTION_ID,
        "step": "submit",
        "subject": {"type": "patient", "id": "p-lily"},
        "payload": {
            "guarantor_id": "g-mei",
            "send_to": {"entity": {"type": "guarantor", "id": "g-mei"}, "mode": "text"},
            "body": "Your balance is {{BalanceDue}}: {{QuickPayLink}}",
            "idempotency_key": key,
        },
        "context": CONTEXT,
    }


@pytest.fixture
def ondemand_host(database_url: str, tmp_path: Path) -> ReferenceHost:
    """The host the test watches from, on the database every worker shares."""
    return host_on(database_url, tmp_path)


def test_workers_sending_the_same_request_at_once_deliver_it_once(
    ondemand_pm: pluggy.PluginManager, database_url: str, tmp_path: Path
) -> None:
    pm = ondemand_pm
    enable_addon(pm)
    keys = [f"click-{number}" for number in range(ROUNDS)]
    start = SPAWN.Barrier(WORKERS, timeout=120)
    results = SPAWN.Queue()
    workers = [
        SPAWN.Process(target=send_worker, args=(database_url, tmp_path, keys, start, results))
        for _ in range(WORKERS)
    ]
    for worker in workers:
        worker.start()
    try:
        answers = [results.get(timeout=180) for _ in range(WORKERS * ROUNDS)]
    except queue.Empty:
        pytest.fail("A worker stopped answering; see its traceback above.")
    finally:
        for worker in workers:
            worker.join(timeout=60)

    assert [worker.exitcode for worker in workers] == [0] * WORKERS
    by_key: dict[str, list[Any]] = {key: [] for key in keys}
    for key, answer in answers:
        by_key[key].append(answer)
    for key, results_for_key in by_key.items():
        assert all(type(result) is dict for result in results_for_key), (key, results_for_key)
        assert sorted(result["duplicate"] for result in results_for_key) == [False] + [True] * (
            WORKERS - 1
        ), key
        assert len({str({**result, "duplicate": None}) for result in results_for_key}) == 1, key

    sent_ids = {by_key[key][0]["notification_id"] for key in keys}
    assert len(sent_ids) == ROUNDS
    deliveries = Counter(
        message["notification_id"] for message in read_outbox(tmp_path / "outbox", "demo")
    )
    assert deliveries == dict.fromkeys(sent_ids, 1)
    [entries] = pm.hook.pm_history_entries(
        guarantor_id="g-mei", context=CONTEXT, before=None, limit=100
    )
    assert sorted(entry["id"] for entry in entries) == sorted(sent_ids)
