"""Recovery of sends whose worker died mid-delivery: when it runs (a worker starting, a repeated
key, a history read, ``ondemand recover``), what it concludes (unknown, then sent or failed by the
channels' status lookup), and that it never delivers again. A worker's death is played in-process
by a channel raising ``WorkerDied``, a ``BaseException`` nothing in the send flow catches."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pluggy
import pytest
from conftest import CONTEXT, Build, assert_valid, trace_sql
from test_cli import run_ondemand

from hookspecs import (
    DeliveryReceipt,
    OutboundMessage,
    StatusLookup,
    TransientDeliveryError,
    hookimpl,
)
from ondemand_plugin import SEND_ACTION_ID, recovery, service
from ondemand_plugin.channels.outbox import OutboxChannel
from ondemand_plugin.errors import OnDemandError
from ondemand_plugin.recovery import NEVER_LEFT_DETAIL, UNKNOWN_DETAIL
from ondemand_plugin.testing import run_recovery, store_of

BODY = "Your balance is {{BalanceDue}}"


class WorkerDied(BaseException):
    """Stands for the worker's process being killed: nothing after it runs."""


class CrashingOutbox(OutboxChannel):
    """The outbox in a worker that dies while delivering, before or after writing the file."""

    modes = frozenset({"text"})

    def __init__(self, directory: Path, name: str = "crashy") -> None:
        super().__init__(directory)
        self.name = name
        self.write_first = True
        self.deliveries = 0
        self.lookups = 0

    def deliver(self, message: OutboundMessage) -> DeliveryReceipt:
        self.deliveries += 1
        if self.write_first:
            super().deliver(message)
        raise WorkerDied

    def lookup(self, message: OutboundMessage) -> DeliveryReceipt | None:
        self.lookups += 1
        return super().lookup(message)


class BlindChannel:
    """A channel without a status lookup, in a worker that dies while delivering."""

    name = "blind"
    modes = frozenset({"text"})

    def __init__(self) -> None:
        self.deliveries = 0

    def deliver(self, message: OutboundMessage) -> DeliveryReceipt:
        self.deliveries += 1
        raise WorkerDied


class UnsureChannel(BlindChannel):
    """A channel whose lookup cannot tell: it raises, or answers what no contract allows."""

    def __init__(self, name: str, answer: object) -> None:
        super().__init__()
        self.name = name
        self.answer = answer

    def lookup(self, message: OutboundMessage) -> object:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


class ChannelPlugin:
    def __init__(self, *channels: object) -> None:
        self.channels = channels

    @hookimpl
    def ondemand_delivery_channels(self, config: dict[str, Any]) -> list[Any]:
        return list(self.channels)


@pytest.fixture
def stuck_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every send still ``sending`` counts as past its deadline and margin."""
    monkeypatch.setattr(recovery, "MARGIN_SECONDS", -3600.0)


@pytest.fixture
def outbox(tmp_path: Path) -> Path:
    return tmp_path / "outbox"


def submit(pm: pluggy.PluginManager, key: str) -> dict[str, Any]:
    result: dict[str, Any] = pm.hook.pm_dashboard_action(
        action_id=SEND_ACTION_ID,
        step="submit",
        subject={"type": "patient", "id": "p-lily"},
        payload={
            "guarantor_id": "g-mei",
            "send_to": {"entity": {"type": "guarantor", "id": "g-mei"}, "mode": "text"},
            "body": BODY,
            "idempotency_key": key,
        },
        context=CONTEXT,
    )
    assert_valid("send-result", result)
    return result


def crash(pm: pluggy.PluginManager, key: str) -> str:
    """Send with ``key`` in a worker that dies mid-delivery; the notification's id."""
    with pytest.raises(WorkerDied):
        submit(pm, key)
    record = store_of(pm).notification_by_key("demo", key)
    assert record is not None and record.status == "sending"
    return str(record.id)


