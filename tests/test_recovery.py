"""Recovery of sends whose worker died mid-delivery: when it runs (a worker starting, a repeated
key, a history read, ``ondemand recover``), what it concludes (unknown, then sent or failed by the
channels' status lookup), and that it never delivers again. A worker's death is played in-process
by a channel raising ``WorkerDied``, a ``BaseException`` nothing in the send flow catches."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pluggy
import pytest
from conftest import CONTEXT, FIRST_TEXT_OPT_OUT, Build, assert_valid, trace_sql
from peers.twilio import TwilioPeer
from test_cli import run_ondemand

from hookspecs import (
    DeliveryReceipt,
    OutboundMessage,
    StatusLookup,
    TransientDeliveryError,
    hookimpl,
)
from ondemand_plugin import SEND_ACTION_ID
from ondemand_plugin.channels.outbox import OutboxChannel
from ondemand_plugin.channels.twilio.sms import TwilioSmsChannel
from ondemand_plugin.errors import OnDemandError
from ondemand_plugin.sending import recovery, service
from ondemand_plugin.sending.recovery import (
    MISSING_CHANNEL_DETAIL,
    NEVER_LEFT_DETAIL,
    UNKNOWN_DETAIL,
)
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
    assert failed["detail"] == NEVER_LEFT_DETAIL.format(channels="crashy")
    sent = submit(again, "k1")
    assert (sent["status"], sent["notification_id"]) == ("sent", written)
    assert "crashy has it (delivered)" in sent["detail"]
    assert sent["body"] == "Your balance is $120.50" + FIRST_TEXT_OPT_OUT
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
    assert (answer["to"], answer["body"]) == (
        "+15035550123",
        "Your balance is $120.50" + FIRST_TEXT_OPT_OUT,
    )
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
    # The page's notifications and its replies: none to settle the send that is not stuck.
    assert len(queries) == 2


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


def dying_after(deliver: Any, *, delivered: bool = True) -> Any:
    """A channel class's ``deliver`` in a worker killed right after (or right before) it."""

    def deliver_then_die(self: object, message: OutboundMessage) -> DeliveryReceipt:
        if delivered:
            deliver(self, message)
        raise WorkerDied

    return deliver_then_die


