"""The ``twilio_voice`` channel: calls through the Twilio Calls API that read the message aloud.

The call's TwiML is a ``<Say>`` of the voice message (the voice template has no link: a call
cannot carry one). Settings under ``twilio_voice``, as for ``twilio_sms``; a messaging service
does not place calls, so calls come from ``from``, else from the practice's number.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from xml.sax.saxutils import escape

from hookspecs import hookimpl
from hookspecs.types import Channel, DeliveryReceipt, OutboundMessage
from ondemand_plugin.channels.twilio.account import TwilioAccount


def twiml(text: str) -> str:
    """A TwiML document that says ``text``; the text is XML-escaped."""
    return f"<Response><Say>{escape(text)}</Say></Response>"


class TwilioVoiceChannel:
    name = "twilio_voice"
    modes = frozenset({"voice"})

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.account = TwilioAccount(self.name, settings)
        self.shared_sender = self.account.from_

    def __repr__(self) -> str:
        return f"TwilioVoiceChannel({self.account!r})"

    def deliver(self, message: OutboundMessage) -> DeliveryReceipt:
        form = {"To": message.to, "Twiml": twiml(message.body), **self.account.sender(message)}
        return self.account.create("Calls", message, form)

    def close(self) -> None:
        self.account.close()


@hookimpl
def ondemand_delivery_channels(config: Mapping[str, Any]) -> list[Channel]:
    settings = config.get("twilio_voice")
    return [TwilioVoiceChannel(settings)] if settings else []
