"""The ``telnyx`` configuration key, read once and checked when the plugin starts."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

import attrs
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

DEFAULT_BASE_URL = "https://api.telnyx.com"
DEFAULT_TIMEOUT_SECONDS = 10.0
CONFIG_KEY = "telnyx"


class SettingsError(ValueError):
    """The ``telnyx`` settings cannot work; the message says which one and how to fix it."""


@attrs.frozen
class TelnyxSettings:
    """``api_key`` and ``public_key`` are kept out of ``repr``, so out of logs."""

    api_key: str = attrs.field(repr=False)
    messaging_profile_id: str | None = None
    sender: str | None = None
    public_key: Ed25519PublicKey | None = attrs.field(default=None, repr=False)
    webhook_url: str | None = None
    base_url: str = DEFAULT_BASE_URL
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS

    @classmethod
    def read(cls, settings: Mapping[str, Any]) -> TelnyxSettings:
        api_key = settings.get("api_key")
        if not isinstance(api_key, str) or not api_key:
            raise SettingsError(
                "The telnyx setting api_key is missing: set it to an API key (v2) from the "
                "Telnyx portal."
            )
        return cls(
            api_key=api_key,
            messaging_profile_id=_text(settings, "messaging_profile_id"),
            sender=_text(settings, "from"),
            public_key=_public_key(settings.get("public_key")),
            webhook_url=_text(settings, "webhook_url"),
            base_url=str(settings.get("base_url") or DEFAULT_BASE_URL).rstrip("/"),
            timeout_seconds=_seconds(settings.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS)),
        )


def _text(settings: Mapping[str, Any], name: str) -> str | None:
    value = settings.get(name)
    if value is None or (isinstance(value, str) and value):
        return value
    raise SettingsError(f"The telnyx setting {name} must be a non-empty string or left out.")


def _seconds(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    raise SettingsError("The telnyx setting timeout_seconds must be a number of seconds above 0.")


def _public_key(value: object) -> Ed25519PublicKey | None:
    if value is None:
        return None
    try:
        raw = base64.b64decode(str(value), validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError):
        raise SettingsError(
            "The telnyx setting public_key is not an Ed25519 public key: copy the base64 key "
            "shown under Keys & Credentials > Public Key in the Telnyx portal."
        ) from None
