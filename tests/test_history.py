"""R4: every On-Demand notification appears in the guarantor's Statement/Notification History,
newest first, paged by an opaque cursor over an index, and never across practices."""

from __future__ import annotations

import base64
import re
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pluggy
import pytest
from conftest import (
    CONTEXT,
    assert_valid_history_entry,
    enable_addon,
    host_on,
    send_to_mei,
    trace_sql,
)

from hookspecs import hookimpl
from ondemand_plugin import MANAGE_ACTION_ID, SEND_ACTION_ID
from ondemand_plugin.errors import OnDemandError
from ondemand_plugin.plugin import instance_of
from ondemand_plugin.testing import ReferenceHost, guarantor, store_of

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
BILLING = {"practice_id": "demo", "user": {"id": "u7", "name": "Bea Billing"}}


@pytest.fixture
def ondemand_host(database_url: str, tmp_path: Path) -> ReferenceHost:
    """The demo host, with the plugin on each backend in turn."""
    return host_on(database_url, tmp_path)


@pytest.fixture
def pm(ondemand_pm: pluggy.PluginManager) -> pluggy.PluginManager:
    enable_addon(ondemand_pm)
    return ondemand_pm


def history(
    pm: pluggy.PluginManager,
    guarantor_id: str = "g-mei",
    *,
    context: dict[str, Any] = CONTEXT,
    before: str | None = None,
    limit: int = 10,
) -> list[dict[str, Any]]:
    [entries] = pm.hook.pm_history_entries(
        guarantor_id=guarantor_id, context=context, before=before, limit=limit
    )
    for entry in entries:
        assert_valid_history_entry(entry)
    return list(entries)


def test_every_send_appears_in_the_guarantors_history_newest_first(
    pm: pluggy.PluginManager,
) -> None:
    template = pm.hook.pm_dashboard_action(
        action_id=MANAGE_ACTION_ID,
        step="submit",
        subject={"type": "practice", "id": "demo"},
        payload={
            "op": "create",
            "template": {"label": "Pay by e-mail", "mode": "email", "body": "{{QuickPayLink}}"},
        },
        context=CONTEXT,
    )["template"]
    first = send_to_mei(pm)
    second = send_to_mei(pm, context=BILLING, mode="email", body=None, template_id=template["id"])

    entries = history(pm)
    assert [entry["id"] for entry in entries] == [
        second["notification_id"],
        first["notification_id"],
    ]
    newest, oldest = entries
    assert newest["occurred_at"] >= oldest["occurred_at"]
    for entry in entries:
        assert entry["kind"] == "on_demand_balance_notification"
        assert entry["counts_toward_dunning"] is False
        assert entry["guarantor_id"] == "g-mei"
        assert entry["status"] == "delivered"  # the outbox hands the message over itself
        assert entry["balance"] == "120.50"
        assert entry["payment_allowed"] is True
        assert entry["sent_to"] == {"type": "guarantor", "id": "g-mei", "name": "Mei Chen"}
    assert newest["sent_by"] == {"id": "u7", "name": "Bea Billing"}
    assert oldest["sent_by"] == {"id": "u1", "name": "Amy Front"}
    assert (newest["mode"], newest["to"]) == ("email", "mei.chen@example.com")
    assert (oldest["mode"], oldest["to"]) == ("text", "+15035550123")
    assert newest["template_label"] == "Pay by e-mail"
    assert oldest["template_label"] is None  # typed in the editor, tied to no template


def test_history_of_another_guarantor_holds_none_of_these_sends(pm: pluggy.PluginManager) -> None:
    send_to_mei(pm)
    assert history(pm, "g-tom") == []


def test_history_pages_follow_the_cursor_without_overlap_or_gap(pm: pluggy.PluginManager) -> None:
    sent = [send_to_mei(pm, body=f"Message {number}")["notification_id"] for number in range(25)]

    pages = []
    before = None
    while True:
        page = history(pm, before=before, limit=10)
        if not page:
            break
        pages.append(page)
        before = page[-1]["cursor"]

    assert [len(page) for page in pages] == [10, 10, 5]
    assert [entry["id"] for page in pages for entry in page] == sent[::-1]


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor",
        "",
        base64.urlsafe_b64encode(b"no separator").decode(),
        base64.urlsafe_b64encode(b"yesterday|ntf_1").decode(),
        base64.urlsafe_b64encode(b"\xff\xfe|\xfd").decode(),
    ],
)
def test_a_cursor_the_plugin_never_gave_out_is_an_invalid_request(
    pm: pluggy.PluginManager, cursor: str
) -> None:
    send_to_mei(pm)
    with pytest.raises(OnDemandError) as refusal:
        history(pm, before=cursor)
    assert refusal.value.code == "invalid_request"


