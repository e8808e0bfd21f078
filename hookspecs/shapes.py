"""TypedDicts of the JSON that crosses a hook, one per schema of ``contracts/``.

They describe at type-checking time what the schemas check at run time, so that a host's
``mypy --strict`` catches a misspelled key::

    from hookspecs.types import SendRequest

    request: SendRequest = {
        "guarantor_id": "g1",
        "send_to": {"entity": {"type": "guarantor", "id": "g1"}, "mode": "text"},
        "idempotency_key": form["idempotency_key"],
    }

A key the schema may leave out is ``NotRequired``; a value it allows to be ``null`` is
``... | None``. Money is a string decimal to the cent (``"120.50"``), times are RFC 3339 UTC
strings. A test checks each against its schema's properties and required keys. Where a name
would clash with a value class of ``hookspecs.types`` (``Template``, ``InboundRequest``,
``InboundResponse``), the TypedDict ends in ``Dict``.
"""

# No ``from __future__ import annotations``: TypedDict must see ``NotRequired`` itself.
from typing import Any, Literal, NotRequired, TypedDict

ModeName = Literal["email", "text", "voice"]
EntityType = Literal["patient", "guarantor"]


# common.json


class Entity(TypedDict):
    """``{"type": "patient"|"guarantor", "id": ...}`` (``subject.json``)."""

    type: EntityType
    id: str


class EntityRef(TypedDict):
    type: EntityType
    id: str
    name: NotRequired[str]


class NamedEntity(TypedDict):
    type: EntityType
    id: str
    name: str


class User(TypedDict):
    id: str
    name: str


Subject = Entity


# The host's data (platform hooks)


class Contact(TypedDict):
    kind: Literal["email", "mobile", "home", "work"]
    value: str


class Practice(TypedDict):
    """What ``pm_practice`` answers."""

    id: str
    name: str
    phone: str
    timezone: str
    sender_email: NotRequired[str | None]
    text_from: NotRequired[str | None]


class Patient(TypedDict):
    """What ``pm_patient`` answers."""

    id: str
    first_name: str
    last_name: str
    guarantor_ids: list[str]
    contacts: list[Contact]


class OptOutFlags(TypedDict, total=False):
    email: bool
    text: bool
    voice: bool


class Guarantor(TypedDict):
    """What ``pm_guarantor`` answers."""

    id: str
    first_name: str
    last_name: str
    pops_balance: str
    dunning_count: int
    batched_statement_count: int
    patient_ids: list[str]
    contacts: list[Contact]
    opt_out: OptOutFlags


class OptOutContext(TypedDict):
    """``pm_set_opt_out``'s ``context``."""

    source: Literal["reply", "provider", "key_press", "staff"]
    keyword: str | None
    channel: str
    changed_at: str


class SendWindowSetting(TypedDict):
    start: str
    end: str


class SmtpSettings(TypedDict):
    host: str
    port: NotRequired[int]
    username: NotRequired[str]
    password: NotRequired[str]
    starttls: NotRequired[bool]
    ssl: NotRequired[bool]
    timeout_seconds: NotRequired[float]


# ``from`` is a keyword, so this one is written in the functional form.
TwilioSettings = TypedDict(
    "TwilioSettings",
    {
        "account_sid": str,
        "auth_token": str,
        "base_url": NotRequired[str],
        "from": NotRequired[str],
        "messaging_service_sid": NotRequired[str],
        "status_callback_url": NotRequired[str],
        "timeout_seconds": NotRequired[float],
    },
)


class WebhookSettings(TypedDict):
    url: str
    secret: str
    timeout_seconds: NotRequired[float]


class RecipientLimitSetting(TypedDict):
    messages: int
    hours: float


class PluginConfig(TypedDict, total=False):
    """What ``pm_plugin_config(plugin_name="ondemand")`` answers: every key optional. A third
    party's channel settings go under its name, which no TypedDict can list: build those with
    ``{**config, "pigeon": {...}}``."""

    database_url: str
    channels: dict[ModeName, str | list[str]]
    outbox_dir: str
    send_window: SendWindowSetting
    deadline_seconds: float
    text_validity_seconds: int
    recipient_limit: RecipientLimitSetting | None
    repeat_window_seconds: int
    link_base_url: str
    link_ttl_seconds: int
    template_store: str | None
    disabled_plugins: list[str]
    smtp: SmtpSettings
    twilio_sms: TwilioSettings
    twilio_voice: TwilioSettings
    webhook: WebhookSettings


# Dashboards (pm_dashboard_actions, pm_dashboard_action, pm_history_entries)


class DashboardContext(TypedDict):
    practice_id: str
    user: User


class DashboardAction(TypedDict):
    """One action of ``pm_dashboard_actions``' answer."""

    id: str
    label: str
    dashboard: Literal["patient", "guarantor"]
    panel: Literal["balance", "statement_notification_history"]
    enabled: bool
    disabled_reason: str | None


