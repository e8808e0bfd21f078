"""The ``smtp`` channel against a real SMTP server (aiosmtpd) on loopback: what arrives, TLS in both
forms, login, and each kind of failure mapped to a transient or a permanent error."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from email.utils import parseaddr

import pytest
from conftest import Build, send_to_mei
from peers.smtp import SmtpPeer, free_port
from peers.tls import Certificate, self_signed

from hookspecs import OutboundMessage, PermanentDeliveryError, TransientDeliveryError
from ondemand_plugin.channels.smtp import SmtpChannel
from ondemand_plugin.errors import OnDemandError
from ondemand_plugin.testing.conformance import sample_message

PASSWORD = "smtp-pass-s3cret"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def trusted(certificate: Certificate, monkeypatch: pytest.MonkeyPatch) -> Certificate:
    """The test certificate in this process's trust store."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate.cert))
    return certificate


@pytest.fixture
def peer() -> Iterator[SmtpPeer]:
    with SmtpPeer() as server:
        yield server


def email_message() -> OutboundMessage:
    return sample_message("email")


def test_an_email_arrives_as_text_and_html_from_the_practice_with_a_message_id(
    peer: SmtpPeer,
) -> None:
    receipt = SmtpChannel(peer.settings()).deliver(email_message())
    [received] = peer.received
    email = received.message
    assert received.rcpt_tos == ["mei.chen@example.com"]
    assert received.mail_from == "billing@maplestreet.example.com"
    assert parseaddr(email["From"]) == (
        "Maple Street Pediatrics",
        "billing@maplestreet.example.com",
    )
    assert email["To"] == "mei.chen@example.com"
    assert email["Subject"] == "Your balance with Maple Street Pediatrics"
    assert email.get_content_type() == "multipart/alternative"
    text, html = (part.get_content() for part in email.iter_parts())
    assert "$120.50" in text and "<p>" in html
    assert email["Message-ID"].endswith("@maplestreet.example.com>")
    assert receipt.provider_message_id == email["Message-ID"]
    assert receipt.status == "sent"


def test_a_send_through_the_plugin_escapes_merged_values_in_the_html(
    build: Build, peer: SmtpPeer
) -> None:
    pm, host = build(channels={"email": "smtp"}, smtp=peer.settings())
    host.guarantors["demo"]["g-mei"]["first_name"] = "<script>alert(1)</script>"
    result = send_to_mei(
        pm, mode="email", body="Hi {{GuarantorFirstName}}, you owe {{BalanceDue}}."
    )
    assert result["status"] == "sent"
    [received] = peer.received
    text, html = (part.get_content() for part in received.message.iter_parts())
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Hi <script>alert(1)</script>, you owe $120.50." in text
    assert parseaddr(received.message["From"])[0] == "Maple Street Pediatrics"


def test_starttls_and_login(trusted: Certificate) -> None:
    with SmtpPeer(starttls=trusted.server_context(), login=("billing", PASSWORD)) as server:
        channel = SmtpChannel(server.settings(starttls=True, username="billing", password=PASSWORD))
        channel.deliver(email_message())
    assert server.logins == [("billing", True)]
    assert len(server.received) == 1


def test_implicit_tls_and_login(trusted: Certificate) -> None:
    with SmtpPeer(implicit_tls=trusted.server_context(), login=("billing", PASSWORD)) as server:
        channel = SmtpChannel(server.settings(ssl=True, username="billing", password=PASSWORD))
        channel.deliver(email_message())
    assert server.logins == [("billing", True)]
    assert len(server.received) == 1


def test_a_certificate_nobody_vouches_for_is_refused_for_good(certificate: Certificate) -> None:
    server = SmtpPeer(implicit_tls=certificate.server_context())
    with server, pytest.raises(PermanentDeliveryError) as refused:
        SmtpChannel(server.settings(ssl=True)).deliver(email_message())
    assert "certificate" in str(refused.value)
    assert server.received == []


