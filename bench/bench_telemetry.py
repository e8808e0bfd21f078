"""What OpenTelemetry costs a send: the median send to the outbox in three worker processes, one
without opentelemetry at all (its import blocked), one with the API and no SDK configured, and
one with the SDK configured as a host would (global providers, spans through a batch processor
to an exporter that drops them, metrics aggregated for a reader). The workers take turns, a batch
of sends each, so that the machine's disturbances fall on all three alike.

Run: python bench/bench_telemetry.py [--batches N] [--sends N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

KINDS = {
    "none": "without opentelemetry",
    "api": "API only, no SDK configured",
    "sdk": "SDK configured",
}


def block_opentelemetry() -> None:
    """As if opentelemetry-api were not installed."""

    class NoOpenTelemetry:
        def find_spec(self, name: str, path: object = None, target: object = None) -> None:
            if name == "opentelemetry" or name.startswith("opentelemetry."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    sys.meta_path.insert(0, NoOpenTelemetry())  # type: ignore[arg-type]


def configure_sdk() -> None:
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Dropping(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(Dropping()))
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))


def worker(kind: str, folder: Path) -> None:
    """Answer each line ``N`` on stdin with the times of N sends, as a JSON list on stdout."""
    if kind == "none":
        block_opentelemetry()
    elif kind == "sdk":
        configure_sdk()
    from _common import send_text_to_mei

    from ondemand_plugin.testing import build_plugin_manager, demo_host, enable_addon
    from ondemand_plugin.testing.pytest_plugin import ondemand_test_config

    pm = build_plugin_manager(demo_host(ondemand_test_config(folder)))
    enable_addon(pm, "demo")
    imported = any(name.startswith("opentelemetry") for name in sys.modules)
    assert imported == (kind != "none"), f"{kind}: opentelemetry imported: {imported}"
    sent = 0
    for line in sys.stdin:
        times = []
        for _ in range(int(line)):
            start = time.perf_counter()
            result = send_text_to_mei(pm, f"bench-{sent}")
            times.append(time.perf_counter() - start)
            assert result["status"] == "sent", result
            sent += 1
        print(json.dumps(times), flush=True)
    pm.hook.pm_unconfigure(plugin_manager=pm)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--sends", type=int, default=100, help="sends per batch")
    parser.add_argument("--worker", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.worker:
        worker(arguments.worker, Path(arguments.dir))
        return

    times: dict[str, list[float]] = {kind: [] for kind in KINDS}
    with tempfile.TemporaryDirectory() as directory:
        workers = {}
        for kind in KINDS:
            folder = Path(directory) / kind
            folder.mkdir()
            workers[kind] = subprocess.Popen(
                [sys.executable, __file__, "--worker", kind, "--dir", str(folder)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        try:
            for _ in range(arguments.batches):
                for kind, process in workers.items():
                    assert process.stdin is not None and process.stdout is not None
                    process.stdin.write(f"{arguments.sends}\n")
                    process.stdin.flush()
                    answer = process.stdout.readline()
                    if not answer:
                        raise SystemExit(f"the worker {kind!r} stopped")
                    times[kind] += json.loads(answer)
        finally:
            for process in workers.values():
                assert process.stdin is not None
                process.stdin.close()
                process.wait(timeout=60)

    baseline = statistics.median(times["none"])
    print(f"{arguments.batches} batches of {arguments.sends} sends to the outbox, per worker")
    for kind, label in KINDS.items():
        median = statistics.median(times[kind])
        print(
            f"median send, {label:<28} {median * 1e3:7.3f} ms "
            f"({(median / baseline - 1) * 100:+5.1f}% against without)"
        )


if __name__ == "__main__":
    main()
