"""The audit a compliance officer reads: every send, every switch of the add-on and every change
of consent of one practice, in one list, oldest first. Addresses are masked: the audit says that a
number was texted and when, not which number."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ondemand_plugin.clock import format_timestamp
from ondemand_plugin.rules.addresses import mask
from ondemand_plugin.stores import Store

# The audit's columns, in the order the CSV and the table show them.
COLUMNS = ("at", "kind", "who", "mode", "address", "status", "detail")


def audit_rows(
    store: Store, practice_id: str, start: datetime | None, end: datetime | None
) -> list[dict[str, Any]]:
    """Every event of the practice from ``start`` (inclusive) to ``end`` (exclusive)."""
    rows: list[tuple[datetime, dict[str, Any]]] = []
    for record in store.notifications_between(practice_id, start, end):
        via = f" through {record.channel}" if record.channel else ""
        rows.append(
            (
                record.occurred_at,
                _row(
                    record.occurred_at,
                    "send",
                    f"{record.sent_by_name} ({record.sent_by_id})",
                    record.mode,
                    mask(record.recipient),
                    record.status,
                    f"To {record.sent_to_name} ({record.sent_to_type} {record.sent_to_id})"
                    f"{via}; notification {record.id}. {record.detail}".strip(),
                ),
            )
        )
    for change in store.addon_log(practice_id):
        if (start is None or change.changed_at >= start) and (
            end is None or change.changed_at < end
        ):
            rows.append(
                (
                    change.changed_at,
                    _row(
                        change.changed_at,
                        "addon",
                        change.changed_by,
                        None,
                        None,
                        "on" if change.enabled else "off",
                        change.reason or "",
                    ),
                )
            )
    for consent in store.consent_changes(practice_id, start, end):
        words = f' "{consent.words}"' if consent.words else ""
        to = f" to {consent.sender}" if consent.sender else ""
        rows.append(
            (
                consent.changed_at,
                _row(
                    consent.changed_at,
                    "consent",
                    consent.actor,
                    consent.mode,
                    mask(consent.address),
                    "opted out" if consent.opted_out else "opted in",
                    f"{consent.source}{words}{to}",
                ),
            )
        )
    rows.sort(key=lambda pair: pair[0])
    return [row for _, row in rows]


def _row(
    at: datetime,
    kind: str,
    who: str,
    mode: str | None,
    address: str | None,
    status: str,
    detail: str,
) -> dict[str, Any]:
    values = (format_timestamp(at), kind, who, mode, address, status, detail)
    return dict(zip(COLUMNS, values, strict=True))
