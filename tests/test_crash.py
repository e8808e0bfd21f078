"""Crash safety: host workers killed (SIGKILL) at random points while their channel delivers, many
times over. Afterwards no send is missing from history, none is delivered twice, recovery never
delivers, and a send whose outcome is unknown shows as such until the channel's lookup settles it.

Runs on each backend (``database_url`` comes from conftest).
"""

from __future__ import annotations

import collections
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pluggy
import pytest
from conftest import CONTEXT, assert_valid
from crash_worker import CHANNEL, build, submit

from hookspecs import DeliveryReceipt, OutboundMessage
from ondemand_plugin.channels.outbox import OutboxChannel
from ondemand_plugin.clock import utc_now
from ondemand_plugin.rules.entitlement import Entitlement
from ondemand_plugin.sending.recovery import UNKNOWN_DETAIL
from ondemand_plugin.stores import open_store
from ondemand_plugin.testing import run_recovery

WORKER = Path(__file__).with_name("crash_worker.py")
ROUNDS = 30
LONGEST_LIFE_SECONDS = 0.3


@pytest.fixture
def entitled(database_url: str) -> str:
    """The backend's database, with the demo practice's add-on on."""
    store = open_store(database_url)
    Entitlement(store).switch("demo", True, "Test Account Manager", "crash tests")
    store.close()
    return database_url


class BlindChannel:
    """The workers' channel as a host sees it after the crash, had it no status lookup."""

    name = CHANNEL
    modes = frozenset({"email", "text", "voice"})

    def __init__(self) -> None:
        self.deliveries = 0

    def deliver(self, message: OutboundMessage) -> DeliveryReceipt:
        self.deliveries += 1
        raise AssertionError("recovery delivered a message")


class LookingOutbox(OutboxChannel):
    """The workers' channel with its outbox lookup; recovery must never call ``deliver``."""

    name = CHANNEL

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.deliveries = 0

    def deliver(self, message: OutboundMessage) -> DeliveryReceipt:
        self.deliveries += 1
        raise AssertionError("recovery delivered a message")


@pytest.fixture
def managers() -> Iterator[list[pluggy.PluginManager]]:
    built: list[pluggy.PluginManager] = []
    yield built
    for pm in built:
        pm.hook.pm_unconfigure(plugin_manager=pm)


def kill_workers_at_random(database_url: str, outbox: Path, journal: Path, seed: int) -> None:
    chance = random.Random(seed)
    for number in range(ROUNDS):
        worker = subprocess.Popen(
            [sys.executable, str(WORKER), database_url, str(outbox), str(journal), f"w{number}"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert worker.stdout is not None and worker.stdout.readline() == "ready\n"
            time.sleep(chance.uniform(0, LONGEST_LIFE_SECONDS))
        finally:
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait(10)
            assert worker.stdout is not None
            worker.stdout.close()
        assert worker.returncode == -signal.SIGKILL


def read_journal(journal: Path) -> tuple[collections.Counter[str], dict[str, tuple[str, str]]]:
    """How often each notification's delivery started, and each completed send's key → (id,
    status)."""
    deliveries: collections.Counter[str] = collections.Counter()
    done: dict[str, tuple[str, str]] = {}
    for line in journal.read_text(encoding="utf-8").splitlines():
        match line.split():
            case ["deliver", notification_id]:
                deliveries[notification_id] += 1
            case ["done", key, notification_id, status]:
                done[key] = (notification_id, status)
    return deliveries, done


def whole_history(pm: pluggy.PluginManager) -> dict[str, dict[str, Any]]:
    entries: dict[str, dict[str, Any]] = {}
    before = None
    while True:
        [page] = pm.hook.pm_history_entries(
            guarantor_id="g-mei", context=CONTEXT, before=before, limit=100
        )
        entries.update((entry["id"], entry) for entry in page)
        if len(page) < 100:
            return entries
        before = page[-1]["cursor"]


def test_workers_killed_mid_delivery_lose_no_send_and_recovery_never_delivers_again(
    entitled: str, tmp_path: Path, managers: list[pluggy.PluginManager]
) -> None:
    database_url = entitled
    outbox, journal = tmp_path / "outbox", tmp_path / "journal"
    seed = random.randrange(2**32)
    print(f"random seed: {seed}")
    kill_workers_at_random(database_url, outbox, journal, seed)
    deliveries, done = read_journal(journal)
    written = {path.stem for path in outbox.rglob("*.json")}

    blind = BlindChannel()
    managers.append(build(database_url, outbox, blind))
    history = whole_history(managers[-1])
    # Every delivery begun and every file written has its history entry; none went out twice.
    assert set(deliveries) <= set(history)
    assert written <= set(deliveries)
    assert max(deliveries.values()) == 1
    for notification_id, status in done.values():
        # The send left (its result); the outbox's receipt says it arrived (its history).
        assert (status, history[notification_id]["status"]) == ("sent", "delivered")
    cut_short = {nid for nid, entry in history.items() if entry["status"] == "sending"}
    print(f"{len(history)} sends, {len(cut_short)} cut short, {len(cut_short & written)} written")
    assert cut_short, "no worker was killed mid-delivery: kill later or dawdle longer"
    assert cut_short & written and cut_short - written, "both kinds of cut-short sends occur"

    # Without a lookup, recovery can only say that their outcome is unknown.
    unknown = run_recovery(managers[-1], older_than_seconds=0)
    assert {record.id for record in unknown} == cut_short
    before = {nid: entry["status"] for nid, entry in history.items()}
    history = whole_history(managers[-1])
    assert {nid: entry["status"] for nid, entry in history.items()} == {
        nid: "unknown" if nid in cut_short else status for nid, status in before.items()
    }
    repeated = keys_of(database_url, cut_short)[0]
    answer = submit(managers[-1], repeated)
    assert_valid("send-result", answer)
    assert (answer["status"], answer["duplicate"], answer["detail"]) == (
        "unknown",
        True,
        UNKNOWN_DETAIL,
    )

    # With the outbox lookup, the file settles each: there, it was sent; absent, it never left.
    looking = LookingOutbox(outbox)
    managers.append(build(database_url, outbox, looking))
    settled = run_recovery(managers[-1], older_than_seconds=0)
    assert {record.id: record.status for record in settled} == {
        notification_id: "delivered" if notification_id in written else "failed"
        for notification_id in cut_short
    }
    history = whole_history(managers[-1])
    assert {entry["status"] for entry in history.values()} <= {"delivered", "failed"}
    assert {nid for nid, entry in history.items() if entry["status"] == "failed"} == (
        cut_short - written
    )
    assert blind.deliveries == looking.deliveries == 0
    assert read_journal(journal)[0] == deliveries
    assert {path.stem for path in outbox.rglob("*.json")} == written


def keys_of(database_url: str, notification_ids: set[str]) -> list[str]:
    """The idempotency keys of these notifications, read through the store interface."""
    store = open_store(database_url)
    try:
        unsettled = store.unsettled_notifications(utc_now() + timedelta(days=1), 10_000)
        return [record.idempotency_key for record in unsettled if record.id in notification_ids]
    finally:
        store.close()
