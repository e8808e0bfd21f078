"""R8's Modify: e-mail addresses and phone numbers checked and normalised before sending."""

from __future__ import annotations

import re

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from ondemand_plugin.errors import ErrorCode, OnDemandError

DEFAULT_REGION = "US"
# Numbers a text can reach; a number the plan cannot tell apart counts as mobile.
_TEXTABLE = {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}


def practice_region(practice_phone: str) -> str:
    """The country a number written without a country code is read in: the practice's own."""
    try:
        number = phonenumbers.parse(practice_phone, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return DEFAULT_REGION
    return phonenumbers.region_code_for_number(number) or DEFAULT_REGION


def normalize_email(address: str) -> str:
    try:
        return validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise _invalid(f"This e-mail address is not valid: {error}") from None


def normalize_phone(number_text: str, region: str, *, for_text: bool) -> str:
    """The number in E.164 (``+15035550123``); a text needs a number that can take one."""
    try:
        number = phonenumbers.parse(number_text, region)
    except phonenumbers.NumberParseException:
        raise _invalid("This phone number cannot be read; type it with its area code.") from None
    if not phonenumbers.is_valid_number(number):
        raise _invalid("This phone number is not a valid number; check its digits.")
    if for_text and phonenumbers.number_type(number) not in _TEXTABLE:
        raise _invalid("This number is not a mobile number, so it cannot receive a text.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_address(address: str, mode: str, region: str) -> str:
    if mode == "email":
        return normalize_email(address)
    return normalize_phone(address, region, for_text=mode == "text")


def mask(address: str) -> str:
    """An address fit for a log line: enough to tell two apart, not enough to use."""
    if "@" in address:
        local, _, domain = address.partition("@")
        return f"{local[:1]}***@{domain}"
    return f"{address[:2]}***{address[-4:]}" if len(address) > 6 else "***"


# What looks like an e-mail address or a phone number in free text (an exception's message).
_EMAIL_LIKE = re.compile(r"[\w.+%-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE_LIKE = re.compile(r"\+?\d[\d ().-]{5,}\d")


def mask_addresses(text: str) -> str:
    """``text`` with everything that looks like an e-mail address or a phone number masked."""
    text = _EMAIL_LIKE.sub(lambda match: mask(match.group()), text)
    return _PHONE_LIKE.sub(lambda match: mask(re.sub(r"[^\d+]", "", match.group())), text)


def _invalid(message: str) -> OnDemandError:
    return OnDemandError(
        message + " Correct it with Modify.", code=ErrorCode.INVALID_ADDRESS, field="address"
    )


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


def in_practice_domain(sender: str, practice_sender: str | None) -> bool:
    """Whether ``sender`` is in the domain of the practice's own sender, or under it: a
    template may not send in another company's name."""
    if not practice_sender:
        return False
    domain, own = domain_of(sender), domain_of(practice_sender)
    return domain == own or domain.endswith("." + own)
