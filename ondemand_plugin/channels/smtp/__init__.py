"""The ``smtp`` channel: e-mail over SMTP with the standard library.

Settings under ``smtp``: ``host``, and optionally ``port`` (587 with STARTTLS, 465 with implicit
TLS, else 25), ``username`` and ``password``, ``starttls`` (on by default with a login, so that a
password never crosses the network in clear) or ``ssl``, ``timeout_seconds``.
Certificates are checked against the system's trust store (``SSL_CERT_FILE`` adds to it).

Each message is multipart: the text and the HTML part (whose merged values the composer has
escaped), from the practice's sender address with the practice's name, and a Message-ID, which
is the receipt's provider message id. A refused connection, a timeout, a dropped connection and
4xx replies are worth retrying; 5xx replies are not.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from typing import Any

from hookspecs import hookimpl
from hookspecs.types import (
    Channel,
    DeliveryReceipt,
    OutboundMessage,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from ondemand_plugin.channels.http import DEFAULT_TIMEOUT_SECONDS, scrub
from ondemand_plugin.rules.addresses import mask
from ondemand_plugin.rules.composing import one_line

log = logging.getLogger(__name__)


class SmtpChannel:
    name = "smtp"
    modes = frozenset({"email"})

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.host: str = settings["host"]
        self.ssl: bool = settings.get("ssl", False)
        self.starttls: bool = settings.get("starttls", not self.ssl and "username" in settings)
        self.port: int = settings.get("port", 465 if self.ssl else 587 if self.starttls else 25)
        self.username: str | None = settings.get("username")
        self._password: str | None = settings.get("password")
        self.timeout_seconds = float(settings.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS))
        # Loading the trust store takes tens of milliseconds: once per channel, not per message.
        self._tls = ssl.create_default_context() if self.ssl or self.starttls else None

    def __repr__(self) -> str:
        tls = "ssl" if self.ssl else "starttls" if self.starttls else "plain"
        return f"SmtpChannel({self.host!r}, {self.port}, {tls})"

    def deliver(self, message: OutboundMessage) -> DeliveryReceipt:
        email = compose_email(message)
        try:
            with self._connect() as server:
                if self.username is not None:
                    server.login(self.username, self._password or "")
                server.send_message(email)
        except (smtplib.SMTPException, OSError) as error:
            raise self._error(error, message) from None
        log.debug("The SMTP server accepted %s for %s", message.notification_id, mask(message.to))
        return DeliveryReceipt(
            status="sent",
            provider_message_id=email["Message-ID"],
            detail=f"Accepted by the SMTP server {self.host}.",
        )

    def _connect(self) -> smtplib.SMTP:
        if self.ssl:
            return smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout_seconds, context=self._tls
            )
        server = smtplib.SMTP(self.host, self.port, timeout=self.timeout_seconds)
        try:
            if self.starttls:
                server.starttls(context=self._tls)
        except BaseException:
            server.close()
            raise
        return server

    def _error(self, error: Exception, message: OutboundMessage) -> Exception:
        code, text = _reply(error)
        secrets = (self._password or "",)
        reason = scrub(f"{code} {text}" if code else text, (message.to, message.sender), secrets)
        where = f"The SMTP server {self.host}:{self.port}"
        if isinstance(error, ssl.SSLCertVerificationError):
            return PermanentDeliveryError(
                f"{where} has a certificate this machine does not trust ({reason}). Fix the "
                "server's certificate, or add its CA to the trust store (SSL_CERT_FILE)."
            )
        if isinstance(error, smtplib.SMTPNotSupportedError):
            return PermanentDeliveryError(
                f"{where} does not offer what the settings ask for ({reason}): check "
                "smtp.starttls, smtp.ssl and smtp.username against what the server supports."
            )
        if code is None or 400 <= code < 500:
            return TransientDeliveryError(f"{where} did not take the message: {reason}")
        if isinstance(error, smtplib.SMTPAuthenticationError):
            return PermanentDeliveryError(
                f"{where} refused the login ({reason}): check smtp.username and smtp.password."
            )
        return PermanentDeliveryError(f"{where} refused the message: {reason}")


def _reply(error: Exception) -> tuple[int | None, str]:
    """The server's reply code and text, when the error carries one."""
    if isinstance(error, smtplib.SMTPResponseException):
        text = error.smtp_error
        return error.smtp_code, text.decode(errors="replace") if isinstance(text, bytes) else text
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        code, text = next(iter(error.recipients.values()))
        return code, text.decode(errors="replace")
    return None, f"{type(error).__name__}: {error}"


def compose_email(message: OutboundMessage) -> EmailMessage:
    """The e-mail, each header on one line: a line break in a name or subject (a Unicode one,
    U+2028, as much as CR or LF) would otherwise start a header of its own."""
    email = EmailMessage()
    email["From"] = formataddr((one_line(message.sender_name or ""), message.sender))
    email["To"] = message.to
    email["Subject"] = one_line(message.subject or "")
    email["Date"] = formatdate(localtime=False, usegmt=True)
    email["Message-ID"] = make_msgid(domain=message.sender.rpartition("@")[2] or None)
    email.set_content(message.body)
    if message.html is not None:
        email.add_alternative(message.html, subtype="html")
    return email


@hookimpl
def ondemand_delivery_channels(config: Mapping[str, Any]) -> list[Channel]:
    settings = config.get("smtp")
    return [SmtpChannel(settings)] if settings else []
