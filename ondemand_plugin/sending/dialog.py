"""The Send Balance Notification dialog as the host draws it: the ``open`` step's model
(``send-form.json``) and the ``preview`` step's answer (``send-preview.json``)."""

from __future__ import annotations

from typing import Any

from hookspecs.types import Template
from ondemand_plugin import SEND_ACTION_ID
from ondemand_plugin.boundary.model import Guarantor, entity_type
from ondemand_plugin.errors import OnDemandError
from ondemand_plugin.rules import composing
from ondemand_plugin.rules.criteria import NO_BATCHED_STATEMENT, Recipient, Scope, SendOption


def open_model(
    scope: Scope,
    options: list[SendOption],
    templates: list[Template],
    template_notice: str | None,
    closed: OnDemandError | None,
    idempotency_key: str,
) -> dict[str, Any]:
    """The dialog: who may be chosen, how each can be reached, the templates, and why it cannot
    send when it cannot (``closed``: the send window's refusal, if any)."""
    guarantors = scope.eligible_guarantors
    reason = _closed_reason(guarantors, options) or _refusal_text(closed)
    return {
        "action_id": SEND_ACTION_ID,
        "can_send": reason is None,
        "reason": reason,
        # One key per opened dialog: a second press of Send Now repeats the first.
        "idempotency_key": idempotency_key,
        "guarantors": [
            {
                "id": guarantor.id,
                "name": guarantor.name,
                "balance": composing.format_amount(guarantor.balance),
                "payment_allowed": guarantor.payment_allowed,
                "notice": _guarantor_notice(guarantor),
            }
            for guarantor in guarantors
        ],
        "send_to": [
            {
                "entity": {
                    "type": entity_type(option.entity),
                    "id": option.entity.id,
                    "name": option.entity.name,
                },
                "mode": option.mode,
                "address": option.address,
                "allowed": option.refusal is None,
                "reason": _refusal_text(option.refusal),
                "guarantor_ids": list(option.guarantor_ids),
            }
            for option in options
        ],
        "templates": [
            {"id": template.id, "label": template.label, "mode": template.mode}
            for template in templates
        ],
        "notices": _notices(scope, guarantors, templates, template_notice),
    }


def preview(
    composed: composing.Composed, recipient: Recipient, guarantor: Guarantor
) -> dict[str, Any]:
    """What the recipient will get, and what staff should know before sending it."""
    encoding: str | None = None
    segments: int | None = None
    if recipient.mode == "text":
        encoding, segments = composing.sms_segments(composed.body)
    return {
        "subject": composed.subject,
        "body": composed.body,
        "html": composed.html,
        "mode": recipient.mode,
        "to": recipient.address,
        "segments": segments,
        "encoding": encoding,
        "characters": len(composed.body),
        "warnings": _warnings(composed, recipient.mode, guarantor, segments),
    }


def _warnings(
    composed: composing.Composed, mode: str, guarantor: Guarantor, segments: int | None
) -> list[str]:
    warnings = []
    if mode != "voice" and guarantor.payment_allowed and not composed.offers_pay_link:
        warnings.append(
            "There is no pay link in the message: insert {{QuickPayLink}} so they can pay online."
        )
    if segments is not None and segments > 1:
        warnings.append(
            f"This text goes out as {segments} text messages. A shorter one arrives as one."
        )
    if mode == "text" and "STOP" not in composed.body.upper():
        warnings.append("Texts should say how to stop them: end with “Reply STOP to opt out.”")
    for field in composed.empty_fields:
        warnings.append(
            f"{{{{{field}}}}} has nothing to show for this recipient: it will be left blank."
        )
    return warnings


def _refusal_text(refusal: OnDemandError | None) -> str | None:
    return refusal.message if refusal else None


def _closed_reason(guarantors: tuple[Guarantor, ...], options: list[SendOption]) -> str | None:
    if not guarantors:
        return NO_BATCHED_STATEMENT
    if not any(option.refusal is None for option in options):
        return (
            "No one here can be reached: add an e-mail address or phone number to the record, "
            "or check opt-outs."
        )
    return None


def _guarantor_notice(guarantor: Guarantor) -> str | None:
    """R5, said beside the guarantor it concerns: a host shows it while that one is chosen."""
    if guarantor.payment_allowed:
        return None
    return (
        f"{guarantor.name}'s balance is {composing.format_money(guarantor.balance)}: the "
        "notification can be sent, but no payment can be made from it."
    )


def _notices(
    scope: Scope,
    guarantors: tuple[Guarantor, ...],
    templates: list[Template],
    template_notice: str | None,
) -> list[str]:
    """What concerns the whole dialog, whichever guarantor is chosen."""
    notices = []
    hidden = len(scope.guarantors) - len(guarantors)
    if hidden and guarantors:
        notices.append(f"{hidden} guarantor(s) who never had a batched statement are not listed.")
    if template_notice is not None:
        notices.append(template_notice)
    elif not templates:
        notices.append(
            "There are no On-Demand templates yet: type the message, or add one with -MANAGE-."
        )
    return notices
