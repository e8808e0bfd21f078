"""The walk-through to payment: an amount of the staff's choosing, tracked pay links, payments
reported back by the host, and the status the dialog's timeline polls; on each backend."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pluggy
import pytest
from conftest import CONTEXT, assert_valid, enable_addon, host_on

from ondemand_plugin import SEND_ACTION_ID
from ondemand_plugin.boundary import contracts
from ondemand_plugin.channels.outbox import read_outbox
from ondemand_plugin.clock import utc_now
from ondemand_plugin.errors import OnDemandError
from ondemand_plugin.inbound import links
from ondemand_plugin.sending import progress
from ondemand_plugin.testing import ReferenceHost, build_plugin_manager, store_of

LILY = {"type": "patient", "id": "p-lily"}
RUTH = {"type": "patient", "id": "p-ruth"}
BASE = "https://pay.maple.example/plugins/"
LINK = re.compile(re.escape(BASE) + r"ondemand/pay/([A-Za-z0-9_-]+)")
PHONE_BROWSER = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Mobile/15E148"
IMESSAGE_PREVIEW = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) "
    "Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0"
)


@pytest.fixture
def ondemand_host(database_url: str, tmp_path: Path) -> ReferenceHost:
    """The demo host with tracked links, on each backend in turn."""
    host = host_on(database_url, tmp_path)
    assert host.plugin_config is not None
    host.plugin_config["link_base_url"] = BASE
    return host


@pytest.fixture
def pm(ondemand_pm: pluggy.PluginManager) -> pluggy.PluginManager:
    enable_addon(ondemand_pm)
    return ondemand_pm


def send(
    pm: pluggy.PluginManager,
    *,
    amount: str | None = None,
    body: str = "Hi {{GuarantorFirstName}}, {{AmountDue}} due: {{QuickPayLink}}",
    subject: dict[str, str] = LILY,
    guarantor_id: str = "g-mei",
    mode: str = "text",
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "guarantor_id": guarantor_id,
        "send_to": {"entity": {"type": "guarantor", "id": guarantor_id}, "mode": mode},
        "body": body,
    }
    if amount is not None:
        payload["amount"] = amount
    result: dict[str, Any] = pm.hook.pm_dashboard_action(
        action_id=SEND_ACTION_ID, step="submit", subject=subject, payload=payload, context=CONTEXT
    )
    assert_valid("send-result", result)
    return result


def status(pm: pluggy.PluginManager, notification_id: str) -> dict[str, Any]:
    answer: dict[str, Any] = pm.hook.pm_dashboard_action(
        action_id=SEND_ACTION_ID,
        step="status",
        subject=LILY,
        payload={"notification_id": notification_id},
        context=CONTEXT,
    )
    assert_valid("send-status", answer)
    return answer


def token_in(result: dict[str, Any]) -> str:
    match = LINK.search(result["body"])
    assert match, result["body"]
    return match.group(1)


def open_link(
    pm: pluggy.PluginManager, token: str, method: str = "GET", agent: str = PHONE_BROWSER
) -> dict[str, Any]:
    answers = pm.hook.pm_inbound_request(
        plugin_name="ondemand",
        method=method,
        path=f"pay/{token}",
        url=f"{BASE}ondemand/pay/{token}",
        headers={"User-Agent": agent},
        form={},
        body="",
    )
    answer: dict[str, Any] = answers
    return answer


def post_payment(pm: pluggy.PluginManager, **arguments: Any) -> None:
    pm.hook.pm_payment_posted(
        **{
            "practice_id": "demo",
            "guarantor_id": "g-mei",
            "amount": "45.10",
            "paid_at": "2026-05-01T16:42:07Z",
            "reference": "pops-1",
            "notification_id": None,
            **arguments,
        }
    )


def history(pm: pluggy.PluginManager) -> list[dict[str, Any]]:
    pages = pm.hook.pm_history_entries(guarantor_id="g-mei", context=CONTEXT, before=None, limit=10)
    entries: list[dict[str, Any]] = pages[0]
    for entry in entries:
        assert_valid("history-entry", entry)
    return entries


def refusal(call: Any, *args: Any, **kwargs: Any) -> OnDemandError:
    with pytest.raises(OnDemandError) as refused:
        call(*args, **kwargs)
    return refused.value


# An amount of the staff's choosing


def test_amount_due_shows_the_chosen_amount_and_the_balance_without_one(
    pm: pluggy.PluginManager,
) -> None:
    assert "$45.10 due" in send(pm, amount="45.10")["body"]
    assert "$120.50 due" in send(pm)["body"]


@pytest.mark.parametrize("amount", ["0", "0.00", "-5", "120.51", "45.101", "abc", "1e2", "NaN"])
def test_an_amount_above_the_balance_or_not_above_zero_is_invalid_and_nothing_is_sent(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost, amount: str
) -> None:
    error = refusal(send, pm, amount=amount)
    assert (error.code, error.field) == ("invalid_amount", "amount")
    assert history(pm) == []
    assert ondemand_host.plugin_config is not None
    assert read_outbox(Path(ondemand_host.plugin_config["outbox_dir"]), "demo") == []


def test_a_zero_balance_takes_no_payment_whatever_the_amount(pm: pluggy.PluginManager) -> None:
    """R5: Tom's $0.00 balance can be sent, but asks for no amount and carries no link."""
    tom = {"guarantor_id": "g-tom", "mode": "email"}
    error = refusal(send, pm, amount="10.00", **tom)
    assert error.code == "invalid_amount"
    assert "no payment can be made" in error.message
    result = send(pm, **tom)
    assert "No payment is due at this time." in result["body"]
    assert LINK.search(result["body"]) is None


