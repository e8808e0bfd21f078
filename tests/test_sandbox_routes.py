"""The sandbox's pages, through Starlette's test client: a host built on the public contract."""

from __future__ import annotations

import ast
import json
import re
import sqlite3
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

import ondemand_sandbox
from ondemand_plugin.sending import service
from ondemand_sandbox import Sandbox, build_app
from ondemand_sandbox.accounts import SwitchRefused
from ondemand_sandbox.database import Database

SEND_URL = "/practices/demo/send?type=patient&id=p-lily&action=ondemand.send_balance_notification"
TO_MEI_BY_TEXT = {"entity": {"type": "guarantor", "id": "g-mei"}, "mode": "text"}

# The plugin's starter templates, which the demo practice gets with its add-on.
STARTER_LABELS = {"Balance by text", "Balance by e-mail", "Balance by phone call"}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(build_app(tmp_path / "home", "http://testserver")) as test_client:
        yield test_client


def send(client: TestClient, payload: dict[str, Any], url: str = SEND_URL) -> Any:
    response = client.post(url, json=payload)
    return response.status_code, response.json()


def send_to_mei(client: TestClient, key: str = "k1") -> dict[str, Any]:
    status, answer = send(
        client,
        {
            "guarantor_id": "g-mei",
            "send_to": TO_MEI_BY_TEXT,
            "body": "Hi {{GuarantorFirstName}}, you owe {{BalanceDue}}: {{QuickPayLink}}",
            # The sandbox asks before the same message goes again; these sends are not about it.
            "confirm_repeat": True,
            "idempotency_key": key,
        },
    )
    assert status == 200, answer
    result: dict[str, Any] = answer["result"]
    return result


def outbox_files(client: TestClient) -> list[Path]:
    home: Path = client.app.state.sandbox.home  # type: ignore[attr-defined]
    return sorted((home / "outbox" / "demo").glob("*.json"))


def action_buttons(html: str) -> list[str]:
    return re.findall(r"<button[^>]*data-open-action[^>]*>[^<]*</button>", html)


def history_times(html: str) -> list[str]:
    panel = html[html.index('class="grid history"') :]
    return re.findall(r'<time datetime="([^"]+)"', panel)


def test_the_sandbox_imports_the_contract_never_the_plugins_modules() -> None:
    allowed = {"ondemand_plugin.errors", "ondemand_plugin.admin", "ondemand_plugin.boundary.config"}
    for path in Path(ondemand_sandbox.__file__).parent.rglob("*.py"):
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
                if node.module == "ondemand_plugin.boundary.config":
                    assert [alias.name for alias in node.names] == ["read_config_file"]
            for name in names:
                assert name.split(".")[0] != "ondemand_plugin" or name in allowed, (
                    f"{path.name} imports {name}: a host uses hookspecs and the hooks only"
                )


def test_the_patient_dashboard_shows_the_action_on_its_balance_panel(client: TestClient) -> None:
    html = client.get("/practices/demo/patients/p-lily").text
    balance_panel = html[html.index('id="balance-title"') : html.index('id="contact-title"')]
    (button,) = action_buttons(balance_panel)
    assert "Send Balance Notification" in button and "disabled" not in button
    assert "$120.50" in balance_panel and "$0.00" in balance_panel


def test_without_a_batched_statement_the_action_is_disabled_until_a_batch_runs(
    client: TestClient,
) -> None:
    html = client.get("/practices/demo/patients/p-noah").text
    (button,) = action_buttons(html)
    assert "disabled" in button
    assert "batched statement" in html[html.index(button) :]

    done = client.post("/practices/demo/statement-batch")
    assert "statements issued" in done.text

    (button,) = action_buttons(client.get("/practices/demo/patients/p-noah").text)
    assert "disabled" not in button
    grace = client.get("/practices/demo/guarantors/g-grace").text
    assert re.search(r'id="dunning-count">1<', grace)
    assert "Batched statement" in grace


def test_the_guarantor_dashboard_puts_the_action_on_its_history_panel(client: TestClient) -> None:
    html = client.get("/practices/demo/guarantors/g-mei").text
    history_panel = html[html.index('id="history-title"') :]
    (button,) = action_buttons(history_panel)
    assert "type=guarantor" in button and "id=g-mei" in button
    assert re.search(r'id="dunning-count">2<', html)


