"""A host that sends through Telnyx and serves the plugin's routes over real HTTP: the loopback
Telnyx posts its signed webhooks to the host's URL, and the Statement/Notification History and
the next send show what they said."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pluggy
import pytest

from ondemand_plugin import SEND_ACTION_ID
from ondemand_plugin.errors import OnDemandError
from ondemand_plugin.testing import build_plugin_manager, demo_host, enable_addon
from ondemand_plugin.testing.pytest_plugin import ondemand_test_config
from ondemand_telnyx import ROUTE_PATH
from ondemand_telnyx.testing import TelnyxGateway

CONTEXT = {"practice_id": "demo", "user": {"id": "u1", "name": "Amy Front"}}
MEI = "+15035550123"
# Full-width letters, as some phone keyboards type them.
FULL_WIDTH_STOP = "".join(chr(ord(letter) + 0xFEE0) for letter in "STOP")
PRACTICE_NUMBER = "+15035550101"


class HostWeb:
    """The host's web server: every request under ``/plugins/<name>/`` goes to
    ``pm_inbound_request``, and its answer back, as the README's wiring does."""

    def __init__(self) -> None:
        self.pm: pluggy.PluginManager | None = None
        web = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                plugin_name, _, path = self.path.removeprefix("/plugins/").partition("/")
                assert web.pm is not None
                answer: dict[str, Any] = web.pm.hook.pm_inbound_request(
                    plugin_name=plugin_name,
                    method="POST",
                    path=path,
                    url=web.url + self.path,
                    headers=dict(self.headers.items()),
                    form={},
                    body=body,
                )
                data = answer["body"].encode()
                self.send_response(answer["status"])
                for name, value in answer["headers"].items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gateway() -> Iterator[TelnyxGateway]:
    with TelnyxGateway() as peer:
        yield peer


@pytest.fixture
def web() -> Iterator[HostWeb]:
    web = HostWeb()
    yield web
    web.close()


@pytest.fixture
def pm(gateway: TelnyxGateway, web: HostWeb, tmp_path: Path) -> Iterator[pluggy.PluginManager]:
    webhook_url = f"{web.url}/plugins/ondemand/{ROUTE_PATH}"
    config = {
        **ondemand_test_config(tmp_path),
        "channels": {"text": ["telnyx"]},
        "telnyx": gateway.settings(webhook_url=webhook_url),
    }
    pm = build_plugin_manager(demo_host(config))
    enable_addon(pm, "demo")
    web.pm = pm
    yield pm
    pm.hook.pm_unconfigure(plugin_manager=pm)


def send_to_mei(pm: pluggy.PluginManager) -> dict[str, Any]:
    result: dict[str, Any] = pm.hook.pm_dashboard_action(
        action_id=SEND_ACTION_ID,
        step="submit",
        subject={"type": "patient", "id": "p-lily"},
        payload={
            "guarantor_id": "g-mei",
            "send_to": {"entity": {"type": "guarantor", "id": "g-mei"}, "mode": "text"},
            "template_id": None,
            "body": "Your balance is {{BalanceDue}}: {{QuickPayLink}}",
        },
        context=CONTEXT,
    )
    return result


def newest_entry(pm: pluggy.PluginManager) -> dict[str, Any]:
    [entries] = pm.hook.pm_history_entries(
        guarantor_id="g-mei", context=CONTEXT, before=None, limit=1
    )
    [entry] = entries
    return dict(entry)


def test_telnyx_s_delivered_shows_in_the_history(
    pm: pluggy.PluginManager, gateway: TelnyxGateway
) -> None:
    result = send_to_mei(pm)
    assert (result["status"], newest_entry(pm)["channel"]) == ("sent", "telnyx")
    [message_id] = gateway.messages
    assert gateway.report(message_id, "sent").status_code == 200
    assert gateway.report(message_id, "delivered").status_code == 200
    assert newest_entry(pm)["status"] == "delivered"
    # A late or replayed ``sent`` does not move it back.
    assert gateway.report(message_id, "sent").status_code == 200
    assert newest_entry(pm)["status"] == "delivered"


