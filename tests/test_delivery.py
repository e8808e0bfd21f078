"""Delivery through channels from other plugins: retries of transient failures within the deadline,
permanent failures at once, failover to the next channel, a failed delivery as a result rather than
an exception, channel routing checked at configure time, and observers told of every send."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pluggy
import pytest
from conftest import CONTEXT, Build, send_to_mei

from hookspecs import (
    DeliveryReceipt,
    OutboundMessage,
    PermanentDeliveryError,
    TransientDeliveryError,
    hookimpl,
)
from ondemand_plugin.channels.outbox import read_outbox
from ondemand_plugin.errors import OnDemandError
from ondemand_plugin.sending import service
from ondemand_plugin.testing import ReferenceHost

SUCCEED = None


class ScriptedChannel:
    """A text channel that fails as its script says; the script's last step repeats forever."""

    def __init__(self, name: str, *script: Exception | None) -> None:
        self.name = name
        self.modes = frozenset({"text"})
        self.script = list(script) or [SUCCEED]
        self.attempts: list[float] = []
        self.delivered: list[OutboundMessage] = []

    def deliver(self, message: OutboundMessage) -> DeliveryReceipt:
        self.attempts.append(time.monotonic())
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if step is not None:
            raise step
        self.delivered.append(message)
        return DeliveryReceipt(status="sent", provider_message_id=f"{self.name}-1")


class ChannelPlugin:
    """A third party's plugin providing channels through the hook."""

    def __init__(self, *channels: ScriptedChannel) -> None:
        self.channels = channels

    @hookimpl
    def ondemand_delivery_channels(self, config: dict[str, Any]) -> list[Any]:
        return list(self.channels)


class Observer:
    def __init__(self) -> None:
        self.seen: list[tuple[dict[str, Any], dict[str, Any]]] = []

    @hookimpl
    def ondemand_notification_sent(self, result: dict[str, Any], context: dict[str, Any]) -> None:
        self.seen.append((dict(result), context))


class BrokenObserver:
    @hookimpl
    def ondemand_notification_sent(self, result: dict[str, Any], context: dict[str, Any]) -> None:
        result["status"] = "tampered"
        raise RuntimeError("metrics server down")


def history(pm: pluggy.PluginManager) -> list[dict[str, Any]]:
    [entries] = pm.hook.pm_history_entries(
        guarantor_id="g-mei", context=CONTEXT, before=None, limit=100
    )
    return list(entries)


def outbox(host: ReferenceHost) -> list[dict[str, Any]]:
    assert host.plugin_config is not None
    return read_outbox(Path(host.plugin_config["outbox_dir"]), "demo")


def transient(retry_after: float | None = None) -> TransientDeliveryError:
    return TransientDeliveryError("The gateway is busy.", retry_after=retry_after)


# Retries


def test_transient_failures_are_retried_until_the_channel_accepts(build: Build) -> None:
    flaky = ScriptedChannel("flaky", transient(), transient(), SUCCEED)
    pm, host = build(ChannelPlugin(flaky), channels={"text": "flaky"})
    result = send_to_mei(pm)
    assert result["status"] == "sent"
    assert len(flaky.attempts) == 3
    [message] = flaky.delivered
    assert (message.notification_id, message.to) == (result["notification_id"], "+15035550123")
    assert "flaky" in result["detail"]
    assert outbox(host) == []  # the configured channel delivered it, not the default
    assert history(pm)[0]["status"] == "sent"


def test_a_retry_waits_at_least_as_long_as_the_provider_asked(build: Build) -> None:
    flaky = ScriptedChannel("flaky", transient(retry_after=0.4), SUCCEED)
    pm, _ = build(ChannelPlugin(flaky), channels={"text": "flaky"})
    assert send_to_mei(pm)["status"] == "sent"
    first, second = flaky.attempts
    assert second - first >= 0.4


