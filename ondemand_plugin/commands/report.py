"""What account managers show a practice: a month of On-Demand notifications, from sent to paid."""

from __future__ import annotations

import re
import statistics
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ondemand_plugin.errors import InvalidRequest
from ondemand_plugin.rules.composing import format_amount
from ondemand_plugin.stores import Store

__all__ = ["REPORT_COLUMNS", "month_report"]

# The statuses of a message that left (the provider may not have said more yet).
LEFT = frozenset({"sent", "delivered", "undelivered"})
REPORT_COLUMNS = (
    "practice_id",
    "month",
    "sent",
    "delivered",
    "links_opened",
    "paid",
    "amount_collected",
    "median_minutes_to_payment",
)
_MONTH = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")


def month_report(
    store: Store, practice_id: str, month: str | None, now: datetime
) -> dict[str, Any]:
    """The practice's notifications of ``month`` (``YYYY-MM``, in UTC; None: this month)."""
    start = (
        _month_start(month)
        if month is not None
        else now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    )
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    records = store.notifications_between(practice_id, start, end)
    paid = [record for record in records if record.paid_at is not None]
    minutes = [
        (record.paid_at - record.occurred_at).total_seconds() / 60
        for record in paid
        if record.paid_at is not None
    ]
    return {
        "practice_id": practice_id,
        "month": f"{start:%Y-%m}",
        "sent": sum(record.status in LEFT for record in records),
        "delivered": sum(record.status == "delivered" for record in records),
        "links_opened": sum(record.link_opened_at is not None for record in records),
        "paid": len(paid),
        "amount_collected": format_amount(
            Decimal(sum(record.paid_cents or 0 for record in paid)) / 100
        ),
        "median_minutes_to_payment": round(statistics.median(minutes), 1) if minutes else None,
    }


def _month_start(month: str) -> datetime:
    match = _MONTH.fullmatch(month)
    if match is None:
        raise InvalidRequest(
            f"The month {month!r} is not a month: write it as YYYY-MM (for example 2026-05).",
            field="month",
        )
    return datetime(int(match.group(1)), int(match.group(2)), 1, tzinfo=UTC)
