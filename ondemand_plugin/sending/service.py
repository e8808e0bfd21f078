"""The send flow: entitlement → send criteria → compose → idempotency → deliver → history.
The preview stops after compose.

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
from ondemand_plugin import telemetry
from ondemand_plugin.boundary import contracts
from ondemand_plugin.boundary.config import Config
from ondemand_plugin.boundary.host import Host
from ondemand_plugin.boundary.model import Guarantor, Practice, entity_type
from ondemand_plugin.clock import utc_now
from ondemand_plugin.errors import ErrorCode, InvalidRequest, OnDemandError, StoreUnavailable
from ondemand_plugin.inbound.links import TrackedLink, preview_url
from ondemand_plugin.rules import composing, pacing
from ondemand_plugin.rules.amounts import amount_due
from ondemand_plugin.rules.criteria import (
    OptedOut,
    Recipient,
    check_send_window,
    choose_guarantor,
    choose_recipient,
    load_scope,
    require_batched_statement,
    send_options,
    send_window_refusal,
)
from ondemand_plugin.rules.opt_outs import OptOuts
from ondemand_plugin.rules.templates import TemplateManager
from ondemand_plugin.sending import dialog
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


# The preview's stand-in for the host's pay link: the host is not asked for a link nothing
# will carry (it may record each one it makes); about as long as a real one, for the count.
PREVIEW_PAY_LINK = "https://pay.example/preview-of-the-link"


@attrs.frozen
class Draft:
    """A notification checked and composed, not yet sent."""

    practice: Practice
    guarantor: Guarantor
    recipient: Recipient
    composed: composing.Composed
    # The amount staff chose; None for the balance.
    amount: Decimal | None


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
        remember: Callable[[NotificationRecord], None],
    ) -> None:
        self.opt_outs = opt_outs
        # Told of each provider message id a completion records, so that a provider's report
        # that came before it is applied (``PluginEvents.completed``).
        self.completed = completed
        # Told of each send's record as it ends, so that the dialog's timeline can answer
        # from it while the database is away (``Progress.remember``).
        self.remember = remember
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
        options = (
            send_options(scope, practice, self._opted_out(practice_id))
            if scope.eligible_guarantors
            else []
        )
        offer = self.templates.offer(practice_id)
        return dialog.open_model(
            scope,
            options,
            [template for template in offer.templates if template.active],
            offer.notice,
            send_window_refusal(self.config.send_window, practice, utc_now()),
            new_idempotency_key(),
        )

    # step="preview"

    def preview(
        self, subject: dict[str, Any], payload: dict[str, Any], context: dict[str, Any]
    ) -> dict[str, Any]:
        """What ``submit`` would send for ``payload``, refused as it would be; nothing is sent,
        recorded or saved, and the host is not asked for a pay link."""
        contracts.check("send-request", payload, request_error)
        base = self.config.link_base_url
        stand_in = PREVIEW_PAY_LINK if base is None else preview_url(base)
        draft = self._draft(subject, payload, context["practice_id"], lambda *_: stand_in)
        return dialog.preview(draft.composed, draft.recipient, draft.guarantor)

    # step="submit"

    def submit(
        self, subject: dict[str, Any], payload: dict[str, Any], context: dict[str, Any]
    ) -> dict[str, Any]:
        with telemetry.send(context["practice_id"]) as span:
            return self._submit(subject, payload, context, span)

    def _submit(
        self,
        subject: dict[str, Any],
        payload: dict[str, Any],
        context: dict[str, Any],
        span: telemetry.Mark,
    ) -> dict[str, Any]:
        contracts.check("send-request", payload, request_error)
        span.set(telemetry.MODE, payload["send_to"]["mode"])
        practice_id = context["practice_id"]
        key = payload.get("idempotency_key") or new_idempotency_key()
        request_hash = _request_hash(subject, payload)
        earlier = self.store.notification_by_key(practice_id, key)
        if earlier is not None:
            span.set(telemetry.STATUS, "duplicate")
            return self._replay(earlier, request_hash)

        made: list[TrackedLink] = []

        def pay_link(practice: Practice, guarantor: Guarantor, amount: Decimal) -> str:
            if self.config.link_base_url is None:
                return self.host.quickpay_link(practice.id, guarantor.id, amount)
            # The host is asked for its QuickPay link when the tracked link is opened.
            made.append(
                TrackedLink(self.config.link_base_url, self.config.link_ttl_seconds, utc_now())
            )
            return made[-1].url

        draft = self._draft(subject, payload, practice_id, pay_link)
        practice, recipient, composed = draft.practice, draft.recipient, draft.composed
        self._check_pacing(practice, recipient, composed, bool(payload.get("confirm_repeat")))

        record = self._new_record(
            key,
            request_hash,
            draft,
            made[0] if made else None,
            _essence(payload),
            context,
        )
        holder = self.store.claim_notification(record)
        if holder is not None:  # a concurrent request with the same key won the race
            span.set(telemetry.STATUS, "duplicate")
            return self._replay(holder, request_hash)
        span.set(telemetry.NOTIFICATION, record.id)
        try:
            if recipient.corrected and payload["send_to"].get("save_contact"):
                self._save_contact(practice_id, recipient, context)
            message = _message(record, practice, recipient, composed)
        except BaseException:
            # Nothing reached a channel: give the key back, so that a retry goes at once
            # instead of waiting for a delivery that never began.
            self._release(record)
            raise
        result = self._deliver(record, message, practice, recipient, context)
        span.set(telemetry.STATUS, result["status"])
        if result["status"] != "sent":
            span.fail(result["status"])
        return result

    def _draft(
        self,
        subject: dict[str, Any],
        payload: dict[str, Any],
        practice_id: str,
        pay_link: composing.PayLink,
    ) -> Draft:
        """The notification ``payload`` asks for, checked (R6, R8, the send window, the
        template) and composed: what both ``submit`` and ``preview`` start from."""
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
        check_send_window(self.config.send_window, practice, utc_now(), recipient)
        template = self._template(practice_id, payload.get("template_id"), recipient.mode)
        # Carriers ask that the first text from a number say how to opt out.
        first_text = recipient.mode == "text" and self._first_text(practice_id, recipient.address)
        composed = composing.compose(
            practice,
            scope,
            guarantor,
            recipient,
            template,
            payload,
            pay_link,
            amount,
            with_opt_out_line=first_text,
        )
        return Draft(practice, guarantor, recipient, composed, amount)

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

    def _check_pacing(
        self,
        practice: Practice,
        recipient: Recipient,
        composed: composing.Composed,
        confirm_repeat: bool,
    ) -> None:
        span = pacing.lookback(self.config.recipient_limit, self.config.repeat_window_seconds)
        if span is None:
            return
        now = utc_now()
        refusal = pacing.pacing_refusal(
            self.store.notifications_to(practice.id, (recipient.address,), now - span),
            now,
            limit=self.config.recipient_limit,
            repeat_window_seconds=self.config.repeat_window_seconds,
            mode=recipient.mode,
            body=composed.body,
            confirm_repeat=confirm_repeat,
            zone=practice.timezone,
        )
        if refusal is not None:
            raise refusal

    def _first_text(self, practice_id: str, address: str) -> bool:
        return practice_id not in self.store.practices_that_notified("text", address)

    def _new_record(
        self,
        key: str,
        request_hash: str,
        draft: Draft,
        link: TrackedLink | None,
        request: dict[str, Any],
        context: dict[str, Any],
    ) -> NotificationRecord:
        guarantor, recipient, composed = draft.guarantor, draft.recipient, draft.composed
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
            amount=composing.format_amount(draft.amount) if draft.amount else None,
            link_token_hash=link.hash if link else None,
            link_expires_at=link.expires_at if link else None,
            request=request,
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
        # What this worker knows of the send, even if the store could not take it just now.
        self.remember(attrs.evolve(record, status=completion.status, status_changed_at=utc_now()))
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
        self.remember(record)
        if record.status == "sending":
            raise OnDemandError(
                "The first request with this idempotency key is still being delivered. "
                "Look at the history in a moment instead of sending again.",
                code=ErrorCode.IDEMPOTENCY_IN_PROGRESS,
                field="idempotency_key",
            )
        return {**_answer(record), "duplicate": True}


def _message(
    record: NotificationRecord,
    practice: Practice,
    recipient: Recipient,
    composed: composing.Composed,
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
