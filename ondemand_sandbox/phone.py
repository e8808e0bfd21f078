"""The recipient's phone, as Twilio relays it: a reply typed in the outbox viewer reaches the plugin
the way a real reply does, as Twilio's signed webhook POSTed over HTTP to the host's mounted route.

The sandbox plays Twilio here, so it signs as Twilio does ("Webhooks security"): base64 of the
HMAC-SHA1, keyed with the account's auth token, of the full URL followed by each POST parameter's
name and value, sorted by name. The token never leaves the server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import urllib.error
import urllib.request
from collections.abc import Mapping
from urllib.parse import urlencode

SIGNATURE_HEADER = "X-Twilio-Signature"
TIMEOUT_SECONDS = 30
# Loopback requests to the sandbox itself never go through a proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

# The sandbox plays the provider: a made-up account, never one of Twilio's.
SANDBOX_ACCOUNT_SID = "AC" + "0" * 32


class ReplyNotRelayed(Exception):
    """The host's route could not be reached; the message says why."""


def twilio_signature(url: str, params: Mapping[str, str], auth_token: str) -> str:
    signed = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def reply_params(sender: str, practice_number: str, body: str) -> dict[str, str]:
    """The parameters of Twilio's incoming-message webhook, for a text ``sender`` sent back."""
    return {
        "MessageSid": "SM" + secrets.token_hex(16),
        "AccountSid": SANDBOX_ACCOUNT_SID,
        "From": sender,
        "To": practice_number,
        "Body": body,
        "NumMedia": "0",
    }


def relay_reply(url: str, params: Mapping[str, str], auth_token: str) -> int:
    """POST the reply to ``url``, signed; returns the HTTP status the host answered."""
    request = urllib.request.Request(
        url,
        data=urlencode(params).encode(),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            SIGNATURE_HEADER: twilio_signature(url, params, auth_token),
        },
        method="POST",
    )
    try:
        with _OPENER.open(request, timeout=TIMEOUT_SECONDS) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as refused:
        return refused.code
    except OSError as failed:
        raise ReplyNotRelayed(f"{url} could not be reached: {failed}") from None
