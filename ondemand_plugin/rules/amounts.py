"""The amount a notification asks for: the balance, or less when staff choose (R5 still holds)."""

from __future__ import annotations

import re
from decimal import Decimal

from ondemand_plugin.boundary.model import Guarantor
from ondemand_plugin.errors import ErrorCode, OnDemandError
from ondemand_plugin.rules.composing import format_money

__all__ = ["amount_due"]

_AMOUNT = re.compile(r"[0-9]{1,9}(\.[0-9]{1,2})?")


def amount_due(given: str | None, guarantor: Guarantor) -> Decimal | None:
    """The amount staff chose, checked against the guarantor's balance; None for the balance.

    R5: at $0.00 or a credit no payment can be made, so no amount can be asked for either."""
    if given is None or not given.strip():
        return None
    text = given.strip()
    if not guarantor.payment_allowed:
        raise _invalid(
            f"{guarantor.name}'s balance is {format_money(guarantor.balance)}: no payment can "
            "be made from this notification, so it cannot ask for an amount. Leave the amount "
            "empty."
        )
    amount = Decimal(text) if _AMOUNT.fullmatch(text) else None
    if amount is None or amount <= 0:
        raise _invalid(
            f"The amount {given!r} is not an amount of money above $0.00: write it like 45.10."
        )
    if amount > guarantor.balance:
        raise _invalid(
            f"The amount {format_money(amount)} is more than {guarantor.name}'s balance of "
            f"{format_money(guarantor.balance)}: ask for the balance or less."
        )
    return amount


def _invalid(message: str) -> OnDemandError:
    return OnDemandError(message, code=ErrorCode.INVALID_AMOUNT, field="amount")
