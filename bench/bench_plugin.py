"""How much the plugin costs a host, as ratios to baselines measured in the same run.

- The dashboard actions hook (runs on every dashboard render) against a bare pluggy hook call.
- One send to the outbox against a bare SQLite insert-and-commit.

Run: python bench/bench_plugin.py [--rounds N]
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pluggy
from _common import CONTEXT, PATIENT, best_per_call, send_text_to_mei

import hookspecs
from ondemand_plugin.testing import ReferenceHost, build_plugin_manager, demo_host, enable_addon
from ondemand_plugin.testing.pytest_plugin import ondemand_test_config


class BareHost:
    @hookspecs.hookimpl
    def pm_practice(self, practice_id: str) -> dict[str, Any]:
        return {"id": practice_id}


def bare_hook_call() -> Callable[[], Any]:
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    hookspecs.add_hookspecs(pm)
    pm.register(BareHost())
    return lambda: pm.hook.pm_practice(practice_id="demo")


def bare_sqlite_insert(folder: Path) -> Callable[[], Any]:
    connection = sqlite3.connect(folder / "bare.db", isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("CREATE TABLE rows (id INTEGER PRIMARY KEY, body TEXT)")

    def insert() -> None:
        connection.execute("BEGIN")
        connection.execute("INSERT INTO rows (body) VALUES (?)", ("x" * 200,))
        connection.execute("COMMIT")

    return insert


class BenchHost(ReferenceHost):
    """The demo practice, answered as a fast host would: stored records, no copies, no log."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.__dict__.update(demo_host(ondemand_test_config(folder)).__dict__)

    @hookspecs.hookimpl
    def pm_patient(self, practice_id: str, patient_id: str) -> dict[str, Any] | None:
        return self.patients[practice_id].get(patient_id)

    @hookspecs.hookimpl
    def pm_guarantor(self, practice_id: str, guarantor_id: str) -> dict[str, Any] | None:
        return self.guarantors[practice_id].get(guarantor_id)


def host_lookups_only(host: BenchHost) -> Callable[[], Any]:
    """What the host itself spends answering the lookups the actions hook makes."""

    def lookups() -> None:
        host.pm_patient("demo", "p-lily")
        host.pm_guarantor("demo", "g-mei")

    return lookups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--dir", default=None, help="where the SQLite files and the outbox go (default: a temp dir)"
    )
    arguments = parser.parse_args()
    rounds = arguments.rounds

    with tempfile.TemporaryDirectory(dir=arguments.dir) as directory:
        folder = Path(directory)
        host = BenchHost(folder)
        pm = build_plugin_manager(host)
        enable_addon(pm, "demo")

        def actions() -> None:
            pm.hook.pm_dashboard_actions(dashboard="patient", subject=PATIENT, context=CONTEXT)

        counter = iter(range(10**9))

        def send() -> None:
            send_text_to_mei(pm, f"bench-{next(counter)}")

        hook_call = best_per_call(bare_hook_call(), 20000, rounds)
        lookups = best_per_call(host_lookups_only(host), 20000, rounds)
        actions_call = best_per_call(actions, 20000, rounds)
        insert = best_per_call(bare_sqlite_insert(folder), 2000, rounds)
        send_call = best_per_call(send, 300, rounds)
        pm.hook.pm_unconfigure(plugin_manager=pm)

    # The hook as the host calls it makes three hook calls: its own and two host lookups.
    own_actions = actions_call - 3 * hook_call - lookups
    print(f"bare pluggy hook call          {hook_call * 1e6:8.2f} µs")
    print(f"bare SQLite insert+commit      {insert * 1e6:8.2f} µs")
    print(
        f"pm_dashboard_actions           {actions_call * 1e6:8.2f} µs "
        f"= {actions_call / hook_call:5.1f} x a bare hook call"
    )
    print(f"  of which the plugin's own     {own_actions * 1e6:8.2f} µs")
    print(
        f"one send to the outbox         {send_call * 1e3:8.3f} ms "
        f"= {send_call / insert:5.1f} x a bare SQLite insert+commit"
    )


if __name__ == "__main__":
    main()
