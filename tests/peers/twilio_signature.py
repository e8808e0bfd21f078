"""Twilio's request signature, as Twilio documents it, for peers that sign their callbacks."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping


def sign(url: str, params: Mapping[str, str], auth_token: str) -> str:
    """Base64 of the HMAC-SHA1, keyed with the auth token, of the full URL followed by each POST
    parameter's name and value, sorted by name."""
    payload = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()
