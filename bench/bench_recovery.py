"""What crash recovery costs: the pass a worker makes when it starts, and settling stuck sends.

- A start's pass when nothing is stuck, among many settled sends (it runs on every worker start).
- Settling stuck sends through the outbox lookup (half of them found), per send.
- A pass behind a full batch of sends that no channel can tell about: the newer stuck send is
  still settled in that pass (recovery cannot starve), and what the pass costs.

Run: python bench/bench_recovery.py [--rows N] [--stuck N] [--dir PATH]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from hookspecs.types import OutboundMessage
from ondemand_plugin.channels.outbox import OutboxChannel
from ondemand_plugin.clock import utc_now
from ondemand_plugin.sending import recovery
from ondemand_plugin.sending.recovery import Recovery
from ondemand_plugin.stores import Completion, NotificationRecord, Store, open_store


def record(number: int, age: timedelta, route: tuple[str, ...] = ("outbox",)) -> NotificationRecord:
    moment = utc_now() - age
    return NotificationRecord(
        id=f"ntf_{number:012d}",
        practice_id="demo",
        guarantor_id=f"g{number % 1000}",
        idempotency_key=f"key-{number}",
        request_hash="hash",
        occurred_at=moment,
        mode="text",
        recipient="+15035550123",
        sent_to_type="guarantor",
        sent_to_id="g1",
        sent_to_name="Mei Chen",
        sent_by_id="u1",
        sent_by_name="Bench",
        status="sending",
        status_changed_at=moment,
        balance="120.50",
        payment_allowed=True,
        template_label=None,
        route_channels=route,
        result={"status": "unknown", "subject": None, "body": "Your balance is $120.50"},
    )


def fill(store: Store, rows: int) -> None:
    done = Completion(
        "delivered", "Accepted by outbox (delivered).", "outbox", None, {"status": "sent"}
    )
    for number in range(rows):
        store.claim_notification(record(number, timedelta(hours=1)))
        store.complete_notification("demo", f"ntf_{number:012d}", done)


def start_pass(recovery: Recovery, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        recovery.run()
        best = min(best, time.perf_counter() - start)
    return best


def settle(store: Store, outbox: OutboxChannel, first: int, stuck: int) -> float:
    for number in range(first, first + stuck):
        stuck_record = record(number, timedelta(hours=1))
        store.claim_notification(stuck_record)
        if number % 2:
            outbox.deliver(
                OutboundMessage(stuck_record.id, "demo", "text", "+15035550123", "", None, "Hi")
            )
    recovery = Recovery(store, {"text": (outbox,)}, 10.0)
    start = time.perf_counter()
    settled = recovery.run()
    elapsed = time.perf_counter() - start
    assert len(settled) == stuck and {r.status for r in settled} == {"delivered", "failed"}
    return elapsed / stuck


def behind_untellable(store: Store, outbox: OutboxChannel, first: int) -> float:
    """A pass that finds a full batch of sends ``unknown`` that no channel can look up (their
    route's channel is gone), and one newer stuck send the outbox has."""
    for number in range(first, first + recovery.BATCH):
        store.claim_notification(record(number, timedelta(hours=2), route=("gone",)))
    passes = Recovery(store, {"text": (outbox,)}, 10.0)
    passes.run()
    newer = record(first + recovery.BATCH, timedelta(hours=1))
    store.claim_notification(newer)
    outbox.deliver(OutboundMessage(newer.id, "demo", "text", "+15035550123", "", None, "Hi"))
    start = time.perf_counter()
    settled = passes.run()
    elapsed = time.perf_counter() - start
    assert any(r.id == newer.id and r.status == "delivered" for r in settled), "starved"
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="settled sends in the history")
    parser.add_argument("--stuck", type=int, default=500, help="stuck sends to settle")
    parser.add_argument("--dir", type=Path, default=None, help="where the files go")
    arguments = parser.parse_args()
    logging.disable(logging.WARNING)  # one warning per stuck send would drown the figures
    with tempfile.TemporaryDirectory(dir=arguments.dir) as folder:
        store = open_store(f"sqlite:///{Path(folder) / 'ondemand.db'}")
        outbox = OutboxChannel(Path(folder) / "outbox")
        fill(store, arguments.rows)
        pass_seconds = start_pass(Recovery(store, {"text": (outbox,)}, 10.0), rounds=50)
        per_send = settle(store, outbox, arguments.rows, arguments.stuck)
        behind = behind_untellable(store, outbox, arguments.rows + arguments.stuck)
        store.close()
    print(f"a worker start's recovery pass, nothing stuck, {arguments.rows:,} settled sends: "
          f"{pass_seconds * 1e6:.0f} µs")  # fmt: skip
    print(f"settling a stuck send through the outbox lookup: {per_send * 1e6:.0f} µs per send")
    print(f"a pass behind {recovery.BATCH:,} sends no channel can tell about settles the newer "
          f"stuck send: {behind * 1e3:.0f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
