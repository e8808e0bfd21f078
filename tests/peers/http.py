"""A loopback HTTP server of the tests' own, in a thread, that records each request and answers it
normally unless told to fail: with a status (429 with ``Retry-After``, 500, 503, 400...), slowly,
or not at all (the connection is closed)."""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import attrs


@attrs.frozen
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    # The client's port: one per connection, so requests with the same one shared a connection.
    client_port: int = 0

    @property
    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))

    def json(self) -> Any:
        return json.loads(self.body)


@attrs.frozen
class Reply:
    """An answer: ``Reply(503)``, ``Reply(429, headers={"Retry-After": "1"})``."""

    status: int
    body: Any = None
    headers: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen
class Slow:
    """The normal answer, after ``seconds``."""

    seconds: float


@attrs.frozen
class Drop:
    """No answer: the connection is closed."""


Fault = Reply | Slow | Drop | None
Respond = Callable[[Request], Reply]


class HttpPeer:
    """``peer.script = [Reply(503), Drop()]`` fails the next two requests; ``peer.rule`` decides
    for every request by its number (from 0) once the script is used up."""

    def __init__(self, respond: Respond) -> None:
        self.respond = respond
        self.requests: list[Request] = []
        self.script: list[Fault] = []
        self.rule: Callable[[int], Fault] = lambda number: None
        self.lock = threading.Lock()
        self.server = _Server(("127.0.0.1", 0), _handler_for(self))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        # A short poll keeps shutdown, so each test's teardown, quick.
        serve = functools.partial(self.server.serve_forever, poll_interval=0.05)
        self._thread = threading.Thread(target=serve, daemon=True)

    def __enter__(self) -> HttpPeer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _fault(self, request: Request) -> Fault:
        with self.lock:
            number = len(self.requests)
            self.requests.append(request)
            return self.script.pop(0) if self.script else self.rule(number)


class _Server(ThreadingHTTPServer):
    # As a provider's front end does, take many new connections at once: the standard library's
    # backlog of 5 drops the rest, and each dropped one waits a second to try again.
    request_queue_size = 128


def _handler_for(peer: HttpPeer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real providers offer
        # The answer leaves in one write, as a real server's does: headers and body written
        # apart would wait out the client's delayed ACK on a kept-alive connection.
        wbufsize = -1
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            request = Request(
                "POST",
                self.path,
                dict(self.headers.items()),
                self.rfile.read(length),
                self.client_address[1],
            )
            fault = peer._fault(request)
            if isinstance(fault, Drop):
                self.close_connection = True
                return
            if isinstance(fault, Slow):
                time.sleep(fault.seconds)
            self._send(fault if isinstance(fault, Reply) else peer.respond(request))

        def _send(self, reply: Reply) -> None:
            body = b"" if reply.body is None else json.dumps(reply.body).encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the tests read peer.requests, not the server's log

    return Handler
