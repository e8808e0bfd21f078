"""Hooks the host calls to show a feature on its dashboards (implemented by feature plugins).

Shapes are JSON Schemas in ``contracts/``: ``subject.json``, ``dashboard-context.json``,
``dashboard-action.json``, ``send-form.json``, ``send-request.json``, ``send-result.json``,
``send-preview.json``, ``template-request.json``, ``history-entry.json``, ``history-reply.json``.
"""

from __future__ import annotations

from typing import Any

from hookspecs._markers import hookspec


@hookspec
def pm_dashboard_actions(
    dashboard: str, subject: dict[str, Any], context: dict[str, Any]
) -> list[dict[str, Any]]:
    """Actions to show on a dashboard. Runs on every render: implementations must be cheap.

    ``dashboard`` is ``"patient"`` or ``"guarantor"``; ``subject`` is
    ``{"type": "patient"|"guarantor", "id": ...}``; ``context`` is
    ``{"practice_id": ..., "user": {"id": ..., "name": ...}}``. pluggy gathers one list per plugin.
    A dashboard a plugin has no actions for gets ``[]`` from it, never an error: an exception
    would cost the host every plugin's actions. Only a malformed ``context`` is an error.

    Example::

        pm.hook.pm_dashboard_actions(
            dashboard="patient",
            subject={"type": "patient", "id": "p1"},
            context={"practice_id": "pr1", "user": {"id": "u1", "name": "Amy"}},
        )
        # [[{"id": "ondemand.send_balance_notification", "label": "Send Balance Notification",
        #    "dashboard": "patient", "panel": "balance", "enabled": True,
        #    "disabled_reason": None}]]
    """


@hookspec(firstresult=True)
def pm_dashboard_action(
    action_id: str,
    step: str,
    subject: dict[str, Any],
    payload: dict[str, Any],
    context: dict[str, Any],
) -> dict[str, Any] | None:
    """Open (``step="open"``) or perform (``step="submit"``) a dashboard action; for a send,
    ``step="preview"`` takes the payload of ``submit`` and answers what it would send
    (``send-preview.json``), sending and recording nothing.

    The plugin that owns ``action_id`` answers; the others return None.

    Example::

        form = pm.hook.pm_dashboard_action(
            action_id="ondemand.send_balance_notification", step="open",
            subject={"type": "patient", "id": "p1"}, payload={}, context=context)
        result = pm.hook.pm_dashboard_action(
            action_id="ondemand.send_balance_notification", step="submit",
            subject={"type": "patient", "id": "p1"}, context=context,
            payload={"guarantor_id": "g1",
                     "send_to": {"entity": {"type": "guarantor", "id": "g1"}, "mode": "text"},
                     "template_id": form["templates"][0]["id"],
                     "idempotency_key": form["idempotency_key"]})  # a repeat returns the first
        # {"notification_id": "...", "status": "sent", "duplicate": False, ...}
        preview = pm.hook.pm_dashboard_action(
            action_id="ondemand.send_balance_notification", step="preview",
            subject={"type": "patient", "id": "p1"}, context=context,
            payload={"guarantor_id": "g1",
                     "send_to": {"entity": {"type": "guarantor", "id": "g1"}, "mode": "text"},
                     "body": "Hi {{GuarantorFirstName}}: {{BalanceDue}}"})
        # {"body": "Hi Mei: $120.50", "mode": "text", "segments": 1, "encoding": "GSM-7",
        #  "characters": 15, "warnings": ["There is no pay link in the message: ..."], ...}
    """


@hookspec
def pm_history_entries(
    guarantor_id: str, context: dict[str, Any], before: str | None, limit: int
) -> list[dict[str, Any]]:
    """Entries for the guarantor's Statement/Notification History panel, newest first.

    Entries are of two kinds, told apart by ``kind``: a notification
    (``on_demand_balance_notification``, ``HistoryEntry``) and a patient's reply to one
    (``patient_reply``, ``HistoryReply``). Both have ``id``, ``kind``, ``guarantor_id``,
    ``occurred_at``, ``display`` and ``cursor``; read any other key by ``kind``.

    ``before`` is None for the first page, else the ``cursor`` of the last entry this plugin
    gave, or an RFC 3339 timestamp (the ``occurred_at`` of the last entry shown): then only
    entries that occurred strictly before it come back. The host passes one ``before`` to every
    plugin, so a host merging several plugins' entries pages them by time. Anything else is an
    ``invalid_request`` naming ``before``.

    Example::

        pages = pm.hook.pm_history_entries(
            guarantor_id="g1", context=context, before=None, limit=20)
        entries = [entry for page in pages for entry in page]
        next_page = pm.hook.pm_history_entries(
            guarantor_id="g1", context=context, before=entries[-1]["cursor"], limit=20)
        # merging several plugins' pages: page by time instead
        entries.sort(key=lambda entry: datetime.fromisoformat(entry["occurred_at"]), reverse=True)
        older = pm.hook.pm_history_entries(
            guarantor_id="g1", context=context, before=entries[19]["occurred_at"], limit=20)
        # a reply staff read as a request to stop: its action records the opt-out
        for entry in entries:
            if entry["kind"] == "patient_reply":
                [record] = entry["actions"]  # {"action_id": "ondemand.opt_outs", ...}
                pm.hook.pm_dashboard_action(
                    action_id=record["action_id"], step=record["step"], subject=subject,
                    payload=record["payload"], context=context)
    """
