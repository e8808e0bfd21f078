"""A gateway speaking the part of the Twilio REST API the channels use: creating messages and calls
with basic auth. It records every request, can fail like Twilio does (see ``HttpPeer``), and posts
status callbacks signed as Twilio signs them, also before it answers the request that created the
message (``before_answering``), as Twilio's sometimes come."""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Callable
from typing import Any

import httpx

from peers.http import HttpPeer, Reply, Request
from peers.twilio_signature import sign

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "tw-auth-token-s3cret"
_RESOURCE = re.compile(r"^/2010-04-01/Accounts/(?P<sid>AC\w{32})/(?P<kind>Messages|Calls)\.json$")


def twilio_error(status: int, code: int, message: str) -> Reply:
    """An error answer as Twilio shapes it."""
    body = {"code": code, "message": message, "status": status, "more_info": "https://x/21610"}
    return Reply(status, body)


class TwilioPeer(HttpPeer):
    def __init__(self, auth_token: str = AUTH_TOKEN) -> None:
        super().__init__(self._create)
        self.auth_token = auth_token
        self.created: dict[str, dict[str, str]] = {}
        # Called with each new SID before the request creating it is answered.
        self.before_answering: Callable[[str], object] | None = None

    def settings(self, **extra: Any) -> dict[str, Any]:
        """A channel's settings for this gateway."""
        return {
            "base_url": self.url,
            "account_sid": ACCOUNT_SID,
            "auth_token": self.auth_token,
            "timeout_seconds": 2,
            **extra,
        }

    def _create(self, request: Request) -> Reply:
        match = _RESOURCE.match(request.path)
        if match is None:
            return twilio_error(404, 20404, "The requested resource was not found")
        expected = base64.b64encode(f"{ACCOUNT_SID}:{self.auth_token}".encode()).decode()
        if (
            match["sid"] != ACCOUNT_SID
            or request.headers.get("Authorization") != f"Basic {expected}"
        ):
            return twilio_error(401, 20003, "Authenticate")
        form = request.form
        prefix = "SM" if match["kind"] == "Messages" else "CA"
        sid = prefix + secrets.token_hex(16)
        self.created[sid] = form
        if "From" not in form and "MessagingServiceSid" not in form:
            return twilio_error(400, 21603, "A 'From' or 'MessagingServiceSid' is required")
        if self.before_answering is not None:
            self.before_answering(sid)
        status = "queued" if match["kind"] == "Calls" or "From" in form else "accepted"
        return Reply(201, {"sid": sid, "status": status, "to": form.get("To")})

    def signed_callback(
        self, sid: str, status: str, *, token: str | None = None
    ) -> tuple[str, dict[str, str], dict[str, str]]:
        """The status callback of ``sid`` as Twilio sends it: the StatusCallback URL it was
        created with, the form, and the headers with the signature."""
        form = self.created[sid]
        url = form["StatusCallback"]
        kind = "Message" if sid.startswith("SM") else "Call"
        params = {
            f"{kind}Sid": sid,
            f"{kind}Status": status,
            "AccountSid": ACCOUNT_SID,
            "To": form["To"],
            "From": form.get("From", ""),
        }
        return url, params, {"X-Twilio-Signature": sign(url, params, token or self.auth_token)}

    def status_callback(self, sid: str, status: str, *, token: str | None = None) -> httpx.Response:
        """POST the status of ``sid`` to the StatusCallback it was created with, signed."""
        url, params, headers = self.signed_callback(sid, status, token=token)
        return httpx.post(url, data=params, headers=headers)
