"""How long the sandbox takes to render its busiest screens, through Starlette's test client.

- The Patient Dashboard (the actions hook, the host's records, the page template).
- The Guarantor Dashboard with a full first page of its history (both sources merged).
- The Send Balance Notification dialog (the ``open`` step and the template manager's model).

Each figure is the best round's time per request, the least disturbed by the machine; the aim is
under 20 ms each. Run: python bench/bench_sandbox.py [--rounds N] [--calls N]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import best_per_call
from starlette.testclient import TestClient

from ondemand_sandbox import build_app

AIM_SECONDS = 0.020
SCREENS = {
    "Patient Dashboard": "/practices/demo/patients/p-lily",
    "Guarantor Dashboard, history page of 10": "/practices/demo/guarantors/g-mei",
    "Send Balance Notification dialog": (
        "/practices/demo/send?type=patient&id=p-lily&action=ondemand.send_balance_notification"
    ),
}


def fill_history(client: TestClient) -> None:
    """Enough notifications and statements that the history panel shows a full page."""
    for number in range(8):
        client.post(
            SCREENS["Send Balance Notification dialog"],
            json={
                "guarantor_id": "g-mei",
                "send_to": {"entity": {"type": "guarantor", "id": "g-mei"}, "mode": "text"},
                "body": "Your balance is {{BalanceDue}}: {{QuickPayLink}}",
                "confirm_repeat": True,
                "idempotency_key": f"bench-{number}",
            },
        ).raise_for_status()
    client.post("/practices/demo/statement-batch")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=50)
    options = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as folder,
        TestClient(build_app(Path(folder), "http://testserver")) as client,
    ):
        fill_history(client)
        print(f"{'screen':<42} {'best per render':>16}  aim < {AIM_SECONDS * 1000:.0f} ms")
        for name, url in SCREENS.items():

            def render(url: str = url) -> None:
                client.get(url).raise_for_status()

            render()
            seconds = best_per_call(render, options.calls, options.rounds)
            verdict = "ok" if seconds < AIM_SECONDS else "OVER"
            print(f"{name:<42} {seconds * 1000:>13.2f} ms  {verdict}")


if __name__ == "__main__":
    main()