def statuses(pm: pluggy.PluginManager) -> dict[str, str]:
    [entries] = pm.hook.pm_history_entries(
        guarantor_id="g-mei", context=CONTEXT, before=None, limit=100
    )
    return {entry["id"]: entry["status"] for entry in entries}


def test_the_outbox_looks_a_message_up_by_its_notification_id(outbox: Path) -> None:
    channel = OutboxChannel(outbox)
    message = OutboundMessage("ntf_1", "demo", "text", "+15035550123", "+15035550101", None, "Hi")
    assert isinstance(channel, StatusLookup)
    assert channel.lookup(message) is None
    receipt = channel.deliver(message)
    assert channel.lookup(message) == receipt
    other_practice = OutboundMessage("ntf_1", "north", "text", "+15035550123", "", None, "")
    assert channel.lookup(other_practice) is None


def test_a_send_cut_short_stays_sending_until_its_deadline_and_margin_have_passed(
    build: Build, outbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "DUPLICATE_GRACE_SECONDS", 0.1)
    crashy = CrashingOutbox(outbox)
    pm, _ = build(ChannelPlugin(crashy), channels={"text": "crashy"}, deadline_seconds=0.1)
    notification_id = crash(pm, "k1")
    again, _ = build(
        ChannelPlugin(CrashingOutbox(outbox)), channels={"text": "crashy"}, deadline_seconds=0.1
    )

    assert statuses(again) == {notification_id: "sending"}
    with pytest.raises(OnDemandError) as refused:
        submit(again, "k1")
    assert refused.value.code == "idempotency_in_progress"
    assert crashy.lookups == 0


def test_a_worker_starting_settles_stuck_sends_by_lookup_and_never_delivers_them(
    build: Build, outbox: Path, stuck_at_once: None
) -> None:
    crashy = CrashingOutbox(outbox)
    pm, _ = build(ChannelPlugin(crashy), channels={"text": "crashy"})
    written = crash(pm, "k1")
    crashy.write_first = False
    never_left = crash(pm, "k2")

    successor = CrashingOutbox(outbox)
    again, _ = build(ChannelPlugin(successor), channels={"text": "crashy"})

    assert statuses(again) == {written: "delivered", never_left: "failed"}
    assert (crashy.deliveries, successor.deliveries, successor.lookups) == (2, 0, 2)
    assert [path.stem for path in outbox.rglob("*.json")] == [written]
    failed = submit(again, "k2")
    assert (failed["status"], failed["duplicate"]) == ("failed", True)
    assert failed["detail"] == NEVER_LEFT_DETAIL.format(mode="text")
    sent = submit(again, "k1")
    assert (sent["status"], sent["notification_id"]) == ("sent", written)
    assert "crashy has it (delivered)" in sent["detail"]
    assert sent["body"] == "Your balance is $120.50"
    assert successor.deliveries == 0


def test_without_a_lookup_a_stuck_send_is_unknown_and_its_repeat_answers_so(
    build: Build, stuck_at_once: None
) -> None:
    blind = BlindChannel()
    pm, _ = build(ChannelPlugin(blind), channels={"text": "blind"})
    notification_id = crash(pm, "k1")

    answer = submit(pm, "k1")
    assert answer["notification_id"] == notification_id
    assert (answer["status"], answer["duplicate"], answer["detail"]) == (
        "unknown",
        True,
        UNKNOWN_DETAIL,
    )
    assert (answer["to"], answer["body"]) == ("+15035550123", "Your balance is $120.50")
    [entries] = pm.hook.pm_history_entries(
        guarantor_id="g-mei", context=CONTEXT, before=None, limit=10
    )
    assert entries[0]["status"] == "unknown"
    assert "outcome unknown" in entries[0]["display"]["summary"]
    assert blind.deliveries == 1


