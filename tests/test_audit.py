"""``ondemand audit``: every send, add-on switch and consent change of a practice, oldest first,
with masked addresses, as text, JSON or CSV, within the days asked for."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pluggy
from conftest import CONTEXT, enable_addon, on_each_backend, send_to_mei
from test_cli import Run, attempt, backend, ondemand, ondemand_host

from ondemand_plugin import OPT_OUTS_ACTION_ID

__all__ = ["attempt", "backend", "ondemand", "ondemand_host"]  # the CLI tests' fixtures

MEI = "+15035550123"


def staff_opt_out(pm: pluggy.PluginManager) -> None:
    pm.hook.pm_dashboard_action(
        action_id=OPT_OUTS_ACTION_ID,
        step="submit",
        subject={"type": "guarantor", "id": "g-mei"},
        payload={"op": "opt_out", "mode": "text", "address": MEI, "note": "Said so on the phone"},
        context=CONTEXT,
    )


@on_each_backend
def test_the_audit_lists_sends_switches_and_consent_changes_oldest_first(
    ondemand_pm: pluggy.PluginManager, ondemand: Run
) -> None:
    enable_addon(ondemand_pm)
    sent = send_to_mei(ondemand_pm, mode="text")
    staff_opt_out(ondemand_pm)

    rows = json.loads(ondemand("audit", "--practice", "demo", "--json").stdout)
    assert [row["kind"] for row in rows] == ["addon", "send", "consent"]
    addon, send, consent = rows
    assert addon["status"] == "on"
    assert (send["who"], send["mode"], send["status"]) == ("Amy Front (u1)", "text", "delivered")
    assert sent["notification_id"] in send["detail"]
    assert (consent["who"], consent["status"]) == ("Amy Front (u1)", "opted out")
    assert consent["detail"] == 'staff "Said so on the phone"'
    assert [row["at"] for row in rows] == sorted(row["at"] for row in rows)

    text = ondemand("audit", "--practice", "demo").stdout
    table = ondemand("audit", "--practice", "demo", "--csv").stdout
    for output in (json.dumps(rows), text, table):
        assert MEI not in output and "+1***0123" in output
    [header, *lines] = list(csv.reader(io.StringIO(table)))
    assert header == ["at", "kind", "who", "mode", "address", "status", "detail"]
    assert [line[1] for line in lines] == ["addon", "send", "consent"]


@on_each_backend
def test_the_audit_keeps_to_the_days_asked_for(
    ondemand_pm: pluggy.PluginManager, ondemand: Run
) -> None:
    enable_addon(ondemand_pm)
    send_to_mei(ondemand_pm)
    today = datetime.now(UTC).date()
    tomorrow = today + timedelta(days=1)
    audit = ("audit", "--practice", "demo", "--json")
    assert len(json.loads(ondemand(*audit, "--from", str(today), "--to", str(today)).stdout)) == 2
    assert json.loads(ondemand(*audit, "--from", str(tomorrow)).stdout) == []
    assert json.loads(ondemand(*audit, "--to", str(today - timedelta(days=1))).stdout) == []
    assert "Nothing happened" in ondemand("audit", "--practice", "other").stdout


def test_the_audit_refuses_a_bad_span_or_two_formats(attempt: Run) -> None:
    backwards = attempt("audit", "--practice", "demo", "--from", "2026-02-02", "--to", "2026-02-01")
    assert backwards.returncode == 2 and "--to must not be before --from" in backwards.stderr
    both = attempt("audit", "--practice", "demo", "--json", "--csv")
    assert both.returncode == 2 and "Choose one of --json and --csv" in both.stderr
    bad_day = attempt("audit", "--practice", "demo", "--from", "yesterday")
    assert bad_day.returncode == 2
