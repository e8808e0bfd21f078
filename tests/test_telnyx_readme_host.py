"""The README's Flask wiring of pm_inbound_request, served on loopback, with Telnyx as the text
channel: the loopback Telnyx posts its Ed25519-signed webhooks to it over real HTTP, and the
history and the next send show what they said."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pluggy
import pytest
from conftest import CONTEXT, Build, send_to_mei
from test_inbound_http import flask_example
from werkzeug.serving import make_server

from ondemand_plugin.errors import OnDemandError
from ondemand_telnyx import ROUTE_PATH
from ondemand_telnyx.testing import TelnyxGateway

MEI = "+15035550123"
PRACTICE_NUMBER = "+15035550101"


class ReadmeHost:
    """The README's Flask app, for a plugin manager given once it is built."""

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {"__name__": "host_app"}
        exec(compile(flask_example(), "README.md (Flask example)", "exec"), self.namespace)
        self.server = make_server("127.0.0.1", 0, self.namespace["app"], threaded=True)
        self.webhook_url = f"http://127.0.0.1:{self.server.server_port}/plugins/ondemand/"
        self.webhook_url += ROUTE_PATH
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()


@pytest.fixture
def gateway() -> Iterator[TelnyxGateway]:
    with TelnyxGateway() as peer:
        yield peer


@pytest.fixture
def host_web() -> Iterator[ReadmeHost]:
    web = ReadmeHost()
    yield web
    web.server.shutdown()
    web.thread.join()


@pytest.fixture
def pm(build: Build, gateway: TelnyxGateway, host_web: ReadmeHost) -> pluggy.PluginManager:
    pm, _ = build(
        channels={"text": "telnyx"}, telnyx=gateway.settings(webhook_url=host_web.webhook_url)
    )
    host_web.namespace["pm"] = pm
    return pm


def newest_status(pm: pluggy.PluginManager) -> str:
    [entries] = pm.hook.pm_history_entries(
        guarantor_id="g-mei", context=CONTEXT, before=None, limit=1
    )
    status: str = entries[0]["status"]
    return status


def test_telnyx_reports_delivered_and_a_stop_through_the_readme_s_host(
    pm: pluggy.PluginManager, gateway: TelnyxGateway, host_web: ReadmeHost
) -> None:
    assert send_to_mei(pm)["status"] == "sent"
    [message_id] = gateway.messages
    assert gateway.report(message_id, "delivered").status_code == 200
    assert newest_status(pm) == "delivered"
    stop = gateway.received_event("STOP", sender=MEI, to=PRACTICE_NUMBER)
    assert gateway.post(host_web.webhook_url, stop).status_code == 200
    with pytest.raises(OnDemandError) as refused:
        send_to_mei(pm)
    assert refused.value.code == "opted_out"


def test_a_webhook_not_signed_by_telnyx_is_refused_by_the_readme_s_host(
    pm: pluggy.PluginManager, gateway: TelnyxGateway, host_web: ReadmeHost
) -> None:
    send_to_mei(pm)
    [message_id] = gateway.messages
    body = gateway.status_event(message_id, "delivered")
    unsigned = gateway.post(host_web.webhook_url, body, headers={"Content-Type": "text/json"})
    assert unsigned.status_code == 403
    assert newest_status(pm) == "sent"
