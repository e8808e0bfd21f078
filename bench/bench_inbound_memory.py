"""What requests from the open internet leave behind in a worker: memory kept after unsigned and
garbage requests through pm_inbound_request, measured once they are answered and collected.

- Unsigned 1 MB POSTs to twilio/status, each another message (refused: too large).
- Unsigned POSTs just under the size limit, each another message (refused: no signature).
- Garbage: text that is not UTF-8, other paths and methods, forged signatures, long URLs.

Each phase reports the memory Python still holds (tracemalloc, after a collection) and the
process's resident set (RSS), before and after. Memory is not judged here: it is reported.

Run: python bench/bench_inbound_memory.py [--requests N] [--megabytes M]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import sys
import tempfile
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import pluggy
from peers.twilio import TwilioPeer
from peers.twilio_signature import sign

from ondemand_plugin.errors import OnDemandError
from ondemand_plugin.testing import build_plugin_manager, demo_host
from ondemand_plugin.testing.pytest_plugin import ondemand_test_config

TOKEN = "9f3a2b1c4d5e6f708192a3b4c5d6e7f8"
URL = "https://pm.example.com/plugins/ondemand/twilio/status"
# Just under the plugin's 64 KiB limit, with the other fields and the separators.
UNDER_LIMIT = 60 * 1024


def resident_bytes() -> int:
    """The process's resident set now (Linux), else 0."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * 4096
    except OSError:
        return 0


def call(pm: pluggy.PluginManager, **changes: Any) -> None:
    arguments: dict[str, Any] = {
        "plugin_name": "ondemand",
        "method": "POST",
        "path": "twilio/status",
        "url": URL,
        "headers": {"Content-Type": "application/x-www-form-urlencoded"},
        "form": {},
        "body": "",
        **changes,
    }
    # A malformed call from the host is refused by raising: garbage too.
    with contextlib.suppress(OnDemandError):
        pm.hook.pm_inbound_request(**arguments)


def unsigned_posts(size: int) -> Callable[[int], dict[str, Any]]:
    padding = "x" * size

    def request(number: int) -> dict[str, Any]:
        form = {"MessageSid": f"SM{number:032d}", "MessageStatus": "delivered", "Body": padding}
        body = f"MessageSid=SM{number:032d}&MessageStatus=delivered&Body={padding}"
        return {"form": form, "body": body}

    return request


def garbage(number: int) -> dict[str, Any]:
    sid = f"SM{number:032d}"
    form = {"MessageSid": sid, "MessageStatus": "delivered"}
    kinds: list[dict[str, Any]] = [
        {"form": {**form, "Body": "caf\udce9 " + sid}},  # bytes decoded with surrogateescape
        {"form": {"\ud800" + sid: "x"}},
        {"url": f"{URL}?n=\udcff{sid}"},
        {"headers": {"X-Twilio-Signature": "\udcff" + sid}},
        {"path": f"twilio/{sid}"},
        {"method": "GET", "form": form},
        {"form": form, "headers": {"X-Twilio-Signature": sign(URL, form, "guessed" + sid)}},
        {"url": URL + "?q=" + "y" * 5000 + sid},
        {"body": "\x00\xff" * 100 + sid, "form": {"Body": sid}},
        {"form": {"Body": number}},  # not text at all: the host's mistake, raised
    ]
    return kinds[number % len(kinds)]


def run(pm: pluggy.PluginManager, requests: Iterator[dict[str, Any]]) -> None:
    """Each request in turn; the last one goes with this call's frame, as with a host's."""
    for changes in requests:
        call(pm, **changes)


def phase(pm: pluggy.PluginManager, requests: Iterator[dict[str, Any]]) -> tuple[int, int]:
    """The bytes Python and the process still hold after ``requests``: (traced, resident)."""
    gc.collect()
    traced_before, resident_before = tracemalloc.get_traced_memory()[0], resident_bytes()
    run(pm, requests)
    gc.collect()
    return (
        tracemalloc.get_traced_memory()[0] - traced_before,
        resident_bytes() - resident_before,
    )


def main() -> None:
    logging.disable(logging.WARNING)  # the refusals' warnings are not what is measured
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--megabytes", type=int, default=1)
    options = parser.parse_args()
    count = options.requests
    large = unsigned_posts(options.megabytes * 1024 * 1024)
    under = unsigned_posts(UNDER_LIMIT)
    with tempfile.TemporaryDirectory() as directory, TwilioPeer(auth_token=TOKEN) as gateway:
        config = {
            **ondemand_test_config(Path(directory)),
            "twilio_sms": gateway.settings(status_callback_url=URL),
            "channels": {"text": "twilio_sms"},
        }
        pm = build_plugin_manager(demo_host(config))
        for number in range(20):  # first calls load schemas and compile patterns
            for kind in (large, under, garbage):
                call(pm, **kind(-1 - number))
        tracemalloc.start()
        resident_start = resident_bytes()
        results = [
            (
                f"{count} unsigned {options.megabytes} MB POSTs",
                phase(pm, (large(n) for n in range(count))),
            ),
            (
                f"{count} unsigned {UNDER_LIMIT // 1024} KB POSTs",
                phase(pm, (under(n) for n in range(count))),
            ),
            (f"{count} garbage requests", phase(pm, (garbage(n) for n in range(count)))),
        ]
        resident_end = resident_bytes()
        tracemalloc.stop()
        pm.hook.pm_unconfigure(plugin_manager=pm)

    print("memory kept after each phase, once collected")
    print(f"{'phase':<32} {'Python (traced)':>16} {'RSS':>12}")
    for label, (traced, resident) in results:
        print(f"{label:<32} {traced / 1024:>13.1f} KB {resident / 2**20:>9.1f} MB")
    print(f"RSS over all phases: {(resident_end - resident_start) / 2**20:+.1f} MB")


if __name__ == "__main__":
    main()
