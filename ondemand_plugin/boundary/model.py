"""The host's data as the plugin uses it: plain, validated, immutable values."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from zoneinfo import ZoneInfo

import attrs

# A contact's kind decides which modes can reach it.
MODES_BY_CONTACT_KIND: Mapping[str, tuple[str, ...]] = {
    "email": ("email",),
    "mobile": ("text", "voice"),
    "home": ("voice",),
    "work": ("voice",),
}


def full_name(first: str, last: str) -> str:
    return " ".join(part for part in (first, last) if part)


@attrs.frozen
class Contact:
    kind: str
    value: str = attrs.field(repr=False)

    @property
    def modes(self) -> tuple[str, ...]:
        return MODES_BY_CONTACT_KIND[self.kind]


@attrs.frozen
class Practice:
    id: str
    name: str
    phone: str
    timezone: ZoneInfo
    sender_email: str | None
    text_from: str | None


@attrs.frozen
class Patient:
    id: str
    first_name: str
    last_name: str
    guarantor_ids: tuple[str, ...]
    contacts: tuple[Contact, ...]

    @property
    def name(self) -> str:
        return full_name(self.first_name, self.last_name)


@attrs.frozen
class Guarantor:
    id: str
    first_name: str
    last_name: str
    balance: Decimal
    dunning_count: int
    batched_statement_count: int
    patient_ids: tuple[str, ...]
    contacts: tuple[Contact, ...]
    opt_out: Mapping[str, bool]

    @property
    def name(self) -> str:
        return full_name(self.first_name, self.last_name)

    @property
    def payment_allowed(self) -> bool:
        """R5: at $0.00 or a credit the notification can go out, but nothing can be paid."""
        return self.balance > 0

    @property
    def had_batched_statement(self) -> bool:
        return self.batched_statement_count > 0


Entity = Patient | Guarantor


def entity_type(entity: Entity) -> str:
    return "patient" if isinstance(entity, Patient) else "guarantor"
