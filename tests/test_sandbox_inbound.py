"""The sandbox as the host of the plugin's provider requests: its ``/plugins/`` mount, its
``pm_set_opt_out``, the outbox viewer's reply box, and the delivery status in the history panel."""

from __future__ import annotations

import re
import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from conftest import serving_sandbox
from starlette.testclient import TestClient

from ondemand_plugin.channels.twilio.signature import expected_signature
from ondemand_sandbox import Sandbox, build_app
from ondemand_sandbox.app import templates
from ondemand_sandbox.phone import twilio_signature

INBOUND_URL = "http://testserver/plugins/ondemand/twilio/inbound"
SEND_URL = "/practices/demo/send?type=patient&id=p-lily&action=ondemand.send_balance_notification"
TO_MEI_BY_TEXT = {"entity": {"type": "guarantor", "id": "g-mei"}, "mode": "text"}
MEI = "+15035550123"
PRACTICE_NUMBER = "+15035550101"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(build_app(tmp_path / "home", "http://testserver")) as test_client:
        yield test_client


def sandbox_of(client: TestClient) -> Sandbox:
    sandbox: Sandbox = client.app.state.sandbox  # type: ignore[attr-defined]
    return sandbox


def text_mei(client: TestClient, key: str) -> tuple[int, dict[str, Any]]:
    response = client.post(
        SEND_URL,
        json={
            "guarantor_id": "g-mei",
            "send_to": TO_MEI_BY_TEXT,
            "body": "You owe {{BalanceDue}}: {{QuickPayLink}}",
            "idempotency_key": key,
        },
    )
    answer: dict[str, Any] = response.json()
    return response.status_code, answer


def reply(client: TestClient, body: str, signature: str | None = "sign") -> httpx.Response:
    """Mei's reply, as Twilio posts it to the sandbox's mount; signed with the sandbox's token."""
    # Each reply is another message: the same MessageSid again would be a repeat, ignored.
    form = {"MessageSid": "SM" + secrets.token_hex(16), "From": MEI, "To": PRACTICE_NUMBER}
    form["Body"] = body
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if signature == "sign":
        token = sandbox_of(client).adapter.twilio_auth_token
        signature = expected_signature(INBOUND_URL, form, token)
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    return client.post(INBOUND_URL, content=urlencode(form), headers=headers)


def mei_opts_out_of_texts(client: TestClient) -> bool:
    guarantor = sandbox_of(client).adapter.pm_guarantor("demo", "g-mei")
    assert guarantor is not None
    opted_out: bool = guarantor["opt_out"]["text"]
    return opted_out


def test_the_mount_refuses_an_unsigned_or_wrongly_signed_reply_and_changes_nothing(
    client: TestClient,
) -> None:
    assert text_mei(client, "k1")[0] == 200
    unsigned = reply(client, "STOP", signature=None)
    assert unsigned.status_code == 403
    assert "X-Twilio-Signature" in unsigned.text
    forged = reply(client, "STOP", signature=expected_signature(INBOUND_URL, {}, "guess"))
    assert forged.status_code == 403
    assert not mei_opts_out_of_texts(client)
    assert text_mei(client, "k2")[0] == 200


def test_a_signed_stop_opts_the_number_out_and_the_next_text_is_refused(
    client: TestClient,
) -> None:
    assert text_mei(client, "k1")[0] == 200
    answered = reply(client, "stop")
    assert answered.status_code == 200
    assert answered.headers["content-type"].startswith("text/xml")

    assert mei_opts_out_of_texts(client)
    dashboard = client.get("/practices/demo/guarantors/g-mei").text
    assert 'id="opted-out-of">texts<' in dashboard
    assert re.search(
        r"Mobile \+15035550123</span> <span class=\"opted-out\">opted out of texts \(STOP",
        dashboard,
    )

    status, answer = text_mei(client, "k2")
    assert status == 409
    assert answer["error"]["code"] == "opted_out"
    assert answer["error"]["message"].startswith("Mei Chen opted out of text messages")

    # E-mail is another matter: her address did not opt out.
    email = client.post(
        SEND_URL,
        json={
            "guarantor_id": "g-mei",
            "send_to": {"entity": {"type": "guarantor", "id": "g-mei"}, "mode": "email"},
            "subject": "Your balance",
            "body": "You owe {{BalanceDue}}",
        },
    )
    assert email.status_code == 200, email.text


def test_a_signed_start_opts_the_number_back_in(client: TestClient) -> None:
    assert text_mei(client, "k1")[0] == 200
    assert reply(client, "STOP").status_code == 200
    assert text_mei(client, "k2")[0] == 409

    assert reply(client, "START").status_code == 200
    assert not mei_opts_out_of_texts(client)
    assert "opted out of texts" not in client.get("/practices/demo/guarantors/g-mei").text
    status, answer = text_mei(client, "k3")
    assert status == 200 and answer["result"]["status"] == "sent"


def test_the_mount_answers_only_what_a_plugin_serves(client: TestClient) -> None:
    assert client.post("/plugins/nobody/twilio/inbound").status_code == 404
    assert client.post("/plugins/ondemand/nothing/here").status_code == 404
    wrong_method = client.get("/plugins/ondemand/twilio/inbound")
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "POST"
    # A request the plugin refuses to read is answered in its words.
    too_long = client.post("/plugins/ondemand/" + "x" * 2100)
    assert too_long.status_code == 414
    assert "The request's path is over 2048 characters." in too_long.text


