"""Composing a message: the mappable fields and their values, the sender, the default subject,
R5's wording when no payment can be made, and the rendering per mode (plain text, escaped HTML,
SMS segments). The ``submit`` and ``preview`` steps compose through ``compose`` alike."""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs

from hookspecs.types import Template
from ondemand_plugin.boundary.model import Guarantor, Patient, Practice
from ondemand_plugin.errors import ErrorCode, InvalidRequest, OnDemandError
from ondemand_plugin.rules.addresses import in_practice_domain

if TYPE_CHECKING:
    # Only named in annotations: the send criteria depend on the host, which renders money here.
    from ondemand_plugin.rules.criteria import Recipient, Scope

log = logging.getLogger(__name__)

# The same fields a standard balance notification offers (R7).
FIELDS: tuple[str, ...] = (
    "GuarantorFirstName",
    "GuarantorLastName",
    "GuarantorFullName",
    "PatientFirstName",
    "PatientLastName",
    "PatientFullName",
    "BalanceDue",
    "AmountDue",
    "PracticeName",
    "PracticePhone",
    "QuickPayLink",
)
# A call cannot carry a link.
FIELDS_BY_MODE: Mapping[str, frozenset[str]] = {
    "email": frozenset(FIELDS),
    "text": frozenset(FIELDS),
    "voice": frozenset(FIELDS) - {"QuickPayLink"},
}
NO_PAYMENT_SENTENCE = "No payment is due at this time."
DEFAULT_EMAIL_SUBJECT = "Your balance with {{PracticeName}}"
MAX_TEXT_LENGTH = 1600
# Carriers (CTIA) ask that the first text from a number say how to opt out.
OPT_OUT_LINE = "Reply STOP to opt out."
_SAYS_STOP = re.compile(r"\bstop\b", re.IGNORECASE)

_FIELD = re.compile(r"\{\{\s*([A-Za-z0-9_]*)\s*\}\}")
_GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = set("^{}\\[~]|€\f")


def fields_in(text: str) -> list[str]:
    return [match.group(1) for match in _FIELD.finditer(text)]


def check_fields(text: str, mode: str, field: str) -> None:
    """Refuse a text that names a field this mode does not know (``unknown_field``)."""
    allowed = FIELDS_BY_MODE[mode]
    for name in fields_in(text):
        if name not in allowed:
            if name == "QuickPayLink":
                hint = "A call cannot carry a link: say {{PracticePhone}} instead."
            else:
                hint = "The fields are: " + ", ".join("{{" + known + "}}" for known in FIELDS) + "."
            raise OnDemandError(
                f"{{{{{name}}}}} is not a mappable field. {hint}",
                code=ErrorCode.UNKNOWN_FIELD,
                field=field,
            )


def render_text(text: str, values: Mapping[str, str]) -> str:
    return _FIELD.sub(lambda match: values[match.group(1)], text)


def with_opt_out_line_added(text: str) -> str:
    """``text`` ending with the opt-out line, unless it already says how to STOP."""
    if _SAYS_STOP.search(text):
        return text
    return f"{text.rstrip()}\n{OPT_OUT_LINE}"


def without_opt_out_line(text: str) -> str:
    """``text`` without the opt-out line ``with_opt_out_line_added`` added."""
    return text.removesuffix(f"\n{OPT_OUT_LINE}")


def render_html(text: str, values: Mapping[str, str], practice_name: str) -> str:
    """The e-mail's HTML part: every piece of text and every merged value escaped."""
    pieces: list[str] = []
    position = 0
    for match in _FIELD.finditer(text):
        pieces.append(html.escape(text[position : match.start()]))
        value = values[match.group(1)]
        if match.group(1) == "QuickPayLink" and value.startswith(("https://", "http://")):
            pieces.append(f'<a href="{html.escape(value)}">{html.escape(value)}</a>')
        else:
            pieces.append(html.escape(value))
        position = match.end()
    pieces.append(html.escape(text[position:]))
    body = "".join(pieces).replace("\r\n", "\n").replace("\n", "<br>\n")
    return (
        '<!doctype html>\n<html><body style="font-family:sans-serif">\n'
        f"<h2>{html.escape(practice_name)}</h2>\n<p>{body}</p>\n</body></html>\n"
    )


