"""A send through the ``smtp`` and ``webhook`` channels against Apprise (``mailto://`` and
``json://``) sending the same message to the same local servers, in the same run.

The servers are the tests' own peers on loopback: an aiosmtpd SMTP server and an HTTP receiver.
Apprise's throttle between e-mails (several seconds by default) is switched off, so that both
sides send as fast as they can; the figure is the fastest round's time per send.

Install Apprise for the bench only (it is no dependency of the plugin):
    .venv/bin/pip install apprise
Run: python bench/bench_channels.py [--sends N] [--rounds N]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from peers.smtp import SmtpPeer
from peers.webhook import WebhookPeer

from ondemand_plugin.channels.smtp import SmtpChannel
from ondemand_plugin.channels.webhook import WebhookChannel
from ondemand_plugin.testing.conformance import sample_message

try:
    import apprise
except ImportError:
    sys.exit("Apprise is needed for the comparison: .venv/bin/pip install apprise")


def best_per_send(send: Callable[[], Any], sends: int, rounds: int) -> float:
    """The fastest round's time per send, in seconds: the least disturbed by the machine."""
    send()  # warm up: imports, first connections
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(sends):
            send()
        best = min(best, (time.perf_counter() - start) / sends)
    return best


def apprise_sender(url: str, title: str, body: str) -> Callable[[], None]:
    notifier = apprise.Apprise()
    if not notifier.add(url):
        sys.exit(f"Apprise does not accept the URL {url}")
    for plugin in notifier:
        plugin.request_rate_per_sec = 0  # no pause between sends

    def send() -> None:
        if not notifier.notify(title=title, body=body):
            raise RuntimeError("Apprise failed to send")

    return send


def mailto_url(port: int) -> str:
    query = urlencode(
        {
            "from": "billing@maplestreet.example.com",
            "name": "Maple Street Pediatrics",
            "to": "mei.chen@example.com",
            "smtp": "127.0.0.1",
            "mode": "insecure",
            "format": "text",
        }
    )
    return f"mailto://{quote('billing')}@127.0.0.1:{port}?{query}"


def compare(label: str, ours: Callable[[], Any], theirs: Callable[[], Any], args: Any) -> None:
    ours_time = best_per_send(ours, args.sends, args.rounds)
    theirs_time = best_per_send(theirs, args.sends, args.rounds)
    print(
        f"{label:<28} ours {1 / ours_time:8.0f} sends/s ({ours_time * 1e3:6.2f} ms)   "
        f"Apprise {1 / theirs_time:8.0f} sends/s ({theirs_time * 1e3:6.2f} ms)   "
        f"ours is {theirs_time / ours_time:4.1f}x as fast"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sends", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    logging.disable(logging.INFO)  # the SMTP server logs every line it reads

    email = sample_message("email")
    text = sample_message("text")
    with SmtpPeer() as smtp_server, WebhookPeer() as receiver:
        smtp = SmtpChannel(smtp_server.settings())
        compare(
            "smtp vs mailto://",
            lambda: smtp.deliver(email),
            apprise_sender(mailto_url(smtp_server.port), email.subject or "", email.body),
            args,
        )
        webhook = WebhookChannel(receiver.settings())
        json_url = receiver.url.replace("http://", "json://") + "/ondemand/messages"
        compare(
            "webhook vs json://",
            lambda: webhook.deliver(text),
            apprise_sender(json_url, "", text.body),
            args,
        )
        print(
            f"(the SMTP server received {len(smtp_server.received)} e-mails, the receiver "
            f"{len(receiver.requests)} requests)"
        )


if __name__ == "__main__":
    main()