def test_the_sandbox_signs_as_twilio_documents_it() -> None:
    # Twilio's "Webhooks security" guide: auth token 12345, this URL and these parameters.
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    assert twilio_signature(url, params, "12345") == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def test_the_plugin_config_routes_texts_to_the_outbox_and_keeps_the_token_off_pages(
    client: TestClient,
) -> None:
    config = sandbox_of(client).adapter.pm_plugin_config("ondemand")
    assert config is not None
    assert config["channels"] == {"email": "outbox", "text": "outbox", "voice": "outbox"}
    token = config["twilio_sms"]["auth_token"]
    assert text_mei(client, "k1")[0] == 200
    for url in ("/practices/demo/outbox", "/practices/demo/guarantors/g-mei"):
        assert token not in client.get(url).text


def test_the_reply_box_posts_a_signed_reply_over_http_to_the_mount(tmp_path: Path) -> None:
    with serving_sandbox(tmp_path / "home") as url, httpx.Client(base_url=url) as browser:
        sent = browser.post(
            SEND_URL,
            json={
                "guarantor_id": "g-mei",
                "send_to": TO_MEI_BY_TEXT,
                "body": "You owe {{BalanceDue}}",
            },
        )
        assert sent.status_code == 200, sent.text
        outbox = browser.get("/practices/demo/outbox").text
        assert 'name="from" value="+15035550123"' in outbox
        assert "Reply as +15035550123" in outbox

        stopped = browser.post(
            "/practices/demo/outbox/reply",
            data={"from": MEI, "body": "STOP"},
            follow_redirects=True,
        )
        assert stopped.status_code == 200
        assert (
            "Reply “STOP” sent from +15035550123 to +15035550101: the practice received it."
            in stopped.text
        )
        assert "+15035550123 opted out of texts from the practice (STOP," in stopped.text
        refused = browser.post(
            SEND_URL,
            json={"guarantor_id": "g-mei", "send_to": TO_MEI_BY_TEXT, "body": "Again"},
        )
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "opted_out"

        started = browser.post(
            "/practices/demo/outbox/reply",
            data={"from": MEI, "body": "START"},
            follow_redirects=True,
        )
        assert "opted out of texts from the practice" not in started.text
        again = browser.post(
            SEND_URL,
            json={"guarantor_id": "g-mei", "send_to": TO_MEI_BY_TEXT, "body": "Again"},
        )
        assert again.status_code == 200, again.text


def test_a_sandbox_made_before_opt_out_replies_gets_their_table(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with TestClient(build_app(home, "http://testserver")):
        pass
    with sqlite3.connect(home / "sandbox.db") as older:
        older.execute("DROP TABLE contact_opt_out")
    older.close()
    with TestClient(build_app(home, "http://testserver")) as reopened:
        assert text_mei(reopened, "k1")[0] == 200
        assert reply(reopened, "STOP").status_code == 200
        assert mei_opts_out_of_texts(reopened)


def test_an_opt_out_for_a_practice_the_host_does_not_know_is_not_saved(
    client: TestClient,
) -> None:
    context = {"source": "reply", "keyword": "STOP", "channel": "twilio_sms", "changed_at": "x"}
    adapter = sandbox_of(client).adapter
    assert adapter.pm_set_opt_out("nowhere", "text", MEI, True, context) is False
    assert adapter.pm_set_opt_out("demo", "text", MEI, True, context) is True
    assert mei_opts_out_of_texts(client)


def test_a_reply_needs_a_number_and_a_text(client: TestClient) -> None:
    missing = client.post("/practices/demo/outbox/reply", data={"from": MEI, "body": " "})
    assert missing.status_code == 400
    assert "Type a reply" in missing.text


def test_the_history_shows_each_notifications_delivery_status_and_when_it_changed(
    client: TestClient,
) -> None:
    assert text_mei(client, "k1")[0] == 200
    entry = sandbox_of(client).history("demo", "g-mei", {})[0][0]
    panel = client.get("/practices/demo/guarantors/g-mei/history").text
    assert '<th scope="col">Delivery status</th>' in panel
    assert entry["status"] == "delivered"
    badge = (
        '<span class="badge status-delivered">Delivered</span> '
        f'<small class="muted">since <time class="status-changed" '
        f'datetime="{entry["status_changed_at"]}">'
    )
    assert badge in panel


@pytest.mark.parametrize(
    ("status", "words"),
    [
        ("sending", "Sending"),
        ("sent", "Sent"),
        ("delivered", "Delivered"),
        ("undelivered", "Not delivered"),
        ("failed", "Failed"),
        ("unknown", "Not known"),
    ],
)
def test_each_delivery_status_is_shown_in_the_front_desks_words(
    client: TestClient, status: str, words: str
) -> None:
    assert text_mei(client, "k1")[0] == 200
    entry = sandbox_of(client).history("demo", "g-mei", {})[0][0]
    panel = templates.get_template("history_panel.html").render(
        practice=sandbox_of(client).database.practice("demo"),
        entries=[{**entry, "status": status}],
        newest=None,
        older=None,
    )
    assert f'<span class="badge status-{status}">{words}</span>' in panel
