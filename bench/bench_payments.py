"""What the walk-through to payment costs: the dialog's status poll and a tracked pay link's
redirect, on SQLite and (when a server answers) PostgreSQL. "Own" is the plugin's time: the host's
hook calls (pluggy's cost and the host's answers, measured alone in the same run) taken out.

- The status poll (step "status"): one read by primary key, no host hook.
- A pay link's first opening: link_opened_at written, then 303 to the QuickPay link asked for then
  (pm_practice, pm_guarantor, pm_quickpay_link).
- The same link opened again (nothing written).

Run: python bench/bench_payments.py [--rounds N] [--links N] [--postgres URL]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pluggy
from _common import CONTEXT, PATIENT, best_per_call, database, send_text_to_mei
from bench_plugin import BenchHost, bare_hook_call

from ondemand_plugin.testing import build_plugin_manager, enable_addon

BASE = "https://pay.maple.example/plugins/"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_answers(url: str) -> bool:
    import psycopg

    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.Error:
        return False
    return True


def open_link(pm: pluggy.PluginManager, token: str) -> Callable[[], Any]:
    def run() -> None:
        answer = pm.hook.pm_inbound_request(
            plugin_name="ondemand",
            method="GET",
            path=f"pay/{token}",
            url=f"{BASE}ondemand/pay/{token}",
            headers={"User-Agent": "Mozilla/5.0 (iPhone)"},
            form={},
            body="",
        )
        assert answer["status"] == 303, answer

    return run


def host_answers(host: BenchHost) -> Callable[[], Any]:
    """What the host itself spends on the three lookups an opening makes."""
    from decimal import Decimal

    def lookups() -> None:
        host.pm_practice("demo")
        host.pm_guarantor("demo", "g-mei")
        host.pm_quickpay_link("demo", "g-mei", Decimal("120.50"))

    return lookups


def measure(url: str, folder: Path, rounds: int, links: int) -> dict[str, float]:
    host = BenchHost(folder)
    assert host.plugin_config is not None
    host.plugin_config.update(database_url=url, link_base_url=BASE)
    pm = build_plugin_manager(host)
    try:
        enable_addon(pm, "demo")
        sent = [send_text_to_mei(pm, f"bench-{number}") for number in range(links * rounds + 1)]
        tokens = [re.findall(r"/pay/([\w-]+)", result["body"])[0] for result in sent]
        notification_id = sent[0]["notification_id"]

        def poll() -> None:
            pm.hook.pm_dashboard_action(
                action_id="ondemand.send_balance_notification",
                step="status",
                subject=PATIENT,
                payload={"notification_id": notification_id},
                context=CONTEXT,
            )

        fresh: Iterator[str] = iter(tokens[1:])

        def first_opening() -> None:
            open_link(pm, next(fresh))()

        open_link(pm, tokens[0])()  # opened once: the repeats write nothing
        host.calls.clear()
        figures = {
            "hook": best_per_call(bare_hook_call(), 20000, rounds),
            "host": best_per_call(host_answers(host), 5000, rounds),
            "poll": best_per_call(poll, 2000, rounds),
            "first": best_per_call(first_opening, links, rounds),
            "again": best_per_call(open_link(pm, tokens[0]), links, rounds),
        }
    finally:
        pm.hook.pm_unconfigure(plugin_manager=pm)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--links", type=int, default=200, help="first openings per round")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="a server URL ('' skips it)")
    arguments = parser.parse_args()
    backends = ["sqlite"]
    if arguments.postgres and postgres_answers(arguments.postgres):
        backends.append("postgresql")
    with tempfile.TemporaryDirectory() as directory:
        for backend in backends:
            folder = Path(directory) / backend
            with database(backend, folder, arguments.postgres) as url:
                figures = measure(url, folder, arguments.rounds, arguments.links)
            hook, host = figures["hook"], figures["host"]
            # The status poll is one hook call (the host's own); an opening is that and three
            # more, each answered by the host.
            print(f"{backend}")
            print(f"  bare pluggy hook call            {hook * 1e6:8.1f} µs")
            print(
                f"  status poll                      {figures['poll'] * 1e6:8.1f} µs"
                f"   own {(figures['poll'] - hook) * 1e6:8.1f} µs"
            )
            for label, key in (
                ("pay link, first opening", "first"),
                ("pay link, opened again", "again"),
            ):
                own = figures[key] - 4 * hook - host
                print(f"  {label:<32} {figures[key] * 1e6:8.1f} µs   own {own * 1e6:8.1f} µs")


if __name__ == "__main__":
    sys.exit(main())
