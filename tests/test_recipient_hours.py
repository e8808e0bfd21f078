"""The recipient's hours: a text or a call goes only inside the send window in every time zone
the number may ring in, as well as the practice's; an e-mail follows the practice's hours."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pluggy
import pytest
from conftest import CONTEXT, Build

from ondemand_plugin import SEND_ACTION_ID
from ondemand_plugin.boundary.config import SendWindow
from ondemand_plugin.boundary.model import Guarantor, Practice
from ondemand_plugin.errors import OnDemandError
from ondemand_plugin.rules.criteria import Recipient, recipient_zones, send_window_refusal

NEW_YORK = Practice(
    "ny", "Hudson Pediatrics", "+12125550100", ZoneInfo("America/New_York"), None, None
)
WINDOW = SendWindow(time(8), time(21))
# 12:30 in New York, 07:30 in Honolulu, 09:30 in Los Angeles.
NOON_IN_NEW_YORK = datetime(2026, 3, 2, 17, 30, tzinfo=UTC)
HAWAII_MOBILE = "+18085550123"
IDAHO_MOBILE = "+12085550123"  # area code 208: Boise (Mountain) and the panhandle (Pacific)


def recipient(mode: str, address: str) -> Recipient:
    nobody = Guarantor("g", "A", "B", 0, 0, 1, (), (), {})  # type: ignore[arg-type]
    return Recipient(nobody, mode, address, corrected=False, contact_kind="mobile")


def test_a_text_to_hawaii_before_eight_there_is_refused_naming_their_time_and_the_opening() -> None:
    refusal = send_window_refusal(
        WINDOW, NEW_YORK, NOON_IN_NEW_YORK, recipient("text", HAWAII_MOBILE)
    )
    assert refusal is not None and refusal.code == "outside_send_window"
    assert "It is 07:30 where the recipient's number is (Pacific/Honolulu)" in refusal.message
    assert "opens at 13:00 practice time" in refusal.message


def test_a_call_follows_the_recipient_s_hours_too() -> None:
    refusal = send_window_refusal(
        WINDOW, NEW_YORK, NOON_IN_NEW_YORK, recipient("voice", HAWAII_MOBILE)
    )
    assert refusal is not None and "a call may reach them" in refusal.message


def test_an_email_follows_the_practice_s_hours_only() -> None:
    assert (
        send_window_refusal(
            WINDOW, NEW_YORK, NOON_IN_NEW_YORK, recipient("email", "kai@example.com")
        )
        is None
    )


def test_a_number_spanning_two_zones_must_fit_both() -> None:
    assert {zone.key for zone in recipient_zones(IDAHO_MOBILE)} == {
        "America/Boise",
        "America/Los_Angeles",
    }
    # 08:15 in Boise, 07:15 in the panhandle: one of its zones is still before eight.
    moment = datetime(2026, 3, 2, 15, 15, tzinfo=UTC)
    refusal = send_window_refusal(WINDOW, NEW_YORK, moment, recipient("text", IDAHO_MOBILE))
    assert refusal is not None and "America/Los_Angeles" in refusal.message
    later = moment + timedelta(hours=1)
    assert send_window_refusal(WINDOW, NEW_YORK, later, recipient("text", IDAHO_MOBILE)) is None


def test_inside_both_windows_the_text_may_go() -> None:
    assert (
        send_window_refusal(WINDOW, NEW_YORK, NOON_IN_NEW_YORK, recipient("text", "+15035550123"))
        is None
    )


def window_open_at_the_practice_but_not_in_hawaii() -> dict[str, str]:
    """About an hour either side of now at the (Los Angeles) practice: Honolulu, two or three
    hours behind, is outside it whatever the time of day."""
    now = datetime.now(ZoneInfo("America/Los_Angeles")).replace(tzinfo=None, second=0)
    start = max(now.replace(hour=0, minute=0), now - timedelta(hours=1))
    end = now + timedelta(minutes=61)
    return {"start": f"{start:%H:%M}", "end": "24:00" if end.day != now.day else f"{end:%H:%M}"}


def submit(pm: pluggy.PluginManager, address: str) -> dict[str, Any]:
    result: dict[str, Any] = pm.hook.pm_dashboard_action(
        action_id=SEND_ACTION_ID,
        step="submit",
        subject={"type": "patient", "id": "p-lily"},
        payload={
            "guarantor_id": "g-mei",
            "send_to": {
                "entity": {"type": "guarantor", "id": "g-mei"},
                "mode": "text",
                "address": address,
            },
            "template_id": None,
            "body": "Your balance is {{BalanceDue}}: {{QuickPayLink}}",
        },
        context=CONTEXT,
    )
    return result


def test_a_send_to_a_hawaii_mobile_outside_its_hours_is_refused_and_nothing_is_sent(
    build: Build,
) -> None:
    pm, _ = build(send_window=window_open_at_the_practice_but_not_in_hawaii())
    with pytest.raises(OnDemandError) as refused:
        submit(pm, HAWAII_MOBILE)
    assert refused.value.code == "outside_send_window"
    assert "Pacific/Honolulu" in refused.value.message
    [entries] = pm.hook.pm_history_entries(
        guarantor_id="g-mei", context=CONTEXT, before=None, limit=5
    )
    assert entries == []
    assert submit(pm, "+15035550123")["status"] == "sent"