def test_the_dialog_is_drawn_from_the_open_step(client: TestClient) -> None:
    html = client.get(SEND_URL).text
    assert "Mei Chen · $120.50" in html
    assert "Tom Chen · $0.00 · no payment can be made" in html
    assert 'data-mode="text" data-address="+15035550123"' in html
    assert "Balance by text" in html and "Balance by e-mail" in html
    assert ">-MANAGE-</option>" in html
    assert '<option value="{{QuickPayLink}}">QuickPayLink</option>' in html
    assert "Send Now (F2)" in html and 'aria-keyshortcuts="F2"' in html
    texts = json.loads(re.search(r'id="od-templates">(.*?)</script>', html, re.S).group(1))  # type: ignore[union-attr]
    assert any("{{QuickPayLink}}" in text["body"] for text in texts.values())


def test_a_send_reaches_the_outbox_and_the_history_but_not_the_dunning_count(
    client: TestClient,
) -> None:
    result = send_to_mei(client)
    assert result["status"] == "sent" and result["to"] == "+15035550123"
    (delivered,) = outbox_files(client)
    message = json.loads(delivered.read_text("utf-8"))
    assert message["body"] == result["body"] and message["delivered_at"]

    html = client.get("/practices/demo/guarantors/g-mei").text
    assert "On-Demand" in html and "+15035550123" in html
    assert re.search(r'id="dunning-count">2<', html)

    outbox = client.get("/practices/demo/outbox").text
    assert 'class="bubble"' in outbox
    link = re.search(r'<a href="(http://testserver/plugins/ondemand/pay/[\w-]{22,})">', outbox)
    assert link is not None
    opened = client.get(link.group(1), follow_redirects=False)
    assert opened.status_code == 303
    assert opened.headers["location"] == "http://testserver/pay/demo/g-mei?amount=120.50"


def test_a_refused_send_answers_the_receptionists_sentence_and_sends_nothing(
    client: TestClient,
) -> None:
    status, answer = send(
        client,
        {
            "guarantor_id": "g-ada",
            "send_to": {"entity": {"type": "guarantor", "id": "g-ada"}, "mode": "text"},
            "body": "You owe {{BalanceDue}}",
        },
        url=SEND_URL.replace("p-lily", "p-sam"),
    )
    assert status == 409
    assert answer["error"]["code"] == "opted_out"
    assert "opted out" in answer["error"]["message"]
    assert outbox_files(client) == []


def test_a_modified_number_saved_to_the_record_changes_the_hosts_database(
    client: TestClient,
) -> None:
    status, answer = send(
        client,
        {
            "guarantor_id": "g-mei",
            "send_to": {**TO_MEI_BY_TEXT, "address": "(503) 555-0199", "save_contact": True},
            "body": "You owe {{BalanceDue}}",
        },
    )
    assert status == 200 and answer["result"]["to"] == "+15035550199"
    assert "+15035550199" in client.get("/practices/demo/guarantors/g-mei").text

    status, answer = send(
        client,
        {
            "guarantor_id": "g-mei",
            "send_to": {**TO_MEI_BY_TEXT, "address": "555", "save_contact": True},
            "body": "You owe {{BalanceDue}}",
        },
    )
    assert status == 409 and answer["error"]["code"] == "invalid_address"
    assert len(outbox_files(client)) == 1


def test_quickpay_takes_a_test_payment_once_and_the_history_shows_it(client: TestClient) -> None:
    result = send_to_mei(client)
    tracked = re.search(r"http://testserver(/plugins/ondemand/pay/\S+)", result["body"])
    assert tracked is not None
    opened = client.get(tracked.group(1), follow_redirects=False)
    link = opened.headers["location"].removeprefix("http://testserver")
    page = client.get(link).text
    assert "$120.50" in page and "Pay $120.50 (test payment)" in page

    paid = client.post(link)
    assert paid.status_code == 200
    assert "Thank you: $120.50 was paid" in paid.text
    assert 'id="pay-balance">$0.00<' in paid.text
    back = '<a href="http://testserver/practices/demo/guarantors/g-mei">Mei Chen\'s Guarantor'
    assert back in paid.text

    again = client.post(link)
    assert again.status_code == 409 and "No payment is due" in again.text

    dashboard = client.get("/practices/demo/guarantors/g-mei").text
    assert 'id="guarantor-balance">$0.00<' in dashboard
    assert "QuickPay payment" in dashboard and "$120.50 paid" in dashboard


def test_a_credit_says_no_payment_is_due_and_refuses_one(client: TestClient) -> None:
    page = client.get("/pay/demo/g-ruth").text
    assert "$35.00 credit" in page and "No payment is due at this time." in page
    assert "test payment)</button>" not in page
    refused = client.post("/pay/demo/g-ruth")
    assert refused.status_code == 409 and 'id="pay-balance">$35.00 credit<' in refused.text


