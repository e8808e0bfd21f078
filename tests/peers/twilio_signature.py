"""How Twilio signs its callbacks (X-Twilio-Signature), written apart from the plugin's code so
that the tests do not share its mistakes.

base64(HMAC-SHA1(auth token, URL + each name and value, sorted by name)).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping


def sign(url: str, params: Mapping[str, str], auth_token: str) -> str:
    payload = url
    for name, value in sorted(params.items()):
        payload += name + value
    mac = hmac.new(auth_token.encode("utf-8"), payload.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")