def recover(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> dict[str, dict[str, Any]]:
    """``ondemand ARGS recover --older-than 0 --json``: its rows by notification id."""
    done = run_ondemand(
        *args, "recover", "--older-than", "0", "--json", home=tmp_path / "home", env=env
    )
    assert done.returncode == 0, done.stderr
    return {row["notification_id"]: row for row in json.loads(done.stdout)}


def write_config(tmp_path: Path, settings: dict[str, Any]) -> str:
    path = tmp_path / "ondemand.json"
    path.write_text(json.dumps(settings), encoding="utf-8")
    return str(path)


def test_ondemand_recover_settles_stuck_sends_through_the_configuration_files_channels(
    build: Build, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pm, host = build()
    monkeypatch.setattr(OutboxChannel, "deliver", dying_after(OutboxChannel.deliver))
    written = crash(pm, "k1")
    monkeypatch.setattr(OutboxChannel, "deliver", dying_after(None, delivered=False))
    never_left = crash(pm, "k2")
    # The hosts' own file: their database and the outbox their worker wrote to.
    config = write_config(tmp_path, dict(host.plugin_config or {}))

    not_yet = run_ondemand("--config", config, "recover", home=tmp_path / "home")
    assert (not_yet.returncode, not_yet.stdout) == (
        0,
        "0 unfinished send(s): 0 sent, 0 failed, 0 still unknown.\n",
    )
    assert statuses(pm) == {written: "sending", never_left: "sending"}

    done = run_ondemand(
        "recover", "--older-than", "0", home=tmp_path / "home", env={"ONDEMAND_CONFIG": config}
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"demo  {written}  delivered",
        f"demo  {never_left}  failed",
        "2 unfinished send(s): 1 sent, 1 failed, 0 still unknown.",
    ]
    assert statuses(pm) == {written: "delivered", never_left: "failed"}
    failed = store_of(pm).notification_by_id("demo", never_left)
    assert failed.detail == NEVER_LEFT_DETAIL.format(channels="outbox")
    outbox = Path(host.plugin_config["outbox_dir"])  # type: ignore[index]
    assert [path.stem for path in outbox.rglob("*.json")] == [written]


@pytest.fixture
def gateway() -> Iterator[TwilioPeer]:
    with TwilioPeer() as peer:
        yield peer


def test_a_text_twilio_accepted_before_its_worker_died_is_never_called_failed(
    build: Build, tmp_path: Path, gateway: TwilioPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    twilio = gateway.settings(**{"from": "+15035550100"})
    pm, host = build(channels={"text": "twilio_sms"}, twilio_sms=twilio)
    monkeypatch.setattr(TwilioSmsChannel, "deliver", dying_after(TwilioSmsChannel.deliver))
    notification_id = crash(pm, "k1")
    assert len(gateway.created) == 1
    database = host.plugin_config["database_url"]  # type: ignore[index]

    # From cron without the hosts' configuration: texts would be routed to the outbox, which
    # never carried this one, so it cannot say it never left.
    [row] = recover(tmp_path, "--database-url", database).values()
    assert (row["notification_id"], row["status"]) == (notification_id, "unknown")
    assert row["detail"] == MISSING_CHANNEL_DETAIL.format(
        channels="twilio_sms", missing="twilio_sms"
    )
    assert "Run ondemand recover with the configuration that has twilio_sms" in row["detail"]

    # With the hosts' file: Twilio has no status lookup, so it stays unknown, and says why.
    config = write_config(tmp_path, dict(host.plugin_config or {}))
    [row] = recover(tmp_path, "--config", config).values()
    assert (row["status"], row["detail"]) == ("unknown", UNKNOWN_DETAIL)
    assert statuses(pm) == {notification_id: "unknown"}
    assert len(gateway.created) == 1  # nothing was sent again


def test_recovery_asks_only_the_channels_the_sends_route_named_when_it_was_claimed(
    build: Build, outbox: Path, stuck_at_once: None
) -> None:
    crashy = CrashingOutbox(outbox)
    crashy.write_first = False
    pm, _ = build(ChannelPlugin(crashy), channels={"text": "crashy"})
    notification_id = crash(pm, "k1")

    # The next worker routes texts to the outbox, which is sure it never got the message: but
    # the outbox did not carry it, and crashy, which did, is not there to ask.
    again, _ = build()
    store = store_of(again)
    record = store.notification_by_id("demo", notification_id)
    assert record is not None and record.route_channels == ("crashy",)
    assert (record.status, record.detail) == (
        "unknown",
        MISSING_CHANNEL_DETAIL.format(channels="crashy", missing="crashy"),
    )
    assert submit(again, "k1")["status"] == "unknown"
    assert crashy.deliveries == 1


def test_sends_no_channel_can_tell_about_never_keep_newer_stuck_sends_from_being_settled(
    build: Build, outbox: Path, stuck_at_once: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recovery, "BATCH", 2)
    blind = BlindChannel()
    blind_pm, _ = build(ChannelPlugin(blind), channels={"text": "blind"})
    untellable = [crash(blind_pm, f"blind-{number}") for number in range(3)]
    run_recovery(blind_pm)
    crashy = CrashingOutbox(outbox)
    pm, _ = build(ChannelPlugin(crashy, BlindChannel()), channels={"text": "crashy"})
    newer = crash(pm, "newer")

    settled = run_recovery(pm)
    assert newer in [record.id for record in settled]
    assert statuses(pm)[newer] == "delivered"
    # Each pass takes the unknown sends looked up longest ago: all take their turn.
    store = store_of(pm)
    for _pass in range(2):
        run_recovery(pm)
    looked_up = [store.notification_by_id("demo", nid).looked_up_at for nid in untellable]
    assert None not in looked_up


def test_a_send_claimed_before_routes_were_recorded_is_settled_by_a_find_never_by_a_miss(
    build: Build, outbox: Path, stuck_at_once: None
) -> None:
    crashy = CrashingOutbox(outbox)
    pm, _ = build(ChannelPlugin(crashy), channels={"text": "crashy"})
    written = crash(pm, "k1")
    crashy.write_first = False
    never_left = crash(pm, "k2")
    # As an older plugin claimed them: without the channels of their route.
    for notification_id in (written, never_left):
        run_sql(pm, "UPDATE notifications SET route_channels = NULL WHERE id = ?", notification_id)

    settled = {record.id: record.status for record in run_recovery(pm)}
    assert settled == {written: "delivered", never_left: "unknown"}


def run_sql(pm: pluggy.PluginManager, statement: str, *parameters: object) -> None:
    store = store_of(pm)
    store.backend.sqlite_connection().execute(statement, parameters)
