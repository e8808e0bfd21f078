"""The ``twilio_sms`` channel: texts through the Twilio Messages API (or a compatible gateway).

Settings under ``twilio_sms``: ``account_sid``, ``auth_token``, and optionally ``base_url``,
``from`` (one number for every practice; else each practice's own text number),
``messaging_service_sid`` (Twilio picks the number; it wins over ``from``),
``status_callback_url`` and ``timeout_seconds``. Each text carries the plugin's
``text_validity_seconds`` as its ``ValidityPeriod``: Twilio drops a text it could not hand on
by then, so that a pay link for a call that ended never arrives hours later.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hookspecs import hookimpl
from hookspecs.types import Channel, DeliveryReceipt, OutboundMessage
from ondemand_plugin.channels.twilio.account import TwilioAccount


class TwilioSmsChannel:
    name = "twilio_sms"
    modes = frozenset({"text"})

    def __init__(self, settings: Mapping[str, Any], validity_seconds: int | None = None) -> None:
        self.account = TwilioAccount(self.name, settings)
        self.validity_seconds = validity_seconds
        # Replies come to the service's numbers, or to the one number, whichever practice texted.
        self.shared_sender = self.account.messaging_service_sid or self.account.from_

    def __repr__(self) -> str:
        return f"TwilioSmsChannel({self.account!r})"

    def deliver(self, message: OutboundMessage) -> DeliveryReceipt:
        form = {"To": message.to, "Body": message.body}
        if self.account.messaging_service_sid:
            form["MessagingServiceSid"] = self.account.messaging_service_sid
        else:
            form.update(self.account.sender(message))
        if self.validity_seconds is not None:
            form["ValidityPeriod"] = str(self.validity_seconds)
        return self.account.create("Messages", message, form)

    def close(self) -> None:
        self.account.close()


@hookimpl
def ondemand_delivery_channels(config: Mapping[str, Any]) -> list[Channel]:
    settings = config.get("twilio_sms")
    if not settings:
        return []
    return [TwilioSmsChannel(settings, config.get("text_validity_seconds"))]