def test_a_stop_sent_to_the_practice_refuses_the_next_send(
    pm: pluggy.PluginManager, gateway: TelnyxGateway, web: HostWeb
) -> None:
    send_to_mei(pm)
    url = f"{web.url}/plugins/ondemand/{ROUTE_PATH}"
    stop = gateway.received_event("STOP", sender=MEI, to=PRACTICE_NUMBER)
    assert gateway.post(url, stop).status_code == 200
    with pytest.raises(OnDemandError) as refused:
        send_to_mei(pm)
    assert refused.value.code == "opted_out"
    # The balance text, then the one confirmation of the opt-out.
    [_, confirmation] = [message["text"] for message in gateway.messages.values()]
    assert confirmation.startswith("Maple Street Pediatrics: you are opted out")


def test_a_forged_stop_is_refused_over_http_and_the_next_send_goes_out(
    pm: pluggy.PluginManager, gateway: TelnyxGateway, web: HostWeb
) -> None:
    send_to_mei(pm)
    url = f"{web.url}/plugins/ondemand/{ROUTE_PATH}"
    start = gateway.received_event("START", sender=MEI, to=PRACTICE_NUMBER)
    forged = gateway.post(url, start.replace("START", "STOP"), headers=gateway.signed(start))
    assert forged.status_code == 403
    assert send_to_mei(pm)["status"] == "sent"


def texts_to_mei(gateway: TelnyxGateway) -> list[str]:
    return [str(message["text"]) for message in gateway.messages.values() if message["to"] == MEI]


@pytest.mark.parametrize("words", ["Stop texting me", FULL_WIDTH_STOP, "NO MÁS", "opt-out!"])
def test_a_stop_in_words_through_telnyx_is_an_opt_out(
    pm: pluggy.PluginManager, gateway: TelnyxGateway, web: HostWeb, words: str
) -> None:
    send_to_mei(pm)
    url = f"{web.url}/plugins/ondemand/{ROUTE_PATH}"
    assert gateway.post(url, gateway.received_event(words, MEI, PRACTICE_NUMBER)).status_code == 200
    with pytest.raises(OnDemandError) as refused:
        send_to_mei(pm)
    assert refused.value.code == "opted_out"
    assert "Reply START" in texts_to_mei(gateway)[-1]


def test_a_stop_through_telnyx_before_any_on_demand_text_counts(
    pm: pluggy.PluginManager, gateway: TelnyxGateway, web: HostWeb
) -> None:
    url = f"{web.url}/plugins/ondemand/{ROUTE_PATH}"
    assert (
        gateway.post(url, gateway.received_event("STOP", MEI, PRACTICE_NUMBER)).status_code == 200
    )
    with pytest.raises(OnDemandError) as refused:
        send_to_mei(pm)
    assert refused.value.code == "opted_out"


def test_help_through_telnyx_is_answered_with_the_practice_s_name_and_phone(
    pm: pluggy.PluginManager, gateway: TelnyxGateway, web: HostWeb
) -> None:
    send_to_mei(pm)
    url = f"{web.url}/plugins/ondemand/{ROUTE_PATH}"
    assert (
        gateway.post(url, gateway.received_event("help", MEI, PRACTICE_NUMBER)).status_code == 200
    )
    answer = texts_to_mei(gateway)[-1]
    assert "Maple Street Pediatrics" in answer and "+15035550100" in answer
    assert send_to_mei(pm)["status"] == "sent"


def test_any_other_text_through_telnyx_is_a_patient_reply_in_the_guarantor_s_history(
    pm: pluggy.PluginManager, gateway: TelnyxGateway, web: HostWeb
) -> None:
    sent = send_to_mei(pm)
    url = f"{web.url}/plugins/ondemand/{ROUTE_PATH}"
    question = gateway.received_event("Can I pay on Friday?", MEI, PRACTICE_NUMBER)
    assert gateway.post(url, question).status_code == 200
    reply = newest_entry(pm)
    assert (reply["kind"], reply["text"], reply["channel"]) == (
        "patient_reply",
        "Can I pay on Friday?",
        "telnyx",
    )
    assert reply["in_reply_to"]["notification_id"] == sent["notification_id"]
    assert len(texts_to_mei(gateway)) == 1  # the balance text: the reply is not answered