def test_the_account_manager_switches_the_addon_with_an_audit_trail(client: TestClient) -> None:
    missing = client.post("/practices/demo/account", data={"by": "Ann", "enabled": "off"})
    assert missing.status_code == 400 and "Give your name and the reason" in missing.text

    done = client.post(
        "/practices/demo/account",
        data={"by": "Ann Manager", "reason": "Trial ended", "enabled": "off"},
    )
    assert done.status_code == 200
    assert "now OFF for practice demo" in done.text
    trail = done.text[done.text.index("Audit trail") :]
    assert trail.index("Ann Manager") < trail.index("Sandbox setup")
    assert "Trial ended" in trail

    # The sandbox switches through its own plugin manager: its pages see the switch at once.
    assert not action_buttons(client.get("/practices/demo/patients/p-lily").text)
    assert not action_buttons(client.get("/practices/demo/guarantors/g-mei").text)
    refused = client.get(SEND_URL)
    assert refused.status_code == 409 and 'data-code="not_entitled"' in refused.text


def test_switching_the_addon_to_the_state_it_has_records_nothing(client: TestClient) -> None:
    again = client.post(
        "/practices/demo/account",
        data={"by": "Ann Manager", "reason": "Double check", "enabled": "on"},
    )
    assert again.status_code == 200
    assert "already ON for practice demo: nothing recorded" in again.text
    trail = again.text[again.text.index("Audit trail") :]
    assert "Ann Manager" not in trail and "Sandbox setup" in trail


def test_a_practice_without_the_addon_shows_no_action(client: TestClient) -> None:
    assert not action_buttons(client.get("/practices/oak/patients/p-omar").text)
    assert "OFF" in client.get("/practices/oak/account").text


def test_the_template_manager_adds_copies_deactivates_and_deletes(client: TestClient) -> None:
    def manage(payload: dict[str, Any]) -> dict[str, Any]:
        response = client.post("/practices/demo/templates", json=payload)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    created = manage(
        {
            "op": "create",
            "template": {"label": "Short", "mode": "text", "body": "Due: {{BalanceDue}}"},
        }
    )["template"]
    copied = manage({"op": "copy", "template_id": created["id"]})["template"]
    manage({"op": "update", "template_id": copied["id"], "template": {"active": False}})
    manage({"op": "delete", "template_id": created["id"]})

    page = client.get("/practices/demo/templates").text
    assert "Copy of Short" in page and 'aria-label="Activate Copy of Short"' in page
    assert '<th scope="row">Short</th>' not in page
    dialog = client.get(SEND_URL).text
    assert "Copy of Short" not in dialog  # inactive templates are not offered

    bad = client.post(
        "/practices/demo/templates",
        json={"op": "create", "template": {"label": "X", "mode": "text", "body": "{{Nope}}"}},
    )
    assert bad.status_code == 409 and bad.json()["error"]["code"] == "unknown_field"


def test_history_pages_merge_both_sources_newest_first_without_gaps(client: TestClient) -> None:
    for number in range(7):
        send_to_mei(client, key=f"k{number}")
        client.post("/practices/demo/statement-batch")
    seen: list[str] = []
    url: str | None = "/practices/demo/guarantors/g-mei"
    pages = 0
    while url:
        html = client.get(url).text
        seen.extend(history_times(html))
        older = re.search(r'<a href="http://testserver([^"#]+)#history-title">Older', html)
        url = older.group(1).replace("&amp;", "&") if older else None
        pages += 1
    # Two seeded statements, seven sends and seven batches.
    assert len(seen) == 16 and len(set(seen)) == 16
    assert seen == sorted(seen, reverse=True)
    assert pages == 2


def test_history_refresh_is_the_panel_alone(client: TestClient) -> None:
    send_to_mei(client)
    fragment = client.get("/practices/demo/guarantors/g-mei/history").text
    assert fragment.lstrip().startswith('<table class="grid history">')
    assert "On-Demand" in fragment


def test_unknown_records_are_not_found(client: TestClient) -> None:
    assert client.get("/practices/nowhere").status_code == 404
    assert client.get("/practices/demo/patients/p-nobody").status_code == 404
    assert client.get("/pay/demo/g-nobody").status_code == 404


