"""A loopback Telnyx for tests: a real HTTP server on 127.0.0.1 speaking the part of the
Messaging API v2 the channel uses, and posting webhooks signed with an Ed25519 key of its own,
as Telnyx signs them. A host can test its Telnyx configuration against it::

    with TelnyxGateway() as gateway:
        config["telnyx"] = gateway.settings(webhook_url=host_url + "ondemand/telnyx/webhooks")
        ...  # send a text
        [message_id] = gateway.messages
        gateway.report(message_id, "delivered")  # POSTs message.finalized to the webhook_url

``gateway.script = [(503, {}), (429, {"Retry-After": "1"})]`` fails the next requests with those
statuses; ``gateway.rule(number)`` answers for every later one (None: the normal answer).
"""

from __future__ import annotations

import base64
import functools
import json
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

API_KEY = "KEY0123456789ABCDEF_telnyx-s3cret"
PROFILE_ID = "40017f5a-6b56-4a2e-9d3c-7a1b2c3d4e5f"

#: An answer: the status, the JSON body (None for Telnyx's usual one) and extra headers.
Answer = tuple[int, dict[str, Any] | None, dict[str, str]]


def telnyx_error(status: int, code: str, title: str, detail: str = "") -> Answer:
    """An error answer as Telnyx shapes it."""
    return status, {"errors": [{"code": code, "title": title, "detail": detail}]}, {}


def opted_out() -> Answer:
    """Telnyx's answer for a recipient who replied STOP to the sender."""
    return telnyx_error(400, "40300", "Blocked due to STOP message")


class TelnyxGateway:
    def __init__(self, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self.signing_key = Ed25519PrivateKey.generate()
        # Each request's JSON body (None when it was not JSON), in order.
        self.requests: list[Any] = []
        # The messages created, by id.
        self.messages: dict[str, dict[str, Any]] = {}
        self.script: list[Answer] = []
        self.rule: Callable[[int], Answer | None] = lambda number: None
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        serve = functools.partial(self._server.serve_forever, poll_interval=0.05)
        self._thread = threading.Thread(target=serve, daemon=True)

    def __enter__(self) -> TelnyxGateway:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def public_key(self) -> str:
        """The key that checks this gateway's signatures, base64, as Telnyx's portal shows it."""
        raw = self.signing_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return base64.b64encode(raw).decode()

    def settings(self, **extra: Any) -> dict[str, Any]:
        """The ``telnyx`` settings of a channel sending through this gateway."""
        return {
            "api_key": self.api_key,
            "messaging_profile_id": PROFILE_ID,
            "public_key": self.public_key,
            "base_url": self.url,
            "timeout_seconds": 2,
            **extra,
        }

    # Webhooks

    def signed(self, body: str, timestamp: int | None = None) -> dict[str, str]:
        """The headers Telnyx sends with ``body``, signed at ``timestamp`` (now if None)."""
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = self.signing_key.sign(stamp.encode() + b"|" + body.encode())
        return {
            "Content-Type": "application/json",
            "telnyx-signature-ed25519": base64.b64encode(signature).decode(),
            "telnyx-timestamp": stamp,
        }

    def event(self, event_type: str, payload: dict[str, Any]) -> str:
        """A webhook's body, as Telnyx writes it."""
        return json.dumps(
            {
                "data": {
                    "event_type": event_type,
                    "id": str(uuid.uuid4()),
                    "occurred_at": datetime.now(UTC).isoformat(),
                    "payload": payload,
                    "record_type": "event",
                },
                "meta": {"attempt": 1, "delivered_to": "webhook_url"},
            }
        )

    def status_event(self, message_id: str, status: str, errors: list[Any] | None = None) -> str:
        """``message.sent`` (for ``sent``) or ``message.finalized`` of a message created here."""
        message = self.messages[message_id]
        payload = {
            "id": message_id,
            "type": "SMS",
            "direction": "outbound",
            "from": {"phone_number": message.get("from", "+15035550101")},
            "to": [{"phone_number": message["to"], "status": status}],
            "errors": errors or [],
        }
        kind = "message.sent" if status == "sent" else "message.finalized"
        return self.event(kind, payload)

    def received_event(self, text: str, sender: str, to: str) -> str:
        """``message.received``: ``sender`` texted ``text`` to our number ``to``."""
        payload = {
            "id": str(uuid.uuid4()),
            "type": "SMS",
            "direction": "inbound",
            "from": {"phone_number": sender},
            "to": [{"phone_number": to, "status": "webhook_delivered"}],
            "text": text,
        }
        return self.event("message.received", payload)

    def post(self, url: str, body: str, headers: dict[str, str] | None = None) -> httpx.Response:
        """POST a webhook to ``url``, signed now unless ``headers`` are given."""
        return httpx.post(
            url, content=body, headers=self.signed(body) if headers is None else headers
        )

    def report(self, message_id: str, status: str, url: str | None = None) -> httpx.Response:
        """Post the status of a message to its ``webhook_url`` (or ``url``), signed."""
        target = url or self.messages[message_id]["webhook_url"]
        return self.post(target, self.status_event(message_id, status))

    # The API

    def _answer(self, headers: dict[str, str], body: bytes) -> Answer:
        with self._lock:
            number = len(self.requests)
            try:
                request: Any = json.loads(body)
            except ValueError:
                request = None
            self.requests.append(request)
            fault = self.script.pop(0) if self.script else self.rule(number)
        if fault is not None:
            return fault
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return telnyx_error(401, "10009", "Authentication failed")
        if not isinstance(request, dict) or not request.get("to") or "text" not in request:
            return telnyx_error(422, "10005", "Invalid parameter", "to and text are required")
        if "from" not in request and "messaging_profile_id" not in request:
            return telnyx_error(422, "40305", "Invalid 'from' address")
        message_id = str(uuid.uuid4())
        with self._lock:
            self.messages[message_id] = request
        data = {
            "id": message_id,
            "record_type": "message",
            "to": [{"phone_number": request["to"], "status": "queued"}],
            "messaging_profile_id": request.get("messaging_profile_id"),
        }
        return 200, {"data": data}, {}


def _handler_for(gateway: TelnyxGateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            if self.path != "/v2/messages":
                status, answer, extra = telnyx_error(404, "10015", "Resource not found")
            else:
                headers = {name.lower(): value for name, value in self.headers.items()}
                status, answer, extra = gateway._answer(headers, body)
            data = json.dumps(answer if answer is not None else {"errors": []}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # tests read gateway.requests, not the server's log

    return Handler