class FormGuarantor(TypedDict):
    id: str
    name: str
    balance: str
    payment_allowed: bool
    notice: str | None


class FormRecipient(TypedDict):
    entity: NamedEntity
    mode: ModeName
    address: str
    allowed: bool
    reason: str | None
    guarantor_ids: list[str]


class FormTemplate(TypedDict):
    id: str
    label: str
    mode: ModeName


class SendForm(TypedDict):
    """The send dialog, ``pm_dashboard_action(..., step="open")``."""

    action_id: Literal["ondemand.send_balance_notification"]
    can_send: bool
    reason: str | None
    idempotency_key: str
    guarantors: list[FormGuarantor]
    send_to: list[FormRecipient]
    templates: list[FormTemplate]
    notices: list[str]
    # Step "resend" only: the earlier notification's submit payload (a ``SendRequest`` without
    # its idempotency_key), to fill the dialog in with.
    prefill: NotRequired[dict[str, Any]]


class SendTo(TypedDict):
    entity: EntityRef
    mode: ModeName
    address: NotRequired[str | None]
    save_contact: NotRequired[bool]


class SendRequest(TypedDict):
    """The ``payload`` of ``pm_dashboard_action(..., step="submit")`` for a send."""

    guarantor_id: str
    send_to: SendTo
    template_id: NotRequired[str | None]
    subject: NotRequired[str | None]
    body: NotRequired[str | None]
    confirm_repeat: NotRequired[bool]
    amount: NotRequired[str | None]
    idempotency_key: NotRequired[str | None]


class SendResult(TypedDict):
    """A send's answer; also ``ondemand_notification_sent``'s ``result``."""

    notification_id: str
    status: Literal["sent", "failed", "unknown"]
    duplicate: bool
    guarantor_id: str
    balance: str
    payment_allowed: bool
    mode: ModeName
    to: str
    subject: str | None
    body: str
    detail: str


class SendPreview(TypedDict):
    """``pm_dashboard_action(..., step="preview")``'s answer: what ``submit`` would send for the
    same payload. ``segments`` and ``encoding`` are a text's SMS segments, None otherwise."""

    subject: str | None
    body: str
    html: str | None
    mode: ModeName
    to: str
    segments: int | None
    encoding: Literal["GSM-7", "UCS-2"] | None
    characters: int
    warnings: list[str]


class HistoryDisplay(TypedDict):
    title: str
    summary: str


class HistoryAction(TypedDict):
    """What staff can do from a history entry (``pm_dashboard_action`` with that step)."""

    id: Literal["resend", "cancel_link"]
    label: str


class HistoryEntry(TypedDict):
    """One entry of ``pm_history_entries``' answer."""

    id: str
    kind: Literal["on_demand_balance_notification"]
    guarantor_id: str
    occurred_at: str
    mode: ModeName
    to: str
    sent_to: NamedEntity
    sent_by: User
    status: Literal["sending", "sent", "delivered", "undelivered", "failed", "unknown"]
    status_changed_at: str
    balance: str
    payment_allowed: bool
    template_label: str | None
    channel: str | None
    counts_toward_dunning: Literal[False]
    amount: str | None
    link_opened_at: str | None
    paid_at: str | None
    paid_amount: str | None
    actions: list[HistoryAction]
    display: HistoryDisplay
    cursor: str


class SendStatus(TypedDict):
    """A sent notification's progress: ``pm_dashboard_action(..., step="status",
    payload={"notification_id": ...})``, polled by the dialog's timeline. While the database is
    away, the status the worker last knew, with ``stale`` and ``as_of`` (when it knew it)."""

    notification_id: str
    status: Literal["sending", "sent", "delivered", "undelivered", "failed", "unknown"]
    status_changed_at: str
    link_opened_at: str | None
    paid_at: str | None
    paid_amount: str | None
    stale: NotRequired[Literal[True]]
    as_of: NotRequired[str]


# Payments (pm_payment_posted)


class PaymentPosted(TypedDict):
    """``pm_payment_posted``'s arguments, as one object."""

    practice_id: str
    guarantor_id: str
    amount: str
    paid_at: str
    reference: str
    notification_id: str | None


# Templates (ondemand.manage_templates)


class TemplateDict(TypedDict):
    """A template as the dialogs show it (``template.json``)."""

    id: str
    label: str
    mode: ModeName
    active: bool
    sender_email: str | None
    subject: str | None
    body: str


class TemplateInput(TypedDict, total=False):
    label: str
    mode: ModeName
    active: bool
    sender_email: str | None
    subject: str | None
    body: str


class TemplateRequest(TypedDict):
    """The ``payload`` of ``pm_dashboard_action("ondemand.manage_templates", "submit", ...)``."""

    op: Literal["list", "get", "create", "update", "copy", "delete"]
    template_id: NotRequired[str | None]
    template: NotRequired[TemplateInput | None]


