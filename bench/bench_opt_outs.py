"""What a STOP costs as the number of practices with the add-on grows.

A STOP counts for every practice that sends from the number it was sent to, whether or not it
texted the recipient yet, so the plugin asks the host (``pm_practice``) for each practice with
the add-on. Measured for 10, 100 and 1,000 such practices, each with its own number, against the
reference host (an in-memory ``pm_practice``: a host whose lookup queries a database adds that
query's time once per practice). Each STOP is from a new address; the time is the plugin's, from
``DeliveryEvents.opt_out`` to its return, including the opt-out, the ledger and the confirmation.

Run: python bench/bench_opt_outs.py [--stops N]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

from ondemand_plugin.plugin import instance_of
from ondemand_plugin.testing import build_plugin_manager, demo_host, enable_addon
from ondemand_plugin.testing.pytest_plugin import ondemand_test_config

PRACTICE_COUNTS = (10, 100, 1_000)
DEMO_TEXTS_FROM = "+15035550101"


def stop_times(practices: int, stops: int) -> tuple[list[float], int]:
    """Seconds per STOP, and the host calls one STOP made."""
    with tempfile.TemporaryDirectory() as directory:
        host = demo_host(ondemand_test_config(Path(directory)))
        pm = build_plugin_manager(host)
        enable_addon(pm, "demo")
        for number in range(practices - 1):
            practice_id = f"pr{number}"
            texts_from = f"+1503555{number:04d}"
            host.add_practice(
                {**host.practices["demo"], "id": practice_id, "text_from": texts_from}
            )
            enable_addon(pm, practice_id)
        events = instance_of(pm).events
        times = []
        for number in range(stops):
            calls_before = len(host.calls)
            began = time.perf_counter()
            events.opt_out("outbox", "text", DEMO_TEXTS_FROM, f"+1971555{number:04d}", text="STOP")
            times.append(time.perf_counter() - began)
        host_calls = len(host.calls) - calls_before
        pm.hook.pm_unconfigure(plugin_manager=pm)
    return times, host_calls


def main() -> None:
    logging.disable(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stops", type=int, default=20)
    stops = parser.parse_args().stops
    print("| Practices with the add-on | One STOP, median | Best | Host calls per STOP |")
    print("| --- | --- | --- | --- |")
    for practices in PRACTICE_COUNTS:
        times, host_calls = stop_times(practices, stops)
        median, best = statistics.median(times) * 1e3, min(times) * 1e3
        print(f"| {practices:,} | {median:.1f} ms | {best:.1f} ms | {host_calls:,} |", flush=True)


if __name__ == "__main__":
    main()
