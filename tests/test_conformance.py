"""Every built-in channel passes the conformance suite third parties run, against real peers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from peers.http import Reply
from peers.smtp import SmtpPeer
from peers.tls import Certificate, self_signed
from peers.twilio import AUTH_TOKEN, TwilioPeer, twilio_error
from peers.twilio_signature import sign
from peers.webhook import WEBHOOK_SECRET, WebhookPeer

from hookspecs import Channel, DeliveryReceipt, DeliveryStatus, InboundRequest, InboundRoute
from hookspecs.types import OutboundMessage
from ondemand_plugin.channels.outbox import OutboxChannel
from ondemand_plugin.channels.smtp import SmtpChannel
from ondemand_plugin.channels.twilio import routes as twilio_routes
from ondemand_plugin.channels.twilio.account import callback_url
from ondemand_plugin.channels.twilio.sms import TwilioSmsChannel
from ondemand_plugin.channels.twilio.voice import TwilioVoiceChannel
from ondemand_plugin.channels.webhook import WebhookChannel
from ondemand_plugin.testing.conformance import ChannelConformance, FailureKind

SMTP_PASSWORD = "smtp-pass-s3cret"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return self_signed(tmp_path_factory.mktemp("tls"))


class TestOutboxConformance(ChannelConformance):
    can_fail_permanently = False

    @pytest.fixture(autouse=True)
    def _folder(self, tmp_path: Path) -> None:
        self.folder = tmp_path / "outbox"

    def make_channel(self) -> Channel:
        return OutboxChannel(self.folder)

    @contextlib.contextmanager
    def provider_fails(self, kind: FailureKind) -> Iterator[None]:
        # A file where the outbox folder belongs: the disk refuses the write.
        saved = self.folder.with_name("saved")
        if self.folder.exists():
            self.folder.rename(saved)
        self.folder.write_text("")
        yield
        self.folder.unlink()
        if saved.exists():
            saved.rename(self.folder)


class TestSmtpConformance(ChannelConformance):
    secrets = (SMTP_PASSWORD,)
    provider_loggers = ("mail.log",)

    @pytest.fixture(autouse=True)
    def _server(self, certificate: Certificate, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
        monkeypatch.setenv("SSL_CERT_FILE", str(certificate.cert))
        context = certificate.server_context()
        with SmtpPeer(starttls=context, login=("billing", SMTP_PASSWORD)) as self.peer:
            yield

    def make_channel(self) -> Channel:
        return SmtpChannel(
            self.peer.settings(username="billing", password=SMTP_PASSWORD, starttls=True)
        )

    @contextlib.contextmanager
    def provider_fails(self, kind: FailureKind) -> Iterator[None]:
        code = "451 4.3.0" if kind == "transient" else "550 5.1.1"
        self.peer.refuse_with = f"{code} <mei.chen@example.com>: not now"
        yield
        self.peer.refuse_with = None


TWILIO_STATUSES = {
    "SM": {"queued": "queued", "sent": "sent", "delivered": "delivered", "failed": "failed"},
    "CA": {"queued": "queued", "sent": "in-progress", "delivered": "completed", "failed": "failed"},
}
BASE = "https://pm.example.com/plugins/ondemand/"


def twilio_request(path: str, form: dict[str, str], url: str | None = None) -> InboundRequest:
    """A request to a Twilio route, signed as Twilio signs it."""
    url = url or BASE + path
    return InboundRequest(
        method="POST",
        path=path,
        url=url,
        headers={"X-Twilio-Signature": sign(url, form, AUTH_TOKEN)},
        form=form,
        body="&".join(f"{name}={value}" for name, value in form.items()),
    )


class TwilioConformance(ChannelConformance):
    secrets = (AUTH_TOKEN,)

    def provider_says_opted_out(self) -> contextlib.AbstractContextManager[None]:
        return self._failing(
            lambda number: twilio_error(400, 21610, "Attempt to send to unsubscribed recipient")
        )

    @contextlib.contextmanager
    def _failing(self, rule: object) -> Iterator[None]:
        self.peer.rule = rule  # type: ignore[assignment]
        yield
        self.peer.rule = lambda number: None

    def inbound_routes(self) -> list[InboundRoute]:
        settings = self.peer.settings()
        return twilio_routes.ondemand_inbound_routes(
            {"twilio_sms": settings, "twilio_voice": settings}
        )

    def signed_status_request(
        self, message: OutboundMessage, receipt: DeliveryReceipt, status: DeliveryStatus
    ) -> InboundRequest:
        sid = receipt.provider_message_id or ""
        kind = "Message" if sid.startswith("SM") else "Call"
        form = {
            f"{kind}Sid": sid,
            f"{kind}Status": TWILIO_STATUSES[sid[:2]][status],
            "To": message.to,
            "From": message.sender,
        }
        return twilio_request("twilio/status", form, callback_url(BASE + "twilio/status", message))

    @pytest.fixture(autouse=True)
    def _gateway(self) -> Iterator[None]:
        with TwilioPeer() as self.peer:
            yield

    @contextlib.contextmanager
    def provider_fails(self, kind: FailureKind) -> Iterator[None]:
        if kind == "transient":
            self.peer.rule = lambda number: Reply(503)
        else:
            self.peer.rule = lambda number: twilio_error(
                400, 21211, "The 'To' number +15035550123 is not a valid phone number."
            )
        yield
        self.peer.rule = lambda number: None


class TestTwilioSmsConformance(TwilioConformance):
    def make_channel(self) -> Channel:
        return TwilioSmsChannel(self.peer.settings())

    def signed_stop_request(self, message: OutboundMessage) -> InboundRequest:
        form = {"MessageSid": "SM" + "5" * 32, "From": message.to, "To": message.sender}
        return twilio_request("twilio/inbound", {**form, "Body": "STOP"})


class TestTwilioVoiceConformance(TwilioConformance):
    def make_channel(self) -> Channel:
        return TwilioVoiceChannel(self.peer.settings())


class TestWebhookConformance(ChannelConformance):
    secrets = (WEBHOOK_SECRET,)

    @pytest.fixture(autouse=True)
    def _receiver(self) -> Iterator[None]:
        with WebhookPeer() as self.peer:
            yield

    def make_channel(self) -> Channel:
        return WebhookChannel(self.peer.settings())

    @contextlib.contextmanager
    def provider_fails(self, kind: FailureKind) -> Iterator[None]:
        failure = (
            Reply(503)
            if kind == "transient"
            else Reply(422, "no such contact mei.chen@example.com")
        )
        self.peer.rule = lambda number: failure
        yield
        self.peer.rule = lambda number: None