def shifted(occurred_at: str, *, hours: int = 0, microseconds: int = 0) -> str:
    """The same moment (give or take ``microseconds``) in another RFC 3339 spelling."""
    moment = datetime.fromisoformat(occurred_at) + timedelta(microseconds=microseconds)
    return moment.astimezone(timezone(timedelta(hours=hours))).isoformat()


def test_a_timestamp_as_before_pages_strictly_older_entries(pm: pluggy.PluginManager) -> None:
    sent = [send_to_mei(pm, body=f"Message {number}")["notification_id"] for number in range(4)]
    newest_first = history(pm)
    assert [entry["id"] for entry in newest_first] == sent[::-1]
    second = newest_first[1]["occurred_at"]

    older = [entry["id"] for entry in history(pm, before=second)]
    assert older == sent[:2][::-1]
    assert [entry["id"] for entry in history(pm, before=shifted(second, hours=2))] == older
    assert [entry["id"] for entry in history(pm, before=second.lower())] == older
    # a bound a microsecond later takes in the entry at ``second`` itself
    later = history(pm, before=shifted(second, microseconds=1))
    assert [entry["id"] for entry in later] == sent[:3][::-1]


def test_a_timestamp_finer_than_a_microsecond_still_pages_strictly_older_entries(
    pm: pluggy.PluginManager,
) -> None:
    sent = [send_to_mei(pm, body=f"Message {number}")["notification_id"] for number in range(2)]
    newest = history(pm)[0]["occurred_at"]  # ...T09:30:00.123456Z
    assert [entry["id"] for entry in history(pm, before=newest[:-1] + "000Z")] == sent[:1]
    assert [entry["id"] for entry in history(pm, before=newest[:-1] + "001Z")] == sent[::-1]


@pytest.mark.parametrize(
    "before",
    [
        "page-2",  # another plugin's cursor
        "eyJwYWdlIjogMn0",
        "2026-13-01T00:00:00Z",
        "2026-05-01T09:30:00",  # no offset: which moment?
        "2026-05-01",
        "2026-05-01 09:30:00Z",
        17,
    ],
)
def test_anything_but_our_cursor_or_an_rfc_3339_timestamp_is_refused_naming_before(
    pm: pluggy.PluginManager, before: Any
) -> None:
    send_to_mei(pm)
    with pytest.raises(OnDemandError) as refusal:
        history(pm, before=before)
    assert refusal.value.code == "invalid_request"
    assert refusal.value.field == "before"
    assert "RFC 3339" in refusal.value.message


@pytest.mark.parametrize("limit", [0, -1, 101, 10.0, "10", True, None])
def test_a_page_size_outside_1_to_100_is_an_invalid_request(
    pm: pluggy.PluginManager, limit: Any
) -> None:
    with pytest.raises(OnDemandError) as refusal:
        history(pm, limit=limit)
    assert refusal.value.code == "invalid_request"


@pytest.mark.parametrize("limit", [1, 100])
def test_page_sizes_1_and_100_are_accepted(pm: pluggy.PluginManager, limit: int) -> None:
    send_to_mei(pm)
    assert len(history(pm, limit=limit)) == 1


def add_north(pm: pluggy.PluginManager, host: ReferenceHost, mobile: str) -> dict[str, Any]:
    """Another practice, with the add-on, whose guarantor happens to have Mei's ids (``p-lily``,
    ``g-mei``) and the mobile given; answers its dashboard context."""
    host.add_practice({**host.practices["demo"], "id": "north"})
    host.add_patient(
        "north",
        {
            "id": "p-lily",
            "first_name": "Lee",
            "last_name": "Ng",
            "guarantor_ids": [],
            "contacts": [],
        },
    )
    host.add_guarantor(
        "north",
        guarantor("g-mei", "May", "Ng", "9.99", statements=1, contacts=[("mobile", mobile)]),
    )
    host.link("north", "p-lily", "g-mei")
    enable_addon(pm, "north")
    return {**CONTEXT, "practice_id": "north"}


