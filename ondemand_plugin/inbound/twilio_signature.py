"""Twilio's ``X-Twilio-Signature``: how Twilio proves a callback came from it.

The signature is base64(HMAC-SHA1(auth token, the full URL + each POST parameter's name and value,
sorted by name)), as Twilio documents under "Webhooks security".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

HEADER = "X-Twilio-Signature"


def expected_signature(url: str, params: Mapping[str, str], auth_token: str) -> str:
    signed = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def is_signed_by(
    url: str, params: Mapping[str, str], signature: str | None, auth_token: str
) -> bool:
    """Whether ``signature`` is Twilio's for this request; compared in constant time."""
    if not signature or not auth_token:
        return False
    expected = expected_signature(url, params, auth_token)
    return hmac.compare_digest(expected.encode(), signature.encode())