def test_a_channel_that_keeps_failing_fails_the_send_within_the_deadline(build: Build) -> None:
    flaky = ScriptedChannel("flaky", transient())
    pm, host = build(ChannelPlugin(flaky), channels={"text": "flaky"}, deadline_seconds=1)
    started = time.monotonic()
    result = send_to_mei(pm)
    elapsed = time.monotonic() - started

    assert result["status"] == "failed"
    assert "flaky" in result["detail"]
    assert "The gateway is busy." in result["detail"]
    assert len(flaky.attempts) >= 2
    assert flaky.attempts[-1] - started <= 1.0  # no attempt starts after the deadline
    assert elapsed < 3.0
    assert outbox(host) == []


def test_a_permanent_error_fails_the_send_at_once(build: Build) -> None:
    refusing = ScriptedChannel("refusing", PermanentDeliveryError("The number is a landline."))
    pm, _ = build(ChannelPlugin(refusing), channels={"text": "refusing"})
    result = send_to_mei(pm)
    assert result["status"] == "failed"
    assert len(refusing.attempts) == 1
    assert "refusing" in result["detail"]
    assert "The number is a landline." in result["detail"]


def test_an_unexpected_exception_fails_the_send_without_raising(build: Build) -> None:
    buggy = ScriptedChannel("buggy", KeyError("oops"))
    pm, _ = build(ChannelPlugin(buggy), channels={"text": "buggy"})
    result = send_to_mei(pm)
    assert result["status"] == "failed"
    assert len(buggy.attempts) == 1
    assert "buggy" in result["detail"]


def test_a_failed_delivery_is_a_result_and_shows_in_history_as_failed(build: Build) -> None:
    refusing = ScriptedChannel("refusing", PermanentDeliveryError("Blocked by the carrier."))
    pm, _ = build(ChannelPlugin(refusing), channels={"text": "refusing"})
    result = send_to_mei(pm)
    [entry] = history(pm)
    assert result["status"] == "failed"
    assert entry["id"] == result["notification_id"]
    assert entry["status"] == "failed"
    assert "failed" in entry["display"]["summary"]


# Failover


def test_a_refusing_channel_fails_over_to_the_next_one(build: Build) -> None:
    broken = ScriptedChannel("broken", PermanentDeliveryError("Account suspended."))
    pm, host = build(ChannelPlugin(broken), channels={"text": ["broken", "outbox"]})
    result = send_to_mei(pm)
    assert result["status"] == "sent"
    assert len(broken.attempts) == 1
    assert "outbox" in result["detail"]
    [message] = outbox(host)
    assert message["notification_id"] == result["notification_id"]
    assert history(pm)[0]["status"] == "delivered"


def test_a_channel_that_keeps_failing_leaves_time_for_the_next_one(build: Build) -> None:
    flaky = ScriptedChannel("flaky", transient())
    pm, host = build(
        ChannelPlugin(flaky), channels={"text": ["flaky", "outbox"]}, deadline_seconds=1
    )
    result = send_to_mei(pm)
    assert result["status"] == "sent"
    assert len(flaky.attempts) >= 2
    assert len(outbox(host)) == 1


# Routing is checked when the plugin is configured.


def test_a_channel_nobody_provides_is_an_invalid_config_at_configure_time(build: Build) -> None:
    with pytest.raises(OnDemandError) as refusal:
        build(channels={"text": "pigeon"})
    assert refusal.value.code == "invalid_config"
    assert refusal.value.field == "channels.text"
    assert "pigeon" in refusal.value.message


def test_a_channel_routed_a_mode_it_cannot_send_is_an_invalid_config(build: Build) -> None:
    with pytest.raises(OnDemandError) as refusal:
        build(ChannelPlugin(ScriptedChannel("flaky")), channels={"email": "flaky"})
    assert refusal.value.code == "invalid_config"
    assert refusal.value.field == "channels.email"


# Observers