def test_history_never_shows_another_practices_notifications(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    north = add_north(pm, ondemand_host, mobile="+15035550199")

    in_demo = send_to_mei(pm)
    in_north = send_to_mei(pm, context=north)

    assert [entry["id"] for entry in history(pm)] == [in_demo["notification_id"]]
    assert [entry["id"] for entry in history(pm, context=north)] == [in_north["notification_id"]]
    # A cursor from one practice does not open the other's history either.
    demo_cursor = history(pm)[0]["cursor"]
    assert history(pm, context=north, before=demo_cursor) == []


@pytest.mark.parametrize("backend", ["sqlite"])  # PostgreSQL's plan: test_postgres_store.py
def test_history_pages_are_read_through_the_history_index(pm: pluggy.PluginManager) -> None:
    for number in range(3):
        send_to_mei(pm, body=f"Message {number}")
    statements = trace_sql(pm)
    first_page = history(pm, limit=2)
    history(pm, before=first_page[-1]["cursor"], limit=2)
    queries = [sql for sql in statements if sql.lstrip().upper().startswith("SELECT")]
    # Each page: the notifications, and the replies (with the notifications they answer).
    assert len(queries) == 4

    database = store_of(pm).backend.path
    with sqlite3.connect(database) as connection:
        indexes = ["notifications_history", "patient_replies_history"] * 2
        for query, index in zip(queries, indexes, strict=True):
            plan = " | ".join(row[-1] for row in connection.execute("EXPLAIN QUERY PLAN " + query))
            assert f"USING INDEX {index}" in plan, plan
            assert "TEMP B-TREE" not in plan, plan


class LettersPlugin:
    """Another plugin's history (printed letters): its own entries, paged by time as the
    contract asks, its occurred_at spelt with an offset rather than Z."""

    def __init__(self, moments: list[datetime]) -> None:
        self.entries = [
            {"id": f"letter-{number}", "kind": "letter", "occurred_at": moment.isoformat()}
            for number, moment in enumerate(sorted(moments, reverse=True))
        ]

    @hookimpl
    def pm_history_entries(
        self, guarantor_id: str, context: dict[str, Any], before: str | None, limit: int
    ) -> list[dict[str, Any]]:
        bound = datetime.fromisoformat(before) if before else None
        older = [
            entry
            for entry in self.entries
            if bound is None or datetime.fromisoformat(entry["occurred_at"]) < bound
        ]
        return older[:limit]


def readme_merge_example() -> str:
    match = re.search(
        r"```python\n(from datetime import datetime\n\n\ndef merged_history_page.*?)```",
        README,
        re.DOTALL,
    )
    assert match, "README.md has no example of a host merging plugins' history pages"
    return match.group(1)


def test_the_readmes_host_merges_two_plugins_pages_by_time_without_overlap_or_gap(
    pm: pluggy.PluginManager,
) -> None:
    ours = [send_to_mei(pm, body=f"Message {number}")["notification_id"] for number in range(12)]
    times = [datetime.fromisoformat(entry["occurred_at"]) for entry in history(pm, limit=12)]
    # letters before, between and after our notifications, two of them in the same microsecond
    # as one of ours
    letters = [times[-1] - timedelta(days=1), times[0] + timedelta(seconds=1), times[5], times[6]]
    letters += [times[index] + timedelta(microseconds=1) for index in range(0, 12, 2)]
    letters += [times[-1] - timedelta(hours=hours) for hours in range(2, 7)]
    pm.register(LettersPlugin(letters))

    shown: list[list[dict[str, Any]]] = []
    # the README's example, run as a host would paste it
    exec(
        readme_merge_example(),
        {"pm": pm, "guarantor_id": "g-mei", "context": CONTEXT, "show": shown.append},
    )

    assert [len(page) for page in shown] == [20, 7]
    merged = [entry for page in shown for entry in page]
    assert sorted(entry["id"] for entry in merged) == sorted(
        ours + [f"letter-{number}" for number in range(len(letters))]
    )
    moments = [datetime.fromisoformat(entry["occurred_at"]) for entry in merged]
    assert moments == sorted(moments, reverse=True)


# Patients' replies: kept in the history of the guarantor whose notification they answer.

MEI_MOBILE = "+15035550123"
DEMO_TEXTS_FROM = "+15035550101"


def patient_reply(
    pm: pluggy.PluginManager, text: str, at: datetime | None = None, address: str = MEI_MOBILE
) -> None:
    """A reply to the demo practice's text number, as a channel's route reports it."""
    instance_of(pm).events.reply("outbox", DEMO_TEXTS_FROM, address, text, occurred_at=at)


def test_a_patient_s_reply_is_an_entry_of_the_guarantor_s_history_after_the_text(
    pm: pluggy.PluginManager,
) -> None:
    sent = send_to_mei(pm)
    patient_reply(pm, "Can I pay on Friday?")

    reply, notification = history(pm)
    assert notification["id"] == sent["notification_id"]
    assert reply["kind"] == "patient_reply"
    assert (reply["address"], reply["text"], reply["channel"]) == (
        MEI_MOBILE,
        "Can I pay on Friday?",
        "outbox",
    )
    assert reply["in_reply_to"] == {
        "notification_id": sent["notification_id"],
        "mode": "text",
        "occurred_at": notification["occurred_at"],
    }
    assert reply["display"]["title"] == "Patient reply"
    assert "Can I pay on Friday?" in reply["display"]["summary"]
    assert reply["actions"] == [
        {
            "id": "record_opt_out",
            "label": "Record an opt-out",
            "action_id": "ondemand.opt_outs",
            "step": "submit",
            "payload": {"op": "opt_out", "mode": "text", "address": MEI_MOBILE},
        }
    ]
    assert history(pm, "g-tom") == []


def test_a_reply_belongs_to_the_guarantor_texted_last_at_that_number(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    # Kim shares Mei's mobile: the reply answers whichever of them the practice texted last.
    ondemand_host.add_guarantor(
        "demo",
        guarantor("g-kim", "Kim", "Chen", "40.00", statements=1, contacts=[("mobile", MEI_MOBILE)]),
    )
    ondemand_host.link("demo", "p-lily", "g-kim")
    send_to_mei(pm)
    patient_reply(pm, "Paid, thanks")
    kim = pm.hook.pm_dashboard_action(
        action_id=SEND_ACTION_ID,
        step="submit",
        subject={"type": "patient", "id": "p-lily"},
        payload={
            "guarantor_id": "g-kim",
            "send_to": {"entity": {"type": "guarantor", "id": "g-kim"}, "mode": "text"},
            "body": "Your balance is {{BalanceDue}}: {{QuickPayLink}}",
        },
        context=CONTEXT,
    )
    patient_reply(pm, "Which account is this?")

    assert [entry.get("text") for entry in history(pm, "g-kim")] == [
        "Which account is this?",
        None,
    ]
    assert history(pm, "g-kim")[0]["in_reply_to"]["notification_id"] == kim["notification_id"]
    assert [entry.get("text") for entry in history(pm)] == ["Paid, thanks", None]


def test_history_pages_notifications_and_replies_together_without_overlap_or_gap(
    pm: pluggy.PluginManager,
) -> None:
    start = datetime.now(UTC)
    expected = []
    for number in range(7):
        expected.append(send_to_mei(pm, body=f"Message {number}")["notification_id"])
        # Replies at the same microsecond as each other: the id breaks the tie, as it does for
        # notifications.
        moment = start + timedelta(hours=1 + number)
        patient_reply(pm, f"Reply {number}a", moment)
        patient_reply(pm, f"Reply {number}b", moment)
    newest_first = [entry["id"] for entry in history(pm, limit=100)]
    assert len(newest_first) == 21 and len(set(newest_first)) == 21

    for limit in (1, 4, 10):
        paged, before = [], None
        while page := history(pm, before=before, limit=limit):
            assert len(page) <= limit
            paged += [entry["id"] for entry in page]
            before = page[-1]["cursor"]
        assert paged == newest_first
    # By time, as a host merging several plugins pages them.
    first_page = history(pm, limit=5)
    older = history(pm, before=first_page[-1]["occurred_at"], limit=100)
    assert all(entry["occurred_at"] < first_page[-1]["occurred_at"] for entry in older)


def test_another_practice_s_replies_stay_out_of_this_history(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    north = add_north(pm, ondemand_host, mobile=MEI_MOBILE)
    send_to_mei(pm, context=north)
    # North sends from the same number as demo; only north ever texted this number.
    patient_reply(pm, "Hello?")

    assert [entry["kind"] for entry in history(pm, context=north)] == [
        "patient_reply",
        "on_demand_balance_notification",
    ]
    assert history(pm) == []