def test_a_call_shows_in_the_outbox_as_a_transcript(client: TestClient) -> None:
    status, answer = send(
        client,
        {
            "guarantor_id": "g-ruth",
            "send_to": {"entity": {"type": "guarantor", "id": "g-ruth"}, "mode": "voice"},
            "body": "Hello {{GuarantorFirstName}}, your balance is {{BalanceDue}}.",
        },
        url=SEND_URL.replace("p-lily", "p-ruth"),
    )
    assert status == 200, answer
    outbox = client.get("/practices/demo/outbox").text
    transcript = outbox[outbox.index('class="call"') :]
    assert "Call from +15035550101: transcript" in transcript
    assert "Hello Ruth, your balance is $35.00 credit." in transcript


def test_a_body_that_is_not_json_is_refused_in_json(client: TestClient) -> None:
    response = client.post(SEND_URL, content=b"{oops", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "The request body must be JSON."


def test_a_first_start_that_fails_while_seeding_leaves_no_half_seeded_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"

    def disk_full(*args: Any, **kwargs: Any) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    with monkeypatch.context() as patch:
        patch.setattr(Database, "add_guarantor", disk_full)
        with pytest.raises(sqlite3.OperationalError):
            Sandbox(home, "http://testserver")
    assert not (home / "sandbox.db").exists()

    with TestClient(build_app(home, "http://testserver")) as client:
        page = client.get("/practices/demo/patients/p-lily").text
        assert "Mei Chen" in page and len(action_buttons(page)) == 1


def test_a_first_start_whose_addon_switch_fails_is_finished_by_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"

    def refused(*args: Any, **kwargs: Any) -> str:
        raise SwitchRefused("The plugin's database is locked; try again.")

    with monkeypatch.context() as patch:
        patch.setattr(Sandbox, "switch_addon", refused)
        with pytest.raises(SwitchRefused):
            Sandbox(home, "http://testserver")

    for _start in range(2):
        sandbox = Sandbox(home, "http://testserver")
        try:
            assert len(sandbox.addon_log("demo")) == 1
            listed = sandbox.manage("demo", {"op": "list"})["templates"]
            assert sorted(t["label"] for t in listed) == sorted(STARTER_LABELS)
            assert sandbox.actions("demo", "patient", "p-lily")
        finally:
            sandbox.close()


@pytest.mark.parametrize(
    ("url", "heading"),
    [
        (
            "/practices/oak/send?type=patient&id=p-omar&action=ondemand.send_balance_notification",
            '<h2 id="send-dialog-title">Send Balance Notification</h2>',
        ),
        ("/practices/oak/templates", '<h2 id="template-manager-title">On-Demand templates</h2>'),
    ],
)
def test_a_refusal_keeps_the_heading_that_names_its_dialog(
    client: TestClient, url: str, heading: str
) -> None:
    # base.html names each <dialog> by its heading's id: a refusal drawn in it keeps that name.
    response = client.get(url)
    assert response.status_code == 409
    assert heading in response.text
    assert 'data-code="not_entitled"' in response.text


def test_the_practice_switch_opens_the_practice_it_names(client: TestClient) -> None:
    switched = client.get("/?practice=oak", follow_redirects=False)
    assert switched.headers["location"] == "http://testserver/practices/oak"
    unknown = client.get("/?practice=nowhere", follow_redirects=False)
    assert unknown.headers["location"] == "http://testserver/practices/demo"


def test_the_guarantor_dashboard_names_opt_outs_as_the_office_says_them(
    client: TestClient,
) -> None:
    assert 'id="opted-out-of">texts<' in client.get("/practices/demo/guarantors/g-ada").text
    assert 'id="opted-out-of">nothing<' in client.get("/practices/demo/guarantors/g-mei").text


def test_the_dialog_carries_the_idempotency_key_its_open_step_gave(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "new_idempotency_key", lambda: "key-of-this-dialog")
    html = client.get(SEND_URL).text
    assert 'id="od-key" value="key-of-this-dialog"' in html


def send_to_options(html: str) -> list[dict[str, Any]]:
    """The Send To lines of a dialog: label, mode and the entities each stands for."""
    options = []
    pattern = r'<option value="\d+" data-entities="([^"]*)" data-mode="(\w+)"[^>]*>([^<]*)</option>'
    for entities, mode, label in re.findall(pattern, html):
        options.append(
            {"entities": json.loads(unescape(entities)), "mode": mode, "label": unescape(label)}
        )
    return options


def test_each_send_to_option_carries_whose_balance_it_may_get(client: TestClient) -> None:
    options = send_to_options(client.get(SEND_URL).text)
    mei = next(o for o in options if o["label"].startswith("Mei Chen") and o["mode"] == "text")
    tom = next(o for o in options if o["label"].startswith("Tom Chen"))
    assert mei["entities"] == [{"type": "guarantor", "id": "g-mei", "guarantor_ids": ["g-mei"]}]
    assert tom["entities"] == [{"type": "guarantor", "id": "g-tom", "guarantor_ids": ["g-tom"]}]


def test_a_patient_who_is_their_own_guarantor_has_one_send_to_line_per_number(
    client: TestClient,
) -> None:
    url = SEND_URL.replace("p-lily", "p-ruth")
    options = send_to_options(client.get(url).text)
    assert [o["label"] for o in options] == [
        "Ruth Diaz (patient and guarantor) · Call · +15035550188"
    ]
    assert [(e["type"], e["id"]) for e in options[0]["entities"]] == [
        ("patient", "p-ruth"),
        ("guarantor", "g-ruth"),
    ]


def status_of(client: TestClient, notification_id: str) -> dict[str, Any]:
    answer = client.get(
        "/practices/demo/send/status",
        params={"type": "patient", "id": "p-lily", "notification_id": notification_id},
    )
    assert answer.status_code == 200, answer.text
    status: dict[str, Any] = answer.json()
    return status


def test_the_timeline_follows_a_send_to_delivered_opened_and_paid(client: TestClient) -> None:
    """The status the dialog polls: the outbox delivers, the tracked link is opened, and the
    QuickPay page reports the payment through pm_payment_posted."""
    result = send_to_mei(client)
    first = status_of(client, result["notification_id"])
    assert first["status"] == "delivered"
    assert (first["link_opened_at"], first["paid_at"]) == (None, None)

    tracked = re.search(r"http://testserver(/plugins/ondemand/pay/\S+)", result["body"])
    assert tracked is not None
    assert client.head(tracked.group(1)).status_code == 200  # a preview: not opened
    assert status_of(client, result["notification_id"])["link_opened_at"] is None
    quickpay = client.get(tracked.group(1))  # followed to the QuickPay page
    assert "Pay $120.50 (test payment)" in quickpay.text
    assert status_of(client, result["notification_id"])["link_opened_at"] is not None

    client.post(str(quickpay.url))
    paid = status_of(client, result["notification_id"])
    assert paid["paid_amount"] == "120.50" and paid["paid_at"] is not None
    history = client.get("/practices/demo/guarantors/g-mei").text
    assert "Paid $120.50, 0 minutes after the text." in history


def test_the_status_of_an_unknown_notification_is_refused_in_json(client: TestClient) -> None:
    answer = client.get(
        "/practices/demo/send/status",
        params={"type": "patient", "id": "p-lily", "notification_id": "ntf_nope"},
    )
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "not_found"


def test_the_account_page_shows_the_months_report_with_a_chart(client: TestClient) -> None:
    result = send_to_mei(client)
    send_to_mei(client, key="k2")
    tracked = re.search(r"http://testserver(/plugins/ondemand/pay/\S+)", result["body"])
    assert tracked is not None
    client.post(str(client.get(tracked.group(1)).url))
    html = client.get("/practices/demo/account").text
    assert 'id="report-chart"' in html
    counts = re.findall(r'data-step="(\w+)"></rect>\s*<text[^>]*>(\d+)</text>', html)
    assert counts == [("sent", "2"), ("delivered", "2"), ("links_opened", "1"), ("paid", "1")]
    assert 'id="report-collected">$120.50<' in html
    assert re.search(r'id="report-median">[0-9.]+ minutes<', html)
    assert client.get("/practices/demo/account?month=2026-13").status_code == 400


def test_a_chosen_amount_is_what_quickpay_takes(client: TestClient) -> None:
    status, answer = send(
        client,
        {
            "guarantor_id": "g-mei",
            "send_to": TO_MEI_BY_TEXT,
            "body": "Pay {{AmountDue}} of {{BalanceDue}}: {{QuickPayLink}}",
            "amount": "45.10",
            "idempotency_key": "k-part",
        },
    )
    assert status == 200, answer
    result = answer["result"]
    assert "Pay $45.10 of $120.50" in result["body"]
    tracked = re.search(r"http://testserver(/plugins/ondemand/pay/\S+)", result["body"])
    assert tracked is not None
    quickpay = client.get(tracked.group(1))
    assert str(quickpay.url).endswith("?amount=45.10")
    assert "Pay $45.10 (test payment)" in quickpay.text
    paid = client.post(str(quickpay.url))
    assert 'id="pay-balance">$75.40<' in paid.text
    assert status_of(client, result["notification_id"])["paid_amount"] == "45.10"
    assert client.get("/pay/demo/g-mei?amount=-1").status_code == 400
