"""Refusals: each carries a stable ``code`` and a sentence staff or a developer can act on.

A refusal means nothing was delivered or recorded.
"""

from __future__ import annotations

from typing import Any


class OnDemandError(Exception):
    """A request the plugin refuses. ``code`` is stable; ``message`` says what to do."""

    code = "invalid_request"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
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
    code = "not_entitled"


class NotFound(OnDemandError):
    code = "not_found"


class InvalidRequest(OnDemandError):
    code = "invalid_request"


class HostError(OnDemandError):
    """The host's adapter answered a platform hook with data that breaks the contract."""

    code = "host_error"


class StoreUnavailable(OnDemandError):
    """The plugin's database cannot be used just now: unreachable, failing, or locked for longer
    than a request may wait. Nothing was sent or written; the same request may be sent again."""

    code = "store_unavailable"

    def __init__(self, database: str, reason: str) -> None:
        self.outage = f"The On-Demand database ({database}) is unavailable: {reason}."
        super().__init__(f"{self.outage} Nothing was sent or written; try again in a moment.")


class ConfigError(OnDemandError):
    code = "invalid_config"


class PluginError(OnDemandError):
    """An extension plugin broke the contract (strict mode raises it instead of skipping)."""

    code = "plugin_error"
