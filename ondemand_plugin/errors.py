"""Refusals: each carries a stable ``code`` and a sentence staff or a developer can act on.

A refusal means nothing was delivered or recorded.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

__all__ = [
    "ConfigError",
    "ErrorCode",
    "HostError",
    "InvalidRequest",
    "NotEntitled",
    "NotFound",
    "OnDemandError",
    "PluginError",
    "StoreUnavailable",
]


class ErrorCode(StrEnum):
    """Every refusal's stable code: the one list, which the README's table follows."""

    NOT_ENTITLED = "not_entitled"
    NO_BATCHED_STATEMENT = "no_batched_statement"
    GUARANTOR_NOT_ELIGIBLE = "guarantor_not_eligible"
    NO_CONTACT = "no_contact"
    INVALID_ADDRESS = "invalid_address"
    OPTED_OUT = "opted_out"
    SENDER_NOT_CONFIGURED = "sender_not_configured"
    OUTSIDE_SEND_WINDOW = "outside_send_window"
    TEMPLATE_NOT_FOUND = "template_not_found"
    TEMPLATE_MODE_MISMATCH = "template_mode_mismatch"
    UNKNOWN_FIELD = "unknown_field"
    INVALID_AMOUNT = "invalid_amount"
    INVALID_REQUEST = "invalid_request"
    NOT_FOUND = "not_found"
    RECIPIENT_NOT_ALLOWED = "recipient_not_allowed"
    RECENT_DUPLICATE = "recent_duplicate"
    RECIPIENT_LIMIT = "recipient_limit"
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"
    IDEMPOTENCY_IN_PROGRESS = "idempotency_in_progress"
    QUICKPAY_UNAVAILABLE = "quickpay_unavailable"
    HOST_ERROR = "host_error"
    STORE_UNAVAILABLE = "store_unavailable"
    INVALID_CONFIG = "invalid_config"
    PLUGIN_ERROR = "plugin_error"


class OnDemandError(Exception):
    """A request the plugin refuses. ``code`` is stable; ``message`` says what to do."""

    code: ErrorCode = ErrorCode.INVALID_REQUEST

    def __init__(
        self, message: str, *, code: ErrorCode | None = None, field: str | None = None
    ) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, Any]:
        """The refusal as ``contracts/error.json``."""
        return {"code": self.code, "message": self.message, "field": self.field}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class NotEntitled(OnDemandError):
    code = ErrorCode.NOT_ENTITLED


class NotFound(OnDemandError):
    code = ErrorCode.NOT_FOUND


class InvalidRequest(OnDemandError):
    code = ErrorCode.INVALID_REQUEST


class HostError(OnDemandError):
    """The host's adapter answered a platform hook with data that breaks the contract."""

    code = ErrorCode.HOST_ERROR


class StoreUnavailable(OnDemandError):
    """The plugin's database cannot be used just now: unreachable, failing, or locked for longer
    than a request may wait. Nothing was sent or written; the same request may be sent again."""

    code = ErrorCode.STORE_UNAVAILABLE

    def __init__(self, database: str, reason: str) -> None:
        self.outage = f"The On-Demand database ({database}) is unavailable: {reason}."
        super().__init__(f"{self.outage} Nothing was sent or written; try again in a moment.")


class ConfigError(OnDemandError):
    code = ErrorCode.INVALID_CONFIG


class PluginError(OnDemandError):
    """An extension plugin broke the contract (strict mode raises it instead of skipping)."""

    code = ErrorCode.PLUGIN_ERROR
