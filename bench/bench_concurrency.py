"""Front desks pressing Send at once, through a provider that takes its time to answer.

``--desks`` threads (32) share one plugin manager, as a host's request threads do, and each sends
``--sends`` texts one after another through the ``twilio_sms`` channel to the tests' Twilio peer
on loopback, which answers every message after ``--delay`` seconds (200 ms). The ideal rate is
desks / delay: every desk always waiting on the provider and never on the plugin. The figure is
the rate reached, as a share of the ideal, on SQLite and on PostgreSQL.

PostgreSQL runs in a schema of its own, dropped at the end, on the server named by --postgres-url,
else $ONDEMAND_TEST_POSTGRES_URL; without either, only SQLite is measured.

Run: python bench/bench_concurrency.py [--desks N] [--sends N] [--delay SECONDS]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import pluggy

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _common import database, send_text_to_mei
from peers.http import Slow
from peers.twilio import TwilioPeer

from ondemand_plugin.testing import build_plugin_manager, demo_host, enable_addon
from ondemand_plugin.testing.pytest_plugin import ondemand_test_config


def sends_per_second(pm: pluggy.PluginManager, desks: int, sends: int, label: str) -> float:
    """All desks start together; the rate is every send over the time the last desk finished."""
    start = threading.Barrier(desks + 1)
    failures: list[BaseException] = []

    def desk(number: int) -> None:
        start.wait()
        for send in range(sends):
            try:
                result = send_text_to_mei(pm, f"{label}-{number}-{send}")
                assert result["status"] == "sent", result
            except BaseException as error:
                failures.append(error)

    threads = [threading.Thread(target=desk, args=(number,)) for number in range(desks)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if failures:
        raise SystemExit(f"{len(failures)} sends failed; the first: {failures[0]!r}")
    return desks * sends / elapsed


def measure(url: str, folder: Path, desks: int, sends: int, delay: float) -> float:
    with TwilioPeer() as gateway:
        gateway.rule = lambda number: Slow(delay)
        config = {
            **ondemand_test_config(folder),
            "database_url": url,
            "twilio_sms": gateway.settings(),
            "channels": {"text": "twilio_sms"},
        }
        pm = build_plugin_manager(demo_host(config))
        enable_addon(pm, "demo")
        try:
            sends_per_second(pm, desks, 1, "warm-up")  # connections to the store and provider
            return sends_per_second(pm, desks, sends, "measured")
        finally:
            pm.hook.pm_unconfigure(plugin_manager=pm)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--desks", type=int, default=32)
    parser.add_argument("--sends", type=int, default=5, help="sends per desk")
    parser.add_argument("--delay", type=float, default=0.2, help="the provider's answer time")
    parser.add_argument("--postgres-url", default=os.environ.get("ONDEMAND_TEST_POSTGRES_URL"))
    arguments = parser.parse_args()
    backends = ["sqlite"] + (["postgresql"] if arguments.postgres_url else [])
    ideal = arguments.desks / arguments.delay

    print(
        f"{arguments.desks} desks, {arguments.sends} sends each, provider answers in "
        f"{arguments.delay * 1000:.0f} ms: ideal {ideal:,.1f} sends per second"
    )
    print("| Backend | Sends per second | Share of the ideal |")
    print("| --- | --- | --- |")
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        for backend in backends:
            with database(backend, folder, arguments.postgres_url) as url:
                rate = measure(url, folder, arguments.desks, arguments.sends, arguments.delay)
            print(f"| {backend} | {rate:,.1f} | {rate / ideal:.0%} |", flush=True)


if __name__ == "__main__":
    main()
