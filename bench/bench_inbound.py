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
import logging
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _common import send_text_to_mei
from peers.twilio import TwilioPeer
from peers.twilio_signature import sign

from ondemand_plugin.testing import build_plugin_manager, demo_host, enable_addon
from ondemand_plugin.testing.pytest_plugin import ondemand_test_config

TOKEN = "9f3a2b1c4d5e6f708192a3b4c5d6e7f8"
URL = "https://pm.example.com/plugins/ondemand/twilio/status"


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
    with tempfile.TemporaryDirectory() as directory, TwilioPeer(auth_token=TOKEN) as gateway:
        folder = Path(directory)
        settings = gateway.settings(status_callback_url=URL)
        config = {**ondemand_test_config(folder), "twilio_sms": settings}
        pm = build_plugin_manager(demo_host({**config, "channels": {"text": "twilio_sms"}}))
        enable_addon(pm, "demo")
        for number in range(count):
            send_text_to_mei(pm, f"bench-{number}")
        sids = list(gateway.created)

        def callback(sid: str, signed: bool = True) -> Callable[[], Any]:
            url = gateway.created[sid]["StatusCallback"]
            form = {"MessageSid": sid, "MessageStatus": "delivered"}
            headers = {"X-Twilio-Signature": sign(url, form, TOKEN)} if signed else {}
            return lambda: pm.hook.pm_inbound_request(
                plugin_name="ondemand",
                method="POST",
                path="twilio/status",
                url=url,
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


if __name__ == "__main__":
    main()
