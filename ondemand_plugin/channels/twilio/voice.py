"""The ``twilio_voice`` channel: calls through the Twilio Calls API that read the message aloud.

The call's TwiML is a ``<Say>`` of the voice message (the voice template has no link: a call
cannot carry one), then, when the channel has a ``status_callback_url`` for Twilio to reach the
plugin at, a ``<Gather>`` of one key that says how to stop calls: pressing 9 posts to the
``twilio/keypress`` route beside ``twilio/status``, and opts the number out of calls. Settings
under ``twilio_voice``, as for ``twilio_sms``; a messaging service does not place calls, so calls
come from ``from``, else from the practice's number.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin
from xml.sax.saxutils import escape

from hookspecs import hookimpl
from hookspecs.types import Channel, DeliveryReceipt, OutboundMessage
from ondemand_plugin.channels.twilio.account import TwilioAccount

OPT_OUT_KEY = "9"
OPT_OUT_PROMPT = "To stop these calls, press 9 now."


def twiml(text: str, keypress_url: str | None = None) -> str:
    """A TwiML document that says ``text`` (XML-escaped), then, with ``keypress_url``, waits for
    one key and posts it there."""
    gather = (
        f'<Gather numDigits="1" timeout="5" action="{escape(keypress_url)}" method="POST">'
        f"<Say>{OPT_OUT_PROMPT}</Say></Gather>"
        if keypress_url
        else ""
    )
    return f"<Response><Say>{escape(text)}</Say>{gather}</Response>"


def keypress_url(status_callback_url: str | None) -> str | None:
    """``twilio/keypress`` beside the ``twilio/status`` callback (its query left out)."""
    if not status_callback_url:
        return None
    return urljoin(status_callback_url.split("?", 1)[0], "keypress")


class TwilioVoiceChannel:
    name = "twilio_voice"
    modes = frozenset({"voice"})

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.account = TwilioAccount(self.name, settings)
        self.shared_sender = self.account.from_

    def __repr__(self) -> str:
        return f"TwilioVoiceChannel({self.account!r})"

    def deliver(self, message: OutboundMessage) -> DeliveryReceipt:
        form = {
            "To": message.to,
            "Twiml": twiml(message.body, keypress_url(self.account.status_callback_url)),
            **self.account.sender(message),
        }
        return self.account.create("Calls", message, form)

    def close(self) -> None:
        self.account.close()


@hookimpl
def ondemand_delivery_channels(config: Mapping[str, Any]) -> list[Channel]:
    settings = config.get("twilio_voice")
    return [TwilioVoiceChannel(settings)] if settings else []
