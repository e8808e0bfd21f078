"""The README's Flask wiring of pm_inbound_request, served on loopback, called as Twilio calls it:
signed form posts over real HTTP."""

from __future__ import annotations

import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pluggy
import pytest
from conftest import CONTEXT, Build, send_to_mei
from peers.twilio import TwilioPeer
from peers.twilio_signature import sign
from test_inbound import SMS_TOKEN, twilio_settings
from werkzeug.serving import make_server

from ondemand_plugin.testing import store_of

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def flask_example() -> str:
    match = re.search(r"With \[Flask\].*?```python\n(.*?)```", README, re.DOTALL)
    assert match, "README.md has no Flask example"
    return match.group(1)


@pytest.fixture
def sms_gateway() -> Iterator[TwilioPeer]:
    with TwilioPeer(auth_token=SMS_TOKEN) as gateway:
        yield gateway


@pytest.fixture
def pm(build: Build, sms_gateway: TwilioPeer) -> pluggy.PluginManager:
    pm, _ = build(channels={"text": "twilio_sms"}, twilio_sms=twilio_settings(sms_gateway))
    return pm


@pytest.fixture
def base_url(pm: pluggy.PluginManager) -> Iterator[str]:
    namespace: dict[str, Any] = {"pm": pm, "__name__": "host_app"}
    exec(compile(flask_example(), "README.md (Flask example)", "exec"), namespace)
    server = make_server("127.0.0.1", 0, namespace["app"], threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/plugins/"
    server.shutdown()
    thread.join()


def post(url: str, form: dict[str, str], signature: str | None) -> tuple[int, str, str]:
    headers = {"X-Twilio-Signature": signature} if signature else {}
    data = urllib.parse.urlencode(form).encode()
    call = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(call, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


def status_of(pm: pluggy.PluginManager, notification_id: str) -> str:
    store = store_of(pm)
    [record] = [r for r in store.history("demo", "g-mei", None, 10) if r.id == notification_id]
    return str(record.status)


def test_a_signed_status_callback_over_http_marks_the_text_delivered(
    pm: pluggy.PluginManager, base_url: str
) -> None:
    sent = send_to_mei(pm)
    [record] = store_of(pm).history("demo", "g-mei", None, 1)
    sid = record.provider_message_id
    url = base_url + "ondemand/twilio/status"
    form = {"MessageSid": sid, "MessageStatus": "delivered", "To": "+15035550123"}

    assert post(url, form, None)[0] == 403
    assert post(url, form, sign(url.replace("http:", "https:"), form, SMS_TOKEN))[0] == 403
    assert status_of(pm, sent["notification_id"]) == "sent"

    assert post(url, form, sign(url, form, SMS_TOKEN))[0] == 200
    assert status_of(pm, sent["notification_id"]) == "delivered"


def test_a_stop_over_http_is_answered_with_empty_twiml(
    pm: pluggy.PluginManager, base_url: str
) -> None:
    send_to_mei(pm)
    url = base_url + "ondemand/twilio/inbound"
    form = {"From": "+15035550123", "To": "+15035550101", "Body": "STOP"}
    status, content_type, body = post(url, form, sign(url, form, SMS_TOKEN))
    assert (status, content_type) == (200, "text/xml")
    assert body.endswith("<Response/>")
    assert store_of(pm).is_opted_out("demo", "text", "+15035550123")


def test_paths_of_other_plugins_and_unknown_paths_are_404(base_url: str) -> None:
    assert post(base_url + "billing/twilio/status", {}, None)[0] == 404
    assert post(base_url + "ondemand/twilio/nowhere", {}, None)[0] == 404
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(base_url + "ondemand/twilio/status", timeout=10)
    assert refused.value.code == 405
    assert refused.value.headers["Allow"] == "POST"


@contextmanager
def served_host(build: Build, gateway: TwilioPeer) -> Iterator[pluggy.PluginManager]:
    """The README's Flask host on loopback, its plugin texting through ``gateway`` with the
    status callbacks coming to the host's route."""
    namespace: dict[str, Any] = {"__name__": "host_app"}
    exec(compile(flask_example(), "README.md (Flask example)", "exec"), namespace)
    server = make_server("127.0.0.1", 0, namespace["app"], threaded=True)
    callbacks = f"http://127.0.0.1:{server.server_port}/plugins/ondemand/twilio/status"
    settings = gateway.settings(**{"from": "+15035550101", "status_callback_url": callbacks})
    pm, _ = build(channels={"text": "twilio_sms"}, twilio_sms=settings)
    namespace["pm"] = pm  # the example's route reads the host's plugin manager when called
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield pm
    finally:
        server.shutdown()
        thread.join()


def test_the_gateways_own_callback_reaches_the_history_through_the_host(
    build: Build, sms_gateway: TwilioPeer
) -> None:
    """End to end: the twilio_sms channel sends to the gateway, which calls the host's route back,
    signed, as Twilio would; the host hands it to the plugin and the history shows it."""
    with served_host(build, sms_gateway) as pm:
        notification_id = send_to_mei(pm)["notification_id"]
        [sid] = sms_gateway.created
        assert sms_gateway.status_callback(sid, "delivered").status_code == 200
        assert sms_gateway.status_callback(sid, "sent").status_code == 200  # late, changes nothing
        assert sms_gateway.status_callback(sid, "failed", token="forged").status_code == 403
    assert status_of(pm, notification_id) == "delivered"
    [entry] = pm.hook.pm_history_entries(
        guarantor_id="g-mei", context=CONTEXT, before=None, limit=1
    )[0]
    assert (entry["status"], entry["channel"]) == ("delivered", "twilio_sms")


def test_a_callback_the_gateway_sends_before_answering_the_send_reaches_the_history(
    build: Build, sms_gateway: TwilioPeer
) -> None:
    """Twilio's callback overtakes its answer to the send: over HTTP, through the host's route,
    while the plugin still waits for the SID."""
    answers: list[int] = []
    sms_gateway.before_answering = lambda sid: answers.append(
        sms_gateway.status_callback(sid, "delivered").status_code
    )
    with served_host(build, sms_gateway) as pm:
        notification_id = send_to_mei(pm)["notification_id"]
    assert answers == [200]
    assert status_of(pm, notification_id) == "delivered"
