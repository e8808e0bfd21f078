"""The send's own cost on each backend: the median time of one send to the outbox, in ms.

Each backend gets a fresh database (a new SQLite file, a new PostgreSQL schema, a new MariaDB
database, dropped at the end) and one plugin manager; after a warm-up, every send is timed on its
own, and the median of all of them is reported (the median, not the mean: a send that waits on
the machine's other work is not the store's cost).

To compare two versions of the plugin, run this alternately with each on the path, in one
sitting (``PYTHONPATH=/path/to/other/checkout python bench/bench_send.py``): the machine's noise
then falls on both alike.

Run: python bench/bench_send.py [--sends N] [--backends sqlite,postgresql,mariadb]
     [--postgres-url URL] [--mariadb-url URL]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from _common import database, send_text_to_mei

from ondemand_plugin.testing import build_plugin_manager, demo_host, enable_addon

WARM_UP = 50
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_MARIADB_URL = "mysql://root@127.0.0.1:3306/test"


def send_median_ms(database_url: str, folder: Path, sends: int) -> float:
    config = {
        "database_url": database_url,
        "outbox_dir": str(folder / "outbox"),
        "send_window": {"start": "00:00", "end": "24:00"},
    }
    pm: Any = build_plugin_manager(demo_host(config))
    enable_addon(pm, "demo")
    run = uuid.uuid4().hex
    for number in range(WARM_UP):  # connections opened, validators compiled, caches filled
        send_text_to_mei(pm, f"warm-{run}-{number}")
    times = []
    for number in range(sends):
        began = time.perf_counter()
        send_text_to_mei(pm, f"{run}-{number}")
        times.append(time.perf_counter() - began)
    pm.hook.pm_unconfigure(plugin_manager=pm)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sends", type=int, default=1000)
    parser.add_argument("--backends", default="sqlite,postgresql,mariadb")
    parser.add_argument(
        "--postgres-url", default=os.environ.get("ONDEMAND_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    )
    parser.add_argument(
        "--mariadb-url", default=os.environ.get("ONDEMAND_TEST_MARIADB_URL", DEFAULT_MARIADB_URL)
    )
    arguments = parser.parse_args()
    servers = {"postgresql": arguments.postgres_url, "mariadb": arguments.mariadb_url}
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        for backend in arguments.backends.split(","):
            with database(backend, folder, servers.get(backend)) as url:
                median = send_median_ms(url, folder, arguments.sends)
            print(f"{backend:<11} send median {median:7.3f} ms", flush=True)


if __name__ == "__main__":
    main()