class OptOutRequest(TypedDict):
    """The ``payload`` of ``pm_dashboard_action("ondemand.opt_outs", "submit", ...)``: what a
    recipient asked staff for in person or on the phone."""

    op: Literal["opt_out", "opt_in"]
    mode: ModeName
    address: str
    note: NotRequired[str | None]


class OptOutResult(TypedDict):
    """The answer to an ``ondemand.opt_outs`` submit: the change as kept."""

    mode: ModeName
    address: str
    opted_out: bool
    changed_by: str
    changed_at: str


class RepliedTo(TypedDict):
    """The notification a patient's reply answers."""

    notification_id: str
    mode: ModeName
    occurred_at: str


class ReplyAction(TypedDict):
    """What staff can do from a patient's reply: ``pm_dashboard_action(action_id, step, ...,
    payload=payload)``, the ``ondemand.opt_outs`` submit with the reply's address filled in."""

    id: Literal["record_opt_out"]
    label: str
    action_id: Literal["ondemand.opt_outs"]
    step: Literal["submit"]
    payload: OptOutRequest


class HistoryReply(TypedDict):
    """An entry of ``pm_history_entries``' answer whose ``kind`` is ``patient_reply``: a reply
    to a notification, kept for staff (``HistoryEntry`` is the other kind)."""

    id: str
    kind: Literal["patient_reply"]
    guarantor_id: str
    occurred_at: str
    address: str
    text: str
    channel: str
    in_reply_to: RepliedTo
    actions: list[ReplyAction]
    display: HistoryDisplay
    cursor: str


class OneTemplate(TypedDict):
    template: TemplateDict


class TemplateList(TypedDict):
    templates: list[TemplateDict]


TemplateResult = OneTemplate | TemplateList


class ManageForm(TypedDict):
    """The templates dialog, ``pm_dashboard_action("ondemand.manage_templates", "open", ...)``."""

    action_id: Literal["ondemand.manage_templates"]
    templates: list[TemplateDict]
    fields: list[str]
    modes: list[ModeName]


# HTTP (pm_inbound_request)


class InboundRequestDict(TypedDict):
    """``pm_inbound_request``'s arguments, as one object."""

    plugin_name: str
    method: str
    path: str
    url: str
    headers: dict[str, str]
    form: dict[str, str]
    body: str


class InboundResponseDict(TypedDict):
    """What ``pm_inbound_request`` answers."""

    status: int
    headers: dict[str, str]
    body: str


# Refusals


class ErrorDict(TypedDict):
    """An ``OnDemandError`` as JSON (``OnDemandError.to_dict()``)."""

    code: str
    message: str
    field: str | None


#: Each schema of ``contracts/`` that describes JSON crossing a hook, and its TypedDict.
SHAPES: dict[str, object] = {
    "contact": Contact,
    "dashboard-action": DashboardAction,
    "dashboard-context": DashboardContext,
    "error": ErrorDict,
    "guarantor": Guarantor,
    "history-entry": HistoryEntry,
    "history-reply": HistoryReply,
    "inbound-request": InboundRequestDict,
    "inbound-response": InboundResponseDict,
    "manage-form": ManageForm,
    "opt-out-context": OptOutContext,
    "opt-out-request": OptOutRequest,
    "opt-out-result": OptOutResult,
    "patient": Patient,
    "payment-posted": PaymentPosted,
    "plugin-config": PluginConfig,
    "practice": Practice,
    "send-form": SendForm,
    "send-preview": SendPreview,
    "send-request": SendRequest,
    "send-result": SendResult,
    "send-status": SendStatus,
    "subject": Subject,
    "template": TemplateDict,
    "template-input": TemplateInput,
    "template-request": TemplateRequest,
    "template-result": TemplateResult,
}

__all__ = [
    "SHAPES",
    "Contact",
    "DashboardAction",
    "DashboardContext",
    "Entity",
    "EntityRef",
    "EntityType",
    "ErrorDict",
    "FormGuarantor",
    "FormRecipient",
    "FormTemplate",
    "Guarantor",
    "HistoryAction",
    "HistoryDisplay",
    "HistoryEntry",
    "HistoryReply",
    "InboundRequestDict",
    "InboundResponseDict",
    "ManageForm",
    "ModeName",
    "NamedEntity",
    "OneTemplate",
    "OptOutContext",
    "OptOutFlags",
    "OptOutRequest",
    "OptOutResult",
    "Patient",
    "PaymentPosted",
    "PluginConfig",
    "Practice",
    "RecipientLimitSetting",
    "RepliedTo",
    "ReplyAction",
    "SendForm",
    "SendPreview",
    "SendRequest",
    "SendResult",
    "SendStatus",
    "SendTo",
    "SendWindowSetting",
    "SmtpSettings",
    "Subject",
    "TemplateDict",
    "TemplateInput",
    "TemplateList",
    "TemplateRequest",
    "TemplateResult",
    "TwilioSettings",
    "User",
    "WebhookSettings",
]
