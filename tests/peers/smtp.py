"""An SMTP server (aiosmtpd) on a free loopback port, with optional STARTTLS, implicit TLS and
AUTH; it keeps every message it accepts, and can be told to refuse recipients with a reply."""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
import threading
from email.message import EmailMessage
from typing import Any

import attrs
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@attrs.frozen
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes


class _Handler:
    def __init__(self, peer: SmtpPeer) -> None:
        self.peer = peer

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self.peer.refuse_with is not None:
            return self.peer.refuse_with
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = bytes(envelope.original_content or b"")
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self.peer.lock:
            self.peer.received.append(
                Received(str(envelope.mail_from), list(envelope.rcpt_tos), message, raw)
            )
        return "250 Message accepted"


class SmtpPeer:
    """``SmtpPeer(starttls=ctx)``, ``SmtpPeer(implicit_tls=ctx)``, ``login=("user", "pw")``."""

    def __init__(
        self,
        *,
        starttls: ssl.SSLContext | None = None,
        implicit_tls: ssl.SSLContext | None = None,
        login: tuple[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.received: list[Received] = []
        self.logins: list[tuple[str, bool]] = []
        self.refuse_with: str | None = None
        self.lock = threading.Lock()
        self._login = login
        options: dict[str, Any] = {}
        if starttls is not None:
            options.update(tls_context=starttls, require_starttls=True)
        if login is not None:
            options.update(
                authenticator=self._authenticate,
                # aiosmtpd counts only STARTTLS as TLS (under implicit TLS it would offer no AUTH),
                # and warns of a login required without TLS: so implicit TLS offers a login.
                auth_required=implicit_tls is None,
                auth_require_tls=implicit_tls is None,
            )
        self.controller = Controller(
            _Handler(self),
            hostname="127.0.0.1",
            port=self.port,
            ssl_context=implicit_tls,
            **options,
        )

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and self._login == (
            data.login.decode(),
            data.password.decode(),
        )
        self.logins.append((data.login.decode() if isinstance(data, LoginPassword) else "", ok))
        return AuthResult(success=ok, handled=False)

    def __enter__(self) -> SmtpPeer:
        self.controller.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.controller.stop()

    def settings(self, **extra: Any) -> dict[str, Any]:
        """The channel's settings for this server."""
        return {"host": "127.0.0.1", "port": self.port, "timeout_seconds": 5, **extra}