CENT = Decimal("0.01")


def to_cents(amount: Decimal) -> Decimal:
    """``amount`` to the cent, a negative zero (``-0.00``) read as zero."""
    cents = amount.quantize(CENT)
    return abs(cents) if cents.is_zero() else cents


def format_amount(amount: Decimal) -> str:
    """A balance as the contracts carry it: ``"12.30"``, ``"0.00"``, ``"-35.00"``."""
    return f"{to_cents(amount):f}"


def one_line(text: str) -> str:
    """``text`` fit for a mail header: every kind of line break (CR, LF, U+0085, U+2028,
    U+2029, and the rest ``str.splitlines`` knows) becomes a space."""
    return " ".join(text.splitlines())


def format_money(amount: Decimal) -> str:
    """``$1,234.50``; a credit shows as a credit: ``$12.00 credit``."""
    cents = to_cents(amount)
    text = f"${abs(cents):,.2f}"
    return f"{text} credit" if cents < 0 else text


def sms_segments(text: str) -> tuple[str, int]:
    """The encoding (``GSM-7`` or ``UCS-2``) and how many SMS segments ``text`` takes."""
    if all(char in _GSM7_BASIC or char in _GSM7_EXTENDED for char in text):
        units = sum(2 if char in _GSM7_EXTENDED else 1 for char in text)
        return "GSM-7", 1 if units <= 160 else -(-units // 153)
    # Characters outside the basic plane take two UTF-16 code units.
    units = sum(2 if ord(char) > 0xFFFF else 1 for char in text)
    return "UCS-2", 1 if units <= 70 else -(-units // 67)


def check_length(body: str, mode: str) -> None:
    if mode == "text" and len(body) > MAX_TEXT_LENGTH:
        raise OnDemandError(
            f"A text can carry at most {MAX_TEXT_LENGTH} characters; this one has {len(body)}. "
            "Shorten the message.",
            code=ErrorCode.INVALID_REQUEST,
            field="body",
        )


# R5: at $0.00 or a credit there is nothing to pay, so the sentence that offers the link goes.
_SENTENCE_BREAK = re.compile(r"[.!?]\s+|\n")
_AFTER_LINK = re.compile(r"[.!?,;:)]*")


def without_pay_link(text: str) -> str:
    """``text`` for a guarantor who cannot pay (R5): each sentence that carries
    ``{{QuickPayLink}}``, from its start to the link and the punctuation right after it, becomes
    "No payment is due at this time." ("Pay securely: {{QuickPayLink}}" is replaced whole,
    rather than reading "Pay securely: No payment is due at this time.")."""
    pieces: list[str] = []
    position = 0
    for match in _FIELD.finditer(text):
        if match.group(1) != "QuickPayLink" or match.start() < position:
            continue
        breaks = list(_SENTENCE_BREAK.finditer(text, position, match.start()))
        start = breaks[-1].end() if breaks else position
        after = _AFTER_LINK.match(text, match.end())
        pieces += [text[position:start], NO_PAYMENT_SENTENCE]
        position = after.end() if after else match.end()
    pieces.append(text[position:])
    return "".join(pieces)


@attrs.frozen
class Composed:
    """A message as it will be sent, and what a preview tells staff about it."""

    subject: str | None
    body: str
    html: str | None
    sender: str
    template_label: str | None
    # Whether the text offers the pay link (before R5 takes it out), and the fields it uses
    # that render empty for this recipient.
    offers_pay_link: bool
    empty_fields: tuple[str, ...]


# The pay link for a guarantor and the amount asked: made only when the message uses it and a
# payment can be made (R5).
PayLink = Callable[[Practice, Guarantor, Decimal], str]


def compose(
    practice: Practice,
    scope: Scope,
    guarantor: Guarantor,
    recipient: Recipient,
    template: Template | None,
    typed: Mapping[str, Any],
    pay_link: PayLink,
    amount: Decimal | None = None,
    *,
    with_opt_out_line: bool = False,
) -> Composed:
    """The message for ``recipient``: ``typed`` (the request's ``body`` and ``subject``) or
    the template's texts, with the fields' values merged in; ``amount`` is the one staff chose
    (None: the balance); ``with_opt_out_line`` adds the opt-out line to a text that lacks one
    (counted in its length)."""
    mode = recipient.mode
    # R9: a body typed in the editor (an edited template or free text) is sent as typed.
    body = typed.get("body") or (template.body if template else None)
    if not body:
        raise InvalidRequest(
            "There is no message to send: pick a template, or type the message.", field="body"
        )
    check_fields(body, mode, "body")
    subject = None
    if mode == "email":
        subject = (
            typed.get("subject")
            or (template.subject if template else None)
            or DEFAULT_EMAIL_SUBJECT
        )
        check_fields(subject, mode, "subject")
    offers_pay_link = "QuickPayLink" in fields_in(body)
    if not guarantor.payment_allowed:
        body = without_pay_link(body)
        subject = without_pay_link(subject) if subject else None
    texts = (body, subject or "")
    values = field_values(practice, scope, guarantor, recipient, texts, pay_link, amount)
    rendered = render_text(body, values)
    if with_opt_out_line:
        rendered = with_opt_out_line_added(rendered)
    check_length(rendered, mode)
    used = dict.fromkeys(name for text in texts for name in fields_in(text))
    sender = {
        "email": email_sender(practice, template),
        "text": practice.text_from,
        "voice": practice.text_from or practice.phone,
    }[mode]
    return Composed(
        # Merged values come from the host: a line break among them must not reach a header.
        subject=one_line(render_text(subject, values)) if subject else None,
        body=rendered,
        html=render_html(body, values, practice.name) if mode == "email" else None,
        sender=sender or practice.phone,
        template_label=template.label if template else None,
        offers_pay_link=offers_pay_link,
        empty_fields=tuple(name for name in used if not values[name]),
    )


def field_values(
    practice: Practice,
    scope: Scope,
    guarantor: Guarantor,
    recipient: Recipient,
    texts: tuple[str, ...],
    pay_link: PayLink,
    amount: Decimal | None = None,
) -> dict[str, str]:
    patient = _patient_in_scope(scope, recipient)
    values = {
        "GuarantorFirstName": guarantor.first_name,
        "GuarantorLastName": guarantor.last_name,
        "GuarantorFullName": guarantor.name,
        "PatientFirstName": patient.first_name if patient else "",
        "PatientLastName": patient.last_name if patient else "",
        "PatientFullName": patient.name if patient else "",
        "BalanceDue": format_money(guarantor.balance),
        "AmountDue": format_money(amount or guarantor.balance),
        "PracticeName": practice.name,
        "PracticePhone": practice.phone,
        "QuickPayLink": NO_PAYMENT_SENTENCE,
    }
    # R5: at $0.00 or a credit no payment can be made, so the host is not asked for a link.
    uses_link = any("QuickPayLink" in fields_in(text) for text in texts)
    if guarantor.payment_allowed and uses_link:
        values["QuickPayLink"] = pay_link(practice, guarantor, amount or guarantor.balance)
    return values


def email_sender(practice: Practice, template: Template | None) -> str | None:
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


def _patient_in_scope(scope: Scope, recipient: Recipient) -> Patient | None:
    """Whose name the Patient fields carry: the dashboard's patient, else the one sent to."""
    if isinstance(scope.subject, Patient):
        return scope.subject
    if isinstance(recipient.entity, Patient):
        return recipient.entity
    patients = [entity for entity in scope.recipients if isinstance(entity, Patient)]
    return patients[0] if len(patients) == 1 else None
