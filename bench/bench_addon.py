"""How soon a switch of the add-on reaches another host on the same database (the issue allows 5 s),
and what a switch costs the account manager.

Two plugin managers (two workers) share one database; ``ondemand_plugin.admin.switch_addon`` in the
first, then the second's dashboard actions hook is asked every 5 ms until it agrees.

Run: python bench/bench_addon.py [--switches N] [--postgres-url URL]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import pluggy
from _common import CONTEXT, PATIENT

from ondemand_plugin.admin import switch_addon
from ondemand_plugin.rules.entitlement import REFRESH_SECONDS
from ondemand_plugin.testing import build_plugin_manager, demo_host
from ondemand_plugin.testing.pytest_plugin import ondemand_test_config

POLL_SECONDS = 0.005


def shown(pm: pluggy.PluginManager) -> bool:
    answers = pm.hook.pm_dashboard_actions(dashboard="patient", subject=PATIENT, context=CONTEXT)
    return any(answers)


def manager(database_url: str, folder: Path) -> pluggy.PluginManager:
    folder.mkdir()
    config = {**ondemand_test_config(folder), "database_url": database_url}
    return build_plugin_manager(demo_host(config))


def measure(database_url: str, folder: Path, switches: int) -> tuple[list[float], float, float]:
    """Seconds until the other worker sees each switch; one switch's cost; a no-op's cost."""
    first, second = manager(database_url, folder / "a"), manager(database_url, folder / "b")
    try:
        delays, costs = [], []
        for number in range(switches):
            enabled = number % 2 == 0
            shown(second)  # the other worker has the old state cached
            start = time.perf_counter()
            switch_addon(first, "demo", enabled=enabled, by="Bench", reason="bench")
            costs.append(time.perf_counter() - start)
            while shown(second) != enabled:
                time.sleep(POLL_SECONDS)
            delays.append(time.perf_counter() - start)
        start = time.perf_counter()
        switch_addon(first, "demo", enabled=switches % 2 == 1, by="Bench")
        no_op = time.perf_counter() - start
        return delays, statistics.median(costs), no_op
    finally:
        for pm in (first, second):
            pm.hook.pm_unconfigure(plugin_manager=pm)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--switches", type=int, default=10)
    parser.add_argument("--postgres-url", help="Also on this PostgreSQL database (emptied first).")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        databases = {"sqlite": "sqlite:///" + str(folder / "ondemand.db")}
        if arguments.postgres_url:
            databases["postgresql"] = arguments.postgres_url
        print(f"Another worker re-reads the switch at most every {REFRESH_SECONDS:g} s.")
        print("| Backend | Seen by another worker, median | Worst | One switch | A no-op switch |")
        print("| --- | --- | --- | --- | --- |")
        for backend, url in databases.items():
            place = folder / backend
            place.mkdir()
            delays, cost, no_op = measure(url, place, arguments.switches)
            print(
                f"| {backend} | {statistics.median(delays):.2f} s | {max(delays):.2f} s | "
                f"{cost * 1000:.1f} ms | {no_op * 1000:.1f} ms |"
            )


if __name__ == "__main__":
    main()
