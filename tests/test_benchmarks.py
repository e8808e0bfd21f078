"""The benchmarks still run against the code as it is (tiny sizes; no timing is judged here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.mark.parametrize(
    ("script", "arguments", "printed"),
    [
        ("bench_plugin.py", ["--rounds", "1"], "one send to the outbox"),
        ("bench_sandbox.py", ["--rounds", "1", "--calls", "2"], "Send Balance Notification dialog"),
        ("bench_inbound.py", ["--notifications", "5"], "signed status callback, settles one"),
        ("bench_inbound_memory.py", ["--requests", "3"], "3 unsigned 1 MB POSTs"),
        ("bench_recovery.py", ["--rows", "50", "--stuck", "4"], "settling a stuck send"),
        ("bench_addon.py", ["--switches", "1"], "Seen by another worker"),
        ("bench_telemetry.py", ["--batches", "1", "--sends", "2"], "median send, SDK configured"),
        (
            "bench_payments.py",
            ["--rounds", "1", "--links", "2", "--postgres", ""],
            "status poll",
        ),
        (
            "bench_concurrency.py",
            ["--desks", "4", "--sends", "1", "--delay", "0.05"],
            "Share of the ideal",
        ),
    ],
)
def test_a_benchmark_runs_to_its_report(
    script: str, arguments: list[str], printed: str, tmp_path: Path
) -> None:
    run = subprocess.run(
        [sys.executable, str(BENCH / script), *arguments],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert printed in run.stdout