def test_without_a_link_base_url_the_host_is_asked_for_the_chosen_amount(
    database_url: str, tmp_path: Path
) -> None:
    host = host_on(database_url, tmp_path)
    pm = build_plugin_manager(host)
    try:
        enable_addon(pm)
        result = send(pm, amount="45.10")
        assert "https://pay.example.com/q/demo/g-mei?amount=45.10" in result["body"]
        assert [call["amount"] for call in host.calls_to("pm_quickpay_link")] == [Decimal("45.10")]
    finally:
        pm.hook.pm_unconfigure(plugin_manager=pm)


# Tracked pay links


def test_the_link_is_on_the_hosts_domain_with_128_random_bits_and_asks_the_host_nothing_yet(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    first, second = token_in(send(pm)), token_in(send(pm))
    assert len(first) >= 22 and first != second
    assert ondemand_host.calls_to("pm_quickpay_link") == []


def test_opening_the_link_records_it_and_redirects_to_quickpay_for_the_balance_then(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    result = send(pm, amount="45.10")
    assert status(pm, result["notification_id"])["link_opened_at"] is None
    ondemand_host.guarantors["demo"]["g-mei"]["pops_balance"] = "30.00"  # part paid since
    answer = open_link(pm, token_in(result))
    assert answer["status"] == 303
    assert answer["headers"]["Location"] == "https://pay.example.com/q/demo/g-mei?amount=30.00"
    opened = status(pm, result["notification_id"])["link_opened_at"]
    assert opened is not None
    open_link(pm, token_in(result))
    assert status(pm, result["notification_id"])["link_opened_at"] == opened  # the first time


def test_the_link_asks_for_the_chosen_amount_while_it_is_still_owed(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    answer = open_link(pm, token_in(send(pm, amount="45.10")))
    assert answer["headers"]["Location"].endswith("amount=45.10")


@pytest.mark.parametrize(("method", "agent"), [("HEAD", PHONE_BROWSER), ("GET", IMESSAGE_PREVIEW)])
def test_link_previews_are_not_an_opening(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost, method: str, agent: str
) -> None:
    result = send(pm)
    answer = open_link(pm, token_in(result), method=method, agent=agent)
    assert answer["status"] == 200
    assert status(pm, result["notification_id"])["link_opened_at"] is None
    assert ondemand_host.calls_to("pm_quickpay_link") == []


def test_a_link_paid_in_between_offers_no_payment(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    result = send(pm)
    ondemand_host.guarantors["demo"]["g-mei"]["pops_balance"] = "0.00"
    answer = open_link(pm, token_in(result))
    assert answer["status"] == 200
    assert "nothing to pay" in answer["body"]
    assert ondemand_host.calls_to("pm_quickpay_link") == []


def test_an_expired_link_answers_the_practices_name_and_phone(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = send(pm)
    later = utc_now() + timedelta(seconds=86_401)
    monkeypatch.setattr(links, "utc_now", lambda: later)
    answer = open_link(pm, token_in(result))
    assert answer["status"] == 410
    assert "Maple Street Pediatrics" in answer["body"] and "+15035550100" in answer["body"]
    assert status(pm, result["notification_id"])["link_opened_at"] is None
    assert ondemand_host.calls_to("pm_quickpay_link") == []


def test_the_link_lives_link_ttl_seconds(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = host_on(database_url, tmp_path)
    assert host.plugin_config is not None
    host.plugin_config.update(link_base_url=BASE, link_ttl_seconds=600)
    pm = build_plugin_manager(host)
    try:
        enable_addon(pm)
        token = token_in(send(pm))
        later = utc_now() + timedelta(seconds=601)
        assert open_link(pm, token)["status"] == 303
        monkeypatch.setattr(links, "utc_now", lambda: later)
        assert open_link(pm, token)["status"] == 410
    finally:
        pm.hook.pm_unconfigure(plugin_manager=pm)


@pytest.mark.parametrize(
    "token", ["A" * 22, "short", "../../etc/passwd", "A" * 22 + "/x", "é" * 22, ""]
)
def test_an_unknown_or_malformed_token_is_404(pm: pluggy.PluginManager, token: str) -> None:
    send(pm)
    assert open_link(pm, token)["status"] == 404


def test_the_token_is_kept_only_as_its_hash(pm: pluggy.PluginManager) -> None:
    result = send(pm)
    token = token_in(result)
    record = store_of(pm).notification_by_id("demo", result["notification_id"])
    assert record is not None
    assert record.link_token_hash == links.token_hash(token) != token
    assert token not in repr(record)


def test_a_cancelled_link_expires_now_recorded_with_who(pm: pluggy.PluginManager) -> None:
    result = send(pm)
    [entry] = history(pm)
    assert entry["actions"] == [
        {"id": "resend", "label": "Resend"},
        {"id": "cancel_link", "label": "Cancel the pay link"},
    ]
    pm.hook.pm_dashboard_action(
        action_id=SEND_ACTION_ID,
        step="cancel_link",
        subject=LILY,
        payload={"notification_id": result["notification_id"]},
        context=CONTEXT,
    )
    assert open_link(pm, token_in(result))["status"] == 410
    [entry] = history(pm)
    assert [action["id"] for action in entry["actions"]] == ["resend"]
    assert "Pay link cancelled by Amy Front (u1)." in entry["display"]["summary"]
    again = refusal(
        pm.hook.pm_dashboard_action,
        action_id=SEND_ACTION_ID,
        step="cancel_link",
        subject=LILY,
        payload={"notification_id": result["notification_id"]},
        context=CONTEXT,
    )
    assert again.code == "not_found"


# Payments reported back


def test_a_payment_is_attributed_to_its_notification_and_shown_in_the_history(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    result = send(pm)
    sent_at = history(pm)[0]["occurred_at"]
    paid_at = (utc_now() + timedelta(minutes=3, seconds=10)).isoformat().replace("+00:00", "Z")
    assert sent_at < paid_at
    post_payment(pm, notification_id=result["notification_id"], paid_at=paid_at)
    answer = status(pm, result["notification_id"])
    assert answer["paid_amount"] == "45.10" and answer["paid_at"] is not None
    [entry] = history(pm)
    assert entry["paid_amount"] == "45.10"
    assert "Paid $45.10, 3 minutes after the text." in entry["display"]["summary"]
    assert ondemand_host.guarantors["demo"]["g-mei"]["dunning_count"] == 1  # R3


def test_a_payment_without_a_notification_goes_to_the_latest_live_or_opened_link(
    pm: pluggy.PluginManager,
) -> None:
    older, newer = send(pm), send(pm)
    post_payment(pm)
    assert status(pm, newer["notification_id"])["paid_amount"] == "45.10"
    assert status(pm, older["notification_id"])["paid_amount"] is None


def test_a_payment_after_no_live_link_is_not_kept(
    pm: pluggy.PluginManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = send(pm)
    later = utc_now() + timedelta(days=2)
    monkeypatch.setattr(progress, "utc_now", lambda: later)
    post_payment(pm)
    assert status(pm, result["notification_id"])["paid_at"] is None


def test_an_opened_link_takes_the_payment_after_it_expired(
    pm: pluggy.PluginManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = send(pm)
    open_link(pm, token_in(result))
    later = utc_now() + timedelta(days=2)
    monkeypatch.setattr(progress, "utc_now", lambda: later)
    post_payment(pm)
    assert status(pm, result["notification_id"])["paid_amount"] == "45.10"


def test_a_payment_reported_twice_counts_once_and_two_payments_add_up(
    pm: pluggy.PluginManager,
) -> None:
    result = send(pm)
    post_payment(pm, reference="pops-1")
    post_payment(pm, reference="pops-1")
    post_payment(pm, reference="pops-2", amount="10.00", paid_at="2026-05-01T16:50:00Z")
    answer = status(pm, result["notification_id"])
    assert answer["paid_amount"] == "55.10"
    assert answer["paid_at"] == "2026-05-01T16:42:07.000000Z"


@pytest.mark.parametrize(
    ("arguments", "code", "field"),
    [
        ({"notification_id": "ntf_nope"}, "not_found", "notification_id"),
        ({"guarantor_id": "g-tom", "notification_id": "SENT"}, "not_found", "notification_id"),
        ({"amount": "0.00"}, "invalid_amount", "amount"),
        ({"amount": "45.1O"}, "invalid_request", "amount"),
        ({"paid_at": "yesterday"}, "invalid_request", "paid_at"),
        ({"paid_at": "2026-02-30T10:00:00Z"}, "invalid_request", "paid_at"),
        ({"reference": ""}, "invalid_request", "reference"),
    ],
)
def test_a_bad_payment_report_is_refused_and_nothing_is_kept(
    pm: pluggy.PluginManager, arguments: dict[str, Any], code: str, field: str
) -> None:
    result = send(pm)
    if arguments.get("notification_id") == "SENT":
        arguments = {**arguments, "notification_id": result["notification_id"]}
    error = refusal(post_payment, pm, **arguments)
    assert (error.code, error.field) == (code, field)
    assert status(pm, result["notification_id"])["paid_at"] is None


# The status the dialog polls


def test_status_follows_the_notification_without_asking_the_host(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    result = send(pm)
    ondemand_host.calls.clear()
    answer = status(pm, result["notification_id"])
    assert answer == {
        "notification_id": result["notification_id"],
        "status": "delivered",
        "status_changed_at": answer["status_changed_at"],
        "link_opened_at": None,
        "paid_at": None,
        "paid_amount": None,
    }
    assert ondemand_host.calls == []


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_status_is_marked_stale_with_its_as_of_or_not_at_all(pm: pluggy.PluginManager) -> None:
    answer = status(pm, send(pm)["notification_id"])
    moment = answer["status_changed_at"]
    assert_valid("send-status", {**answer, "stale": True, "as_of": moment})
    for marks in ({"stale": True}, {"as_of": moment}, {"stale": False, "as_of": moment}):
        assert contracts.first_error("send-status", {**answer, **marks}, remember=False)


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"notification_id": "ntf_nope"}, "not_found"),
        ({}, "invalid_request"),
        ([], "invalid_request"),
    ],
)
def test_status_of_an_unknown_notification_is_refused(
    pm: pluggy.PluginManager, payload: Any, code: str
) -> None:
    error = refusal(
        pm.hook.pm_dashboard_action,
        action_id=SEND_ACTION_ID,
        step="status",
        subject=LILY,
        payload=payload,
        context=CONTEXT,
    )
    assert error.code == code


def test_status_of_another_practices_notification_is_not_found(pm: pluggy.PluginManager) -> None:
    result = send(pm)
    other = {**CONTEXT, "practice_id": "other"}
    enable_addon(pm, "other")
    error = refusal(
        pm.hook.pm_dashboard_action,
        action_id=SEND_ACTION_ID,
        step="status",
        subject=LILY,
        payload={"notification_id": result["notification_id"]},
        context=other,
    )
    assert error.code == "not_found"


# Resend from the history


def test_resend_opens_the_dialog_filled_in_as_it_was_with_a_new_key(
    pm: pluggy.PluginManager,
) -> None:
    first = send(pm, amount="45.10", body="Hi {{GuarantorFirstName}}: {{QuickPayLink}}")
    form: dict[str, Any] = pm.hook.pm_dashboard_action(
        action_id=SEND_ACTION_ID,
        step="resend",
        subject=LILY,
        payload={"notification_id": first["notification_id"]},
        context=CONTEXT,
    )
    assert_valid("send-form", form)
    assert form["prefill"] == {
        "guarantor_id": "g-mei",
        "send_to": {
            "entity": {"type": "guarantor", "id": "g-mei"},
            "mode": "text",
            "address": None,
            "save_contact": False,
        },
        "template_id": None,
        "subject": None,
        "body": "Hi {{GuarantorFirstName}}: {{QuickPayLink}}",
        "amount": "45.10",
    }
    assert_valid("send-request", form["prefill"])
    again = pm.hook.pm_dashboard_action(
        action_id=SEND_ACTION_ID,
        step="submit",
        subject=LILY,
        payload={**form["prefill"], "idempotency_key": form["idempotency_key"]},
        context=CONTEXT,
    )
    assert again["notification_id"] != first["notification_id"]
    assert again["duplicate"] is False
    assert token_in(again) != token_in(first)
    assert len(history(pm)) == 2


def test_resend_of_an_unknown_notification_is_not_found(pm: pluggy.PluginManager) -> None:
    error = refusal(
        pm.hook.pm_dashboard_action,
        action_id=SEND_ACTION_ID,
        step="resend",
        subject=LILY,
        payload={"notification_id": "ntf_nope"},
        context=CONTEXT,
    )
    assert error.code == "not_found"


@pytest.mark.parametrize("backend", ["sqlite"])
def test_requests_for_unknown_tokens_leave_nothing_behind(pm: pluggy.PluginManager) -> None:
    import gc
    import tracemalloc

    send(pm)

    def stranger(number: int) -> dict[str, Any]:
        token = f"{number:022d}"
        answer: dict[str, Any] = pm.hook.pm_inbound_request(
            plugin_name="ondemand",
            method="GET",
            path=f"pay/{token}",
            url=f"{BASE}ondemand/pay/{token}?q={'x' * 3000}",
            headers={"User-Agent": "x" * 8000},
            form={},
            body="y" * (60 * 1024),
        )
        return answer

    for number in range(5):  # the first calls load what every call needs
        stranger(-1 - number)
    tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for number in range(60):  # some 4 MB of strangers' requests
            assert stranger(number)["status"] == 404
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 256 * 1024
