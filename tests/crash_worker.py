"""A host worker for ``test_crash.py``: it sends balance notifications one after another until the
test kills it. Its channel dawdles before and after writing the outbox file, so that a kill lands
at any point of a delivery.

    python crash_worker.py DATABASE_URL OUTBOX_DIR JOURNAL KEY_PREFIX

It prints ``ready`` once configured. The journal gets ``deliver <notification id>`` as each
delivery starts and ``done <key> <notification id> <status>`` once a send returned.
"""

from __future__ import annotations

import itertools
import random
import sys
import time
from pathlib import Path
from typing import IO, Any

import pluggy

import hookspecs
from hookspecs import DeliveryReceipt, OutboundMessage, hookimpl
from ondemand_plugin import SEND_ACTION_ID
from ondemand_plugin.channels.outbox import OutboxChannel
from ondemand_plugin.testing import demo_host

CHANNEL = "dawdling"
SUBJECT = {"type": "patient", "id": "p-lily"}
CONTEXT = {"practice_id": "demo", "user": {"id": "u1", "name": "Amy Front"}}
BODY = "Your balance is {{BalanceDue}}: {{QuickPayLink}}"
PAUSE_SECONDS = 0.02


def payload(key: str) -> dict[str, Any]:
    return {
        "guarantor_id": "g-mei",
        "send_to": {"entity": {"type": "guarantor", "id": "g-mei"}, "mode": "text"},
        "body": BODY,
        "idempotency_key": key,
    }


def plugin_config(database_url: str, outbox_dir: Path) -> dict[str, Any]:
    return {
        "database_url": database_url,
        "outbox_dir": str(outbox_dir),
        "send_window": {"start": "00:00", "end": "24:00"},
        "channels": {"text": CHANNEL},
        # A send still unfinished past the deadline plus recovery's margin is settled by the next
        # worker's start and by a history read: with the default deadline (10 s), the first
        # sends cut short would be settled while the kills go on, whenever the thirty workers'
        # starts take longer than 40 s (a loaded machine), and not be left for the test to see.
        "deadline_seconds": 300,
    }


class DawdlingOutbox(OutboxChannel):
    name = CHANNEL

    def __init__(self, directory: Path, journal: IO[str]) -> None:
        super().__init__(directory)
        self.journal = journal

    def deliver(self, message: OutboundMessage) -> DeliveryReceipt:
        self.journal.write(f"deliver {message.notification_id}\n")
        self.journal.flush()
        time.sleep(random.uniform(0, PAUSE_SECONDS))
        receipt = super().deliver(message)
        time.sleep(random.uniform(0, PAUSE_SECONDS))
        return receipt


class ChannelPlugin:
    def __init__(self, channel: object) -> None:
        self.channel = channel

    @hookimpl
    def ondemand_delivery_channels(self, config: dict[str, Any]) -> list[Any]:
        return [self.channel]


def build(database_url: str, outbox_dir: Path, channel: object) -> pluggy.PluginManager:
    """A plugin manager as a host builds one, with ``channel`` routed for texts."""
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    hookspecs.add_hookspecs(pm)
    pm.register(demo_host(plugin_config(database_url, outbox_dir)), name="host")
    pm.register(ChannelPlugin(channel), name="crash-test-channel")
    pm.load_setuptools_entrypoints(hookspecs.PROJECT_NAME)
    pm.hook.pm_configure.call_historic(kwargs={"plugin_manager": pm})
    return pm


def submit(pm: pluggy.PluginManager, key: str) -> dict[str, Any]:
    result: dict[str, Any] = pm.hook.pm_dashboard_action(
        action_id=SEND_ACTION_ID, step="submit", subject=SUBJECT, payload=payload(key),
        context=CONTEXT,
    )  # fmt: skip
    return result


def main(database_url: str, outbox_dir: str, journal_path: str, prefix: str) -> None:
    with open(journal_path, "a", encoding="utf-8") as journal:
        pm = build(database_url, Path(outbox_dir), DawdlingOutbox(Path(outbox_dir), journal))
        print("ready", flush=True)
        for number in itertools.count():
            key = f"{prefix}-{number}"
            result = submit(pm, key)
            journal.write(f"done {key} {result['notification_id']} {result['status']}\n")
            journal.flush()


if __name__ == "__main__":
    main(*sys.argv[1:])
