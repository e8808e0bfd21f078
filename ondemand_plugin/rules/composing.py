"""Mappable fields and message rendering per mode: plain text, escaped HTML, SMS segments."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from decimal import Decimal

from ondemand_plugin.errors import ErrorCode, OnDemandError

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