def test_reading_the_history_marks_stuck_sends_unknown_without_looking_them_up(
    build: Build, outbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    crashy = CrashingOutbox(outbox)
    pm, _ = build(ChannelPlugin(crashy), channels={"text": "crashy"})
    notification_id = crash(pm, "k1")
    assert statuses(pm) == {notification_id: "sending"}

    monkeypatch.setattr(recovery, "MARGIN_SECONDS", -3600.0)
    assert statuses(pm) == {notification_id: "unknown"}
    assert crashy.lookups == 0
    assert submit(pm, "k1")["status"] == "sent"  # a repeat looks it up
    assert statuses(pm) == {notification_id: "delivered"}
    assert crashy.deliveries == 1


def test_reading_a_history_without_stuck_sends_costs_no_extra_query(
    build: Build, outbox: Path
) -> None:
    pm, _ = build(ChannelPlugin(CrashingOutbox(outbox)), channels={"text": "crashy"})
    crash(pm, "k1")
    queries = trace_sql(pm)
    statuses(pm)
    assert len(queries) == 1


@pytest.mark.parametrize(
    "unsure",
    [
        UnsureChannel("flaky", TransientDeliveryError("the provider's API is down")),
        UnsureChannel("sloppy", "yes, probably"),
        BlindChannel(),
    ],
    ids=["lookup-raises", "lookup-answers-garbage", "no-lookup"],
)
def test_a_failover_channel_that_cannot_tell_leaves_the_send_unknown(
    build: Build,
    outbox: Path,
    stuck_at_once: None,
    unsure: BlindChannel,
    caplog: pytest.LogCaptureFixture,
) -> None:
    crashy = CrashingOutbox(outbox)
    crashy.write_first = False
    pm, _ = build(ChannelPlugin(crashy, unsure), channels={"text": ["crashy", unsure.name]})
    notification_id = crash(pm, "k1")

    with caplog.at_level(logging.WARNING):
        [record] = run_recovery(pm)
    assert (record.id, record.status, record.detail) == (notification_id, "unknown", UNKNOWN_DETAIL)
    assert unsure.deliveries == 0
    if isinstance(getattr(unsure, "answer", None), Exception):
        assert "flaky cannot tell" in caplog.text


def test_recovery_leaves_completed_sends_alone(build: Build, stuck_at_once: None) -> None:
    pm, _ = build()
    result = submit(pm, "k1")
    assert run_recovery(pm, older_than_seconds=0) == []
    assert submit(pm, "k1") == {**result, "duplicate": True}


def test_ondemand_recover_settles_stuck_sends_through_the_configured_channels(
    build: Build, tmp_path: Path, outbox: Path
) -> None:
    # The outbox the command routes texts to is where the dead worker's channel wrote.
    crashy = CrashingOutbox(outbox)
    pm, host = build(ChannelPlugin(crashy), channels={"text": "crashy"})
    written = crash(pm, "k1")
    crashy.write_first = False
    never_left = crash(pm, "k2")
    database = ["--database-url", host.plugin_config["database_url"]]  # type: ignore[index]
    env = {"ONDEMAND_OUTBOX_DIR": str(outbox)}

    not_yet = run_ondemand(*database, "recover", home=tmp_path / "home", env=env)
    assert (not_yet.returncode, not_yet.stdout) == (
        0,
        "0 unfinished send(s): 0 sent, 0 failed, 0 still unknown.\n",
    )
    assert statuses(pm) == {written: "sending", never_left: "sending"}

    done = run_ondemand(
        *database, "recover", "--older-than", "0", "--json", home=tmp_path / "home", env=env
    )
    assert done.returncode == 0, done.stderr
    rows = {row["notification_id"]: row for row in json.loads(done.stdout)}
    assert {nid: (row["practice_id"], row["status"]) for nid, row in rows.items()} == {
        written: ("demo", "delivered"),
        never_left: ("demo", "failed"),
    }
    assert statuses(pm) == {written: "delivered", never_left: "failed"}
    assert crashy.deliveries == 2
    assert [path.stem for path in outbox.rglob("*.json")] == [written]
