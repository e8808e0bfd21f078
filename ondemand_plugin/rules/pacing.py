"""Pacing: how often one address may hear from a practice.

``recipient_limit`` caps the on-demand messages to one address within a span of hours; the same
message to the same address within ``repeat_window_seconds`` is asked about before it goes again.
Both count per practice and address, so a text and a call to one number count together. A send
that failed reached nobody and does not count.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from ondemand_plugin.boundary.config import RecipientLimit
from ondemand_plugin.errors import ErrorCode, OnDemandError
from ondemand_plugin.rules.composing import without_opt_out_line
from ondemand_plugin.stores import NotificationRecord


def lookback(limit: RecipientLimit | None, repeat_window_seconds: int) -> timedelta | None:
    """How far back pacing must look; None when both checks are off."""
    spans = [timedelta(seconds=repeat_window_seconds)] if repeat_window_seconds else []
    if limit is not None:
        spans.append(timedelta(hours=limit.hours))
    return max(spans) if spans else None


def pacing_refusal(
    earlier: list[NotificationRecord],
    now: datetime,
    *,
    limit: RecipientLimit | None,
    repeat_window_seconds: int,
    mode: str,
    body: str,
    confirm_repeat: bool,
    zone: ZoneInfo,
) -> OnDemandError | None:
    """``earlier``: the practice's notifications to the address, newest first."""
    reached = [record for record in earlier if record.status != "failed"]
    if limit is not None:
        counted = [r for r in reached if r.occurred_at > now - timedelta(hours=limit.hours)]
        if len(counted) >= limit.messages:
            oldest = counted[limit.messages - 1].occurred_at
            next_at = (oldest + timedelta(hours=limit.hours)).astimezone(zone)
            return OnDemandError(
                f"{len(counted)} messages went to this address in the last "
                f"{limit.hours:g} hours, the most the practice allows. The next may go at "
                f"{next_at:%H:%M} on {next_at:%b} {next_at.day} (practice time).",
                code=ErrorCode.RECIPIENT_LIMIT,
            )
    if repeat_window_seconds and not confirm_repeat:
        window_start = now - timedelta(seconds=repeat_window_seconds)
        for record in reached:
            if record.occurred_at > window_start and _same_message(record, mode, body):
                minutes = max(1, round((now - record.occurred_at).total_seconds() / 60))
                ago = "1 minute" if minutes == 1 else f"{minutes} minutes"
                return OnDemandError(
                    f"Sent {ago} ago. Send again? The same message went to this address "
                    f"{ago} ago; submit again with confirm_repeat to send it anyway.",
                    code=ErrorCode.RECENT_DUPLICATE,
                )
    return None


def _same_message(record: NotificationRecord, mode: str, body: str) -> bool:
    sent = (record.result or {}).get("body")
    return record.mode == mode and isinstance(sent, str) and _comparable(sent) == _comparable(body)


# A tracked pay link (inbound/links.py) carries a new token at each send: two sends of one
# message differ only there.
_TRACKED_LINK_TOKEN = re.compile(r"(/ondemand/pay/)[\w-]+")


def _comparable(body: str) -> str:
    return _TRACKED_LINK_TOKEN.sub(r"\1", without_opt_out_line(body))
