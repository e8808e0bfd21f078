"""The send flow: entitlement → send criteria → compose → idempotency → deliver → history.

Never touches the guarantor's dunning count (R3): the only host hooks it may change anything
through are ``pm_update_contact``, when staff ask to save a corrected address, and
``pm_set_opt_out``, when a provider says the recipient opted out.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import attrs

from hookspecs.types import Channel, OutboundMessage, Template
from ondemand_plugin import SEND_ACTION_ID
from ondemand_plugin.boundary import contracts
from ondemand_plugin.boundary.config import Config
from ondemand_plugin.boundary.host import Host
from ondemand_plugin.boundary.model import Guarantor, Patient, Practice, entity_type
from ondemand_plugin.clock import utc_now
from ondemand_plugin.errors import ErrorCode, InvalidRequest, OnDemandError, StoreUnavailable
from ondemand_plugin.inbound.links import TrackedLink
from ondemand_plugin.rules import composing
from ondemand_plugin.rules.amounts import amount_due
from ondemand_plugin.rules.criteria import (
    NO_BATCHED_STATEMENT,
    OptedOut,
    Recipient,
    Scope,
    SendOption,
    check_send_window,
    choose_guarantor,
    choose_recipient,
    load_scope,
    require_batched_statement,
    send_options,
    send_window_refusal,
)
from ondemand_plugin.rules.opt_outs import OptOuts
from ondemand_plugin.rules.templates import TemplateManager, in_practice_domain
from ondemand_plugin.sending.delivery import deliver
from ondemand_plugin.sending.recovery import UNKNOWN_DETAIL, Recovery
from ondemand_plugin.stores import Completion, NotificationRecord, Store

log = logging.getLogger(__name__)

DUPLICATE_POLL_SECONDS = 0.05
# How long past the deadline a repeated request waits for the first one's delivery to end.
DUPLICATE_GRACE_SECONDS = 5.0
# A callback's outcomes, as a send result says them: the message left.
LEFT = {"delivered": "sent", "undelivered": "sent"}


def request_error(path: str, problem: str) -> InvalidRequest:
    return InvalidRequest(f"The request's {path} {problem}.", field=path)


@attrs.frozen
class Composed:
    subject: str | None
    body: str
    html: str | None
    sender: str
    template_label: str | None
    amount: Decimal | None
    link: TrackedLink | None


class SendService:
    """Opens the Send Balance Notification dialog and performs its sends."""

    def __init__(
        self,
        host: Host,
        config: Config,
        store: Store,
        templates: TemplateManager,
        channels: Mapping[str, tuple[Channel, ...]],
        notify: Callable[[dict[str, Any], dict[str, Any]], None],
        opt_outs: OptOuts,
        recovery: Recovery,
        completed: Callable[[str, str], None],
    ) -> None:
        self.opt_outs = opt_outs
        # Told of each provider message id a completion records, so that a provider's report
        # that came before it is applied (``PluginEvents.completed``).
        self.completed = completed
        self.host = host
        self.config = config
        self.store = store
        self.templates = templates
        self.channels = channels
        self.notify = notify
        self.recovery = recovery

    # step="open"

    def open_form(self, subject: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        practice_id = context["practice_id"]
        practice = self.host.practice(practice_id)
        scope = load_scope(self.host, practice_id, subject["type"], subject["id"])
        guarantors = scope.eligible_guarantors
        options = send_options(scope, practice, self._opted_out(practice_id)) if guarantors else []
        offer = self.templates.offer(practice_id)
        templates = [t for t in offer.templates if t.active]
        reason = _closed_reason(guarantors, options) or _refusal_text(
            send_window_refusal(self.config.send_window, practice, utc_now())
        )
        return {
            "action_id": SEND_ACTION_ID,
            "can_send": reason is None,
            "reason": reason,
            # One key per opened dialog: a second press of Send Now repeats the first.
            "idempotency_key": new_idempotency_key(),
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
            "notices": _notices(scope, guarantors, templates, offer.notice),
        }

    # step="submit"

    def submit(
        self, subject: dict[str, Any], payload: dict[str, Any], context: dict[str, Any]
    ) -> dict[str, Any]:
        contracts.check("send-request", payload, request_error)
        practice_id = context["practice_id"]
        key = payload.get("idempotency_key") or new_idempotency_key()
        request_hash = _request_hash(subject, payload)
        earlier = self.store.notification_by_key(practice_id, key)
        if earlier is not None:
            return self._replay(earlier, request_hash)

        practice = self.host.practice(practice_id)
        scope = load_scope(self.host, practice_id, subject["type"], subject["id"])
        require_batched_statement(scope)
        guarantor = choose_guarantor(scope, payload["guarantor_id"])
        amount = amount_due(payload.get("amount"), guarantor)
        send_to = payload["send_to"]
        recipient = choose_recipient(
            scope,
            practice,
            guarantor,
            send_to["entity"],
            send_to["mode"],
            send_to.get("address"),
            self._opted_out(practice_id),
        )
        check_send_window(self.config.send_window, practice, utc_now())
        template = self._template(practice_id, payload.get("template_id"), recipient.mode)
        composed = self._compose(practice, scope, guarantor, recipient, template, payload, amount)

        record = self._new_record(
            key, request_hash, guarantor, recipient, composed, payload, context
        )
        holder = self.store.claim_notification(record)
        if holder is not None:  # a concurrent request with the same key won the race
            return self._replay(holder, request_hash)
        try:
            if recipient.corrected and send_to.get("save_contact"):
                self._save_contact(practice_id, recipient, context)
            message = _message(record, practice, recipient, composed)
        except BaseException:
            # Nothing reached a channel: give the key back, so that a retry goes at once
            # instead of waiting for a delivery that never began.
            self._release(record)
            raise
        return self._deliver(record, message, practice, recipient, context)

    def _release(self, record: NotificationRecord) -> None:
        try:
            self.store.release_claim(record.practice_id, record.id)
        except Exception as error:
            # The refusal the caller gets matters more; recovery settles the claim later.
            log.warning(
                "The claim of notification %s could not be released (%s); recovery will settle it.",
                record.id,
                type(error).__name__,
            )

    def _opted_out(self, practice_id: str) -> OptedOut:
        return lambda mode, address: self.store.is_opted_out(practice_id, mode, address)

    def _template(self, practice_id: str, template_id: str | None, mode: str) -> Template | None:
        if template_id is None:
            return None
        template = self.templates.get(practice_id, template_id)
        if not template.active:
            raise OnDemandError(
                f"The template {template.label!r} is inactive. Activate it with -MANAGE-, or "
                "pick another one.",
                code=ErrorCode.TEMPLATE_NOT_FOUND,
                field="template_id",
            )
        if template.mode != mode:
            raise OnDemandError(
                f"The template {template.label!r} is for {template.mode} messages, but this "
                f"notification goes out as {mode}. Pick a {mode} template, or type the message.",
                code=ErrorCode.TEMPLATE_MODE_MISMATCH,
                field="template_id",
            )
        return template

    def _compose(
        self,
        practice: Practice,
        scope: Scope,
        guarantor: Guarantor,
        recipient: Recipient,
        template: Template | None,
        payload: dict[str, Any],
        amount: Decimal | None,
    ) -> Composed:
        mode = recipient.mode
        # R9: a body typed in the editor (an edited template or free text) is sent as typed.
        body = payload.get("body") or (template.body if template else None)
        if not body:
            raise InvalidRequest(
                "There is no message to send: pick a template, or type the message.", field="body"
            )
        composing.check_fields(body, mode, "body")
        subject_text = None
        if mode == "email":
            subject_text = (
                payload.get("subject")
                or (template.subject if template else None)
                or composing.DEFAULT_EMAIL_SUBJECT
            )
            composing.check_fields(subject_text, mode, "subject")
        texts = (body, subject_text or "")
        # R5: at $0.00 or a credit no payment can be made, so no link is made or asked for.
        uses_link = guarantor.payment_allowed and any(
            "QuickPayLink" in composing.fields_in(text) for text in texts
        )
        link = None
        if uses_link and self.config.link_base_url is not None:
            link = TrackedLink(self.config.link_base_url, self.config.link_ttl_seconds, utc_now())
        values = self._values(practice, scope, guarantor, recipient, amount, uses_link, link)
        rendered = composing.render_text(body, values)
        composing.check_length(rendered, mode)
        sender = {
            "email": _email_sender(practice, template),
            "text": practice.text_from,
            "voice": practice.text_from or practice.phone,
        }[mode]
        return Composed(
            # Merged values come from the host: a line break among them must not reach a header.
            subject=composing.one_line(composing.render_text(subject_text, values))
            if subject_text
            else None,
            body=rendered,
            html=composing.render_html(body, values, practice.name) if mode == "email" else None,
            sender=sender or practice.phone,
            template_label=template.label if template else None,
            amount=amount,
            link=link,
        )

    def _values(
        self,
        practice: Practice,
        scope: Scope,
        guarantor: Guarantor,
        recipient: Recipient,
        amount: Decimal | None,
        uses_link: bool,
        link: TrackedLink | None,
    ) -> dict[str, str]:
        patient = _patient_in_scope(scope, recipient)
        values = {
            "GuarantorFirstName": guarantor.first_name,
            "GuarantorLastName": guarantor.last_name,
            "GuarantorFullName": guarantor.name,
            "PatientFirstName": patient.first_name if patient else "",
            "PatientLastName": patient.last_name if patient else "",
            "PatientFullName": patient.name if patient else "",
            "BalanceDue": composing.format_money(guarantor.balance),
            "AmountDue": composing.format_money(amount or guarantor.balance),
            "PracticeName": practice.name,
            "PracticePhone": practice.phone,
            "QuickPayLink": composing.NO_PAYMENT_SENTENCE,
        }
        if link is not None:
            # The host is asked for its QuickPay link when the tracked link is opened.
            values["QuickPayLink"] = link.url
        elif uses_link:
            values["QuickPayLink"] = self.host.quickpay_link(
                practice.id, guarantor.id, amount or guarantor.balance
            )
        return values

    def _new_record(
        self,
        key: str,
        request_hash: str,
        guarantor: Guarantor,
        recipient: Recipient,
        composed: Composed,
        payload: dict[str, Any],
        context: dict[str, Any],
    ) -> NotificationRecord:
        now = utc_now()
        notification_id = "ntf_" + secrets.token_hex(12)
        return NotificationRecord(
            id=notification_id,
            practice_id=context["practice_id"],
            guarantor_id=guarantor.id,
            idempotency_key=key,
            request_hash=request_hash,
            occurred_at=now,
            mode=recipient.mode,
            recipient=recipient.address,
            sent_to_type=entity_type(recipient.entity),
            sent_to_id=recipient.entity.id,
            sent_to_name=recipient.entity.name,
            sent_by_id=context["user"]["id"],
            sent_by_name=context["user"]["name"],
            status="sending",
            status_changed_at=now,
            balance=composing.format_amount(guarantor.balance),
            payment_allowed=guarantor.payment_allowed,
            template_label=composed.template_label,
            route_channels=tuple(channel.name for channel in self.channels[recipient.mode]),
            amount=composing.format_amount(composed.amount) if composed.amount else None,
            link_token_hash=composed.link.hash if composed.link else None,
            link_expires_at=composed.link.expires_at if composed.link else None,
            request=_essence(payload),
            # The answer if its worker dies before completing it; the completion replaces it.
            result={
                "notification_id": notification_id,
                "status": "unknown",
                "duplicate": False,
                "guarantor_id": guarantor.id,
                "balance": composing.format_amount(guarantor.balance),
                "payment_allowed": guarantor.payment_allowed,
                "mode": recipient.mode,
                "to": recipient.address,
                "subject": composed.subject,
                "body": composed.body,
                "detail": UNKNOWN_DETAIL,
            },
        )

    def _save_contact(
        self, practice_id: str, recipient: Recipient, context: dict[str, Any]
    ) -> None:
        self.host.update_contact(
            practice_id,
            {"type": entity_type(recipient.entity), "id": recipient.entity.id},
            {"kind": recipient.contact_kind, "value": recipient.address},
            context,
        )

    def _deliver(
        self,
        record: NotificationRecord,
        message: OutboundMessage,
        practice: Practice,
        recipient: Recipient,
        context: dict[str, Any],
    ) -> dict[str, Any]:
        outcome = deliver(message, self.channels[recipient.mode], self.config.deadline_seconds)
        assert record.result is not None
        result = {**record.result, "status": outcome.status, "detail": outcome.detail}
        completion = Completion(
            # The result says whether the message left; the history, how far it got. A channel
            # that hands the message over itself (the outbox) says "delivered" at once; the
            # others wait for the provider's callback.
            status="delivered" if outcome.delivered else outcome.status,
            detail=outcome.detail,
            channel=outcome.channel,
            provider_message_id=outcome.provider_message_id,
            result=result,
        )
        try:
            self.store.complete_notification(practice.id, record.id, completion)
        except StoreUnavailable as error:
            # The delivery is over: a refusal now would say nothing left when it may have.
            # The entry stays "sending" and recovery settles it from the channel's lookup.
            log.warning(
                "The outcome of notification %s (%s) could not be recorded: %s Recovery will "
                "settle its history entry.",
                record.id,
                outcome.status,
                error.outage,
            )
        else:
            if completion.channel is not None and completion.provider_message_id is not None:
                self.completed(completion.channel, completion.provider_message_id)
        if outcome.recipient_opted_out and outcome.channel is not None:
            self.opt_outs.change(
                practice.id,
                recipient.mode,
                recipient.address,
                True,
                source="provider",
                keyword=None,
                channel=outcome.channel,
            )
        self.notify(result, context)
        return result

    def _replay(self, record: NotificationRecord, request_hash: str) -> dict[str, Any]:
        """The first result for an idempotency key, once its delivery has ended or is known to
        have been cut short."""
        if record.request_hash != request_hash:
            raise OnDemandError(
                "This idempotency key was already used for a different notification. Use a new "
                "key for a new notification.",
                code=ErrorCode.IDEMPOTENCY_CONFLICT,
                field="idempotency_key",
            )
        give_up_at = time.monotonic() + self.config.deadline_seconds + DUPLICATE_GRACE_SECONDS
        while (
            record.status == "sending"
            and not self.recovery.is_stuck(record)
            and time.monotonic() < give_up_at
        ):
            time.sleep(DUPLICATE_POLL_SECONDS)
            record = (
                self.store.notification_by_key(record.practice_id, record.idempotency_key) or record
            )
        if record.status == "unknown" or self.recovery.is_stuck(record):
            record = self.recovery.settle(record)
        if record.status == "sending":
            raise OnDemandError(
                "The first request with this idempotency key is still being delivered. "
                "Look at the history in a moment instead of sending again.",
                code=ErrorCode.IDEMPOTENCY_IN_PROGRESS,
                field="idempotency_key",
            )
        return {**_answer(record), "duplicate": True}


def _email_sender(practice: Practice, template: Template | None) -> str | None:
    """The template's own sender when it is in the practice's domain, else the practice's.

    Templates are checked when saved, but a template store is another plugin's code: one that
    answers a sender of another domain (``security@bigbank.example``) is not believed.
    """
    if template is None or not template.sender_email:
        return practice.sender_email
    if in_practice_domain(template.sender_email, practice.sender_email):
        return template.sender_email
    log.warning(
        "Template %s of practice %s has a sender outside the practice's domain; the practice's "
        "own sender is used instead",
        template.id,
        practice.id,
    )
    return practice.sender_email


def _message(
    record: NotificationRecord, practice: Practice, recipient: Recipient, composed: Composed
) -> OutboundMessage:
    return OutboundMessage(
        notification_id=record.id,
        practice_id=practice.id,
        mode=recipient.mode,  # type: ignore[arg-type]
        to=recipient.address,
        sender=composed.sender,
        sender_name=practice.name,
        subject=composed.subject,
        body=composed.body,
        html=composed.html,
    )


def _answer(record: NotificationRecord) -> dict[str, Any]:
    """The send result kept for a record; for a send its worker never completed, the claim's
    provisional result with the status recovery, a status lookup or a provider's callback gave
    it (a result says whether the message left, not whether it arrived)."""
    assert record.result is not None
    if record.result["status"] != "unknown":
        return record.result
    status = LEFT.get(record.status, record.status)
    return {**record.result, "status": status, "detail": record.detail}


def _patient_in_scope(scope: Scope, recipient: Recipient) -> Patient | None:
    """Whose name the Patient fields carry: the dashboard's patient, else the one sent to."""
    if isinstance(scope.subject, Patient):
        return scope.subject
    if isinstance(recipient.entity, Patient):
        return recipient.entity
    patients = [entity for entity in scope.recipients if isinstance(entity, Patient)]
    return patients[0] if len(patients) == 1 else None


def new_idempotency_key() -> str:
    return secrets.token_hex(16)


def _request_hash(subject: dict[str, Any], payload: dict[str, Any]) -> str:
    canonical = json.dumps({"subject": subject, "payload": _essence(payload)}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _essence(payload: dict[str, Any]) -> dict[str, Any]:
    """What a request asks for, whichever way it is spelled: an omitted setting, ``null``, a
    blank subject or address and ``save_contact: false`` all mean the default, and the name
    the open form gave beside an entity says nothing the id does not."""
    send_to = payload["send_to"]
    return {
        "guarantor_id": payload["guarantor_id"],
        "send_to": {
            "entity": {"type": send_to["entity"]["type"], "id": send_to["entity"]["id"]},
            "mode": send_to["mode"],
            "address": _given(send_to.get("address")),
            "save_contact": bool(send_to.get("save_contact")),
        },
        "template_id": payload.get("template_id"),
        "subject": _given(payload.get("subject")),
        "body": payload.get("body"),
        # Only when given, so that the keys of requests made before amounts existed still match.
        **({"amount": amount} if (amount := _given(payload.get("amount"))) else {}),
    }


def _given(text: str | None) -> str | None:
    return text if text is not None and text.strip() else None


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