def test_a_wrong_password_is_refused_for_good_without_showing_it(trusted: Certificate) -> None:
    with SmtpPeer(starttls=trusted.server_context(), login=("billing", PASSWORD)) as server:
        channel = SmtpChannel(
            server.settings(starttls=True, username="billing", password="wrong-s3cret")
        )
        with pytest.raises(PermanentDeliveryError) as refused:
            channel.deliver(email_message())
    assert "smtp.password" in str(refused.value)
    assert "wrong-s3cret" not in str(refused.value) + repr(channel)
    assert server.logins
    assert not any(accepted for _, accepted in server.logins)


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ("451 4.7.1 <mei.chen@example.com>: greylisted, try later", TransientDeliveryError),
        ("452 4.2.2 Mailbox full", TransientDeliveryError),
        ("550 5.1.1 <mei.chen@example.com>: no such user", PermanentDeliveryError),
        ("554 5.7.1 Rejected", PermanentDeliveryError),
    ],
)
def test_4xx_replies_are_transient_and_5xx_permanent(
    peer: SmtpPeer, reply: str, error: type[Exception]
) -> None:
    peer.refuse_with = reply
    with pytest.raises(error) as raised:
        SmtpChannel(peer.settings()).deliver(email_message())
    assert reply[:3] in str(raised.value)
    assert "mei.chen@example.com" not in str(raised.value)
    assert "m***@example.com" in str(raised.value) or "<" not in reply.split(":")[0]


def test_a_refused_connection_is_transient() -> None:
    with pytest.raises(TransientDeliveryError) as raised:
        SmtpChannel({"host": "127.0.0.1", "port": free_port()}).deliver(email_message())
    assert "ConnectionRefusedError" in str(raised.value)


def mute_server(hang_up: bool) -> tuple[socket.socket, list[socket.socket]]:
    """A TCP server that either hangs up at once or never says a word; and its connections."""
    listener = socket.create_server(("127.0.0.1", 0))
    connections: list[socket.socket] = []

    def serve() -> None:
        connection, _ = listener.accept()
        connections.append(connection)
        if hang_up:
            connection.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener, connections


@pytest.mark.parametrize("hang_up", [True, False], ids=["disconnected", "timed_out"])
def test_a_server_that_hangs_up_or_stays_silent_is_transient(hang_up: bool) -> None:
    listener, connections = mute_server(hang_up)
    port = listener.getsockname()[1]
    channel = SmtpChannel({"host": "127.0.0.1", "port": port, "timeout_seconds": 0.3})
    with listener, pytest.raises(TransientDeliveryError) as raised:
        channel.deliver(email_message())
    assert "SMTPServerDisconnected" in str(raised.value)
    assert ("timed out" in str(raised.value)) is not hang_up
    for connection in connections:
        connection.close()


@pytest.mark.parametrize(
    ("settings", "field", "problem"),
    [
        ({"port": 25}, "smtp", "'host' is a required property"),
        ({"host": "mail", "pasword": "x"}, "smtp", "('pasword' was unexpected)"),
        ({"host": "mail", "username": "billing"}, "smtp", "'password' is a dependency"),
        ({"host": "mail", "starttls": True, "ssl": True}, "smtp", "exclude each other"),
        ({"host": "mail", "port": "25"}, "smtp.port", "must be of type integer"),
    ],
)
def test_bad_smtp_settings_are_an_invalid_config(
    build: Build, settings: dict[str, object], field: str, problem: str
) -> None:
    with pytest.raises(OnDemandError) as refused:
        build(smtp=settings)
    assert refused.value.code == "invalid_config"
    assert refused.value.field == field
    assert problem in refused.value.message


def test_the_password_never_shows_in_repr() -> None:
    channel = SmtpChannel({"host": "mail", "username": "billing", "password": PASSWORD})
    assert PASSWORD not in repr(channel)
    assert repr(channel) == "SmtpChannel('mail', 587, starttls)"


def test_starttls_asked_of_a_server_without_it_is_refused_for_good(peer: SmtpPeer) -> None:
    with pytest.raises(PermanentDeliveryError) as refused:
        SmtpChannel(peer.settings(starttls=True)).deliver(email_message())
    assert "smtp.starttls" in str(refused.value)
    assert peer.received == []