def test_observers_are_told_of_each_send_with_its_result(build: Build) -> None:
    observer = Observer()
    refusing = ScriptedChannel("refusing", PermanentDeliveryError("No."))
    pm, _ = build(ChannelPlugin(refusing), observer, channels={"text": ["refusing", "outbox"]})
    result = send_to_mei(pm)
    assert observer.seen == [(result, CONTEXT)]


def test_an_observer_that_raises_does_not_change_the_result(
    build: Build, caplog: pytest.LogCaptureFixture
) -> None:
    observer = Observer()
    pm, host = build(BrokenObserver(), observer)
    with caplog.at_level(logging.WARNING):
        result = send_to_mei(pm)
    assert result["status"] == "sent"
    assert result["duplicate"] is False
    assert len(outbox(host)) == 1
    assert [seen for seen, _ in observer.seen] == [result]
    assert history(pm)[0]["status"] == "delivered"
    assert "BrokenObserver: its ondemand_notification_sent hook raised RuntimeError" in caplog.text
    assert "metrics server down" not in caplog.text  # its text could quote what it was given


# Logs


def test_logs_name_the_channel_but_never_the_address_or_the_message(
    build: Build, caplog: pytest.LogCaptureFixture
) -> None:
    flaky = ScriptedChannel("flaky", PermanentDeliveryError("The gateway refused it."))
    pm, _ = build(ChannelPlugin(flaky), channels={"text": ["flaky", "outbox"]})
    with caplog.at_level(logging.DEBUG, logger="ondemand_plugin"):
        result = send_to_mei(pm, body="Mei Chen owes {{BalanceDue}}")
    assert result["status"] == "sent"
    assert "flaky" in caplog.text and "outbox" in caplog.text
    assert "+15035550123" not in caplog.text
    assert "Mei Chen owes" not in caplog.text and "$120.50" not in caplog.text
    assert "+1***0123" in caplog.text


class WrongAnswerChannel(ScriptedChannel):
    def deliver(self, message: OutboundMessage) -> Any:
        return {"status": "sent"}


def test_a_channel_that_answers_without_a_receipt_fails_the_send(build: Build) -> None:
    pm, _ = build(ChannelPlugin(WrongAnswerChannel("sloppy")), channels={"text": "sloppy"})
    result = send_to_mei(pm)
    assert result["status"] == "failed"
    assert "sloppy answered without a DeliveryReceipt" in result["detail"]
    assert history(pm)[0]["status"] == "failed"


class BlockingChannel(ScriptedChannel):
    """Holds every delivery until the test lets it go."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.entered = threading.Event()
        self.release = threading.Event()

    def deliver(self, message: OutboundMessage) -> DeliveryReceipt:
        self.entered.set()
        self.release.wait(10)
        return super().deliver(message)


def test_a_repeat_of_a_send_still_being_delivered_says_so(
    build: Build, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "DUPLICATE_GRACE_SECONDS", 0.2)
    slow = BlockingChannel("slow")
    pm, _ = build(ChannelPlugin(slow), channels={"text": "slow"}, deadline_seconds=0.3)
    payload = {
        "guarantor_id": "g-mei",
        "send_to": {"entity": {"type": "guarantor", "id": "g-mei"}, "mode": "text"},
        "body": "{{BalanceDue}}",
        "idempotency_key": "double-click",
    }

    def submit() -> Any:
        return pm.hook.pm_dashboard_action(
            action_id="ondemand.send_balance_notification",
            step="submit",
            subject={"type": "patient", "id": "p-lily"},
            payload=payload,
            context=CONTEXT,
        )

    first = ThreadPoolExecutor(1).submit(submit)
    assert slow.entered.wait(5)
    with pytest.raises(OnDemandError) as refused:
        submit()
    assert refused.value.code == "idempotency_in_progress"
    slow.release.set()
    assert first.result(10)["status"] == "sent"
    assert submit()["duplicate"] is True
    assert len(slow.delivered) == 1
