"""What a provider callback costs the host, as ratios to a bare SQLite update-and-commit measured in
the same run.

- A signed Twilio status callback through pm_inbound_request (signature check, lookup by provider
  id, status moved forward): each call settles a different notification.
- The same callback again (already settled: nothing written).
- An unsigned callback (refused before any database work).

Run: python bench/bench_inbound.py [--notifications N]
"""

from __future__ import annotations

import argparse
import itertools
import logging
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import pluggy
from peers.twilio_signature import sign

import hookspecs
from hookspecs import DeliveryReceipt, OutboundMessage, hookimpl
from ondemand_plugin import SEND_ACTION_ID
from ondemand_plugin.extensions import load_plugins
from ondemand_plugin.testing import demo_host
from ondemand_plugin.testing.pytest_plugin import ondemand_test_config

TOKEN = "9f3a2b1c4d5e6f708192a3b4c5d6e7f8"
URL = "https://pm.example.com/plugins/ondemand/twilio/status"
CONTEXT = {"practice_id": "demo", "user": {"id": "u1", "name": "Bench"}}


class StandIn:
    name = "twilio_sms"
    modes = frozenset({"text"})

    def __init__(self) -> None:
        self.numbers = itertools.count(1)

    def deliver(self, message: OutboundMessage) -> DeliveryReceipt:
        return DeliveryReceipt(status="queued", provider_message_id=f"SM{next(self.numbers):032x}")


class StandInPlugin:
    @hookimpl
    def ondemand_delivery_channels(self, config: dict[str, Any]) -> list[Any]:
        return [StandIn()]


def per_call(calls: list[Callable[[], Any]]) -> float:
    start = time.perf_counter()
    for call in calls:
        call()
    return (time.perf_counter() - start) / len(calls)


def bare_updates(folder: Path, count: int) -> list[Callable[[], Any]]:
    connection = sqlite3.connect(folder / "bare.db", isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("CREATE TABLE rows (id INTEGER PRIMARY KEY, sid TEXT UNIQUE, status TEXT)")
    connection.executemany(
        "INSERT INTO rows (sid, status) VALUES (?, 'sent')", [(f"SM{n}",) for n in range(count)]
    )

    def update(sid: str) -> Callable[[], None]:
        def run() -> None:
            connection.execute("BEGIN")
            connection.execute("UPDATE rows SET status = 'delivered' WHERE sid = ?", (sid,))
            connection.execute("COMMIT")

        return run

    return [update(f"SM{n}") for n in range(count)]


def main() -> None:
    logging.disable(logging.WARNING)  # the refused callbacks' warnings are not what is measured
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--notifications", type=int, default=1000)
    count = parser.parse_args().notifications
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        config = {
            **ondemand_test_config(folder),
            "channels": {"text": "twilio_sms"},
            "twilio_sms": {"auth_token": TOKEN},
        }
        host = demo_host(config)
        pm = build_plugin_manager_with(host, StandInPlugin())
        pm.get_plugin("ondemand.instance").entitlement.switch("demo", True, "Bench", "bench")
        for _ in range(count):
            pm.hook.pm_dashboard_action(
                action_id=SEND_ACTION_ID,
                step="submit",
                subject={"type": "patient", "id": "p-lily"},
                context=CONTEXT,
                payload={
                    "guarantor_id": "g-mei",
                    "body": "You owe {{BalanceDue}}",
                    "send_to": {"entity": {"type": "guarantor", "id": "g-mei"}, "mode": "text"},
                },
            )
        sids = [f"SM{n:032x}" for n in range(1, count + 1)]

        def callback(sid: str, signed: bool = True) -> Callable[[], Any]:
            form = {"MessageSid": sid, "MessageStatus": "delivered"}
            headers = {"X-Twilio-Signature": sign(URL, form, TOKEN)} if signed else {}
            return lambda: pm.hook.pm_inbound_request(
                plugin_name="ondemand",
                method="POST",
                path="twilio/status",
                url=URL,
                headers=headers,
                form=form,
                body="",
            )

        bare = per_call(bare_updates(folder, count))
        settling = per_call([callback(sid) for sid in sids])
        repeated = per_call([callback(sid) for sid in sids])
        unsigned = per_call([callback(sid, signed=False) for sid in sids])
        pm.hook.pm_unconfigure(plugin_manager=pm)

    print(f"{count} notifications, one callback each")
    print(f"bare SQLite update-and-commit (WAL)   {bare * 1e6:8.1f} µs   1")
    for label, value in (
        ("signed status callback, settles one", settling),
        ("the same callback again (no write)", repeated),
        ("unsigned callback (refused)", unsigned),
    ):
        print(f"{label:<37} {value * 1e6:8.1f} µs   {value / bare:.1f}")


def build_plugin_manager_with(host: object, plugin: object) -> pluggy.PluginManager:
    """Built as a host builds it, with the stand-in channel registered before configuring."""
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    hookspecs.add_hookspecs(pm)
    pm.register(host, name="host")
    pm.register(plugin, name="twilio-stand-in")
    load_plugins(pm)
    pm.hook.pm_configure.call_historic(kwargs={"plugin_manager": pm})
    return pm


if __name__ == "__main__":
    main()
