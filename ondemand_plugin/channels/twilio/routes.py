"""Twilio's requests, served at ``twilio/status`` and ``twilio/inbound`` through the public
``InboundRoute`` and reported through the public ``DeliveryEvents``, as any channel's would be.

Each request is refused (403) unless Twilio signed it with the auth token configured for the
channel it concerns, and then changes nothing.

A status callback names its message by SID; the channel also put the notification's practice and
id in the callback URL's query, which the signature covers, so that a callback that came before
the send's completion recorded the SID (or after its worker died) still finds its notification.

A callback about a message the plugin does not know, or a status it does not track, is answered
200 and logged: any other answer is an error in the account's Twilio debugger, and asking again
would not make the message known.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from hookspecs import hookimpl
from hookspecs.types import (
    DeliveryEvents,
    DeliveryStatus,
    InboundRequest,
    InboundResponse,
    InboundRoute,
)
from ondemand_plugin.channels.twilio.account import CALLBACK_NOTIFICATION, CALLBACK_PRACTICE
from ondemand_plugin.channels.twilio.signature import HEADER, is_signed_by
from ondemand_plugin.rules.opt_outs import keyword_choice

log = logging.getLogger(__name__)

SMS_CHANNEL = "twilio_sms"
VOICE_CHANNEL = "twilio_voice"
TEXT_PLAIN = {"Content-Type": "text/plain; charset=utf-8"}
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'

# Twilio's statuses → DeliveryEvents'. Others (e.g. "scheduled", "received") are not tracked.
SMS_STATUSES: dict[str, DeliveryStatus] = {
    "queued": "queued",
    "accepted": "queued",
    "sending": "queued",
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "undelivered": "undelivered",
    "failed": "failed",
    "canceled": "failed",
}
CALL_STATUSES: dict[str, DeliveryStatus] = {
    "queued": "queued",
    "initiated": "queued",
    "ringing": "queued",
    "in-progress": "sent",
    "completed": "delivered",
    "busy": "undelivered",
    "no-answer": "undelivered",
    "failed": "failed",
    "canceled": "failed",
}
OPTED_OUT_ERROR = "21610"
# What the most common delivery error codes mean, for staff reading the history.
ERROR_MEANINGS = {
    OPTED_OUT_ERROR: "the recipient opted out",
    "30003": "unreachable destination handset",
    "30004": "message blocked",
    "30005": "unknown destination handset",
    "30006": "landline or unreachable carrier",
    "30007": "filtered by the carrier",
    "30008": "unknown error",
}


@hookimpl
def ondemand_inbound_routes(config: Mapping[str, Any]) -> list[InboundRoute]:
    """Twilio's routes, served whether or not a Twilio channel is configured: without its auth
    token each request is refused, and the refusal logged says what to set."""
    twilio = TwilioRoutes(config)
    return [
        InboundRoute(path="twilio/status", methods={"POST"}, handler=twilio.status),
        InboundRoute(path="twilio/inbound", methods={"POST"}, handler=twilio.reply),
    ]


def _answer(status: int, body: str = "") -> InboundResponse:
    return InboundResponse(status=status, headers=dict(TEXT_PLAIN), body=body)


class TwilioRoutes:
    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config

    def status(self, request: InboundRequest, events: DeliveryEvents) -> InboundResponse:
        """``POST twilio/status``: a message's (MessageSid) or call's (CallSid) new status."""
        form = request.form
        is_call = "CallSid" in form and "MessageSid" not in form
        channel = VOICE_CHANNEL if is_call else SMS_CHANNEL
        refusal = self._unsigned(request, channel)
        if refusal is not None:
            return refusal
        sid = form.get("CallSid" if is_call else "MessageSid")
        reported = form.get("CallStatus" if is_call else "MessageStatus")
        if not sid or not reported:
            return _answer(
                400,
                "A status callback needs MessageSid and MessageStatus, or CallSid and CallStatus.",
            )
        status = (CALL_STATUSES if is_call else SMS_STATUSES).get(reported.lower())
        if status is None:
            log.info("Twilio status %r of %s is not tracked; ignored", reported, sid)
            return _answer(200)
        error_code = form.get("ErrorCode")
        practice_id, notification_id = _named_notification(request.url)
        known = events.delivery_status(
            channel,
            sid,
            status,
            _detail(reported, error_code),
            practice_id=practice_id,
            notification_id=notification_id,
            opted_out=error_code == OPTED_OUT_ERROR,
        )
        if not known:
            log.warning("Twilio status callback for unknown %s %s; ignored", channel, sid)
        return _answer(200)

    def reply(self, request: InboundRequest, events: DeliveryEvents) -> InboundResponse:
        """``POST twilio/inbound``: a text a recipient sent back; STOP and START change the
        opt-out, anything else is kept for staff."""
        refusal = self._unsigned(request, SMS_CHANNEL)
        if refusal is not None:
            return refusal
        address, number, body = (request.form.get(name) for name in ("From", "To", "Body"))
        if not address or not number:
            return _answer(400, "A reply needs From and To.")
        # Empty TwiML: Twilio itself answers STOP and START, the plugin sends nothing back.
        twiml = InboundResponse(status=200, headers={"Content-Type": "text/xml"}, body=EMPTY_TWIML)
        sender = self._sender(number, request.form.get("MessagingServiceSid"))
        if sender is None:
            log.info("A reply to a messaging service this channel does not use; ignored")
            return twiml
        keyword = (body or "").strip().upper()
        # With Advanced Opt-Out, Twilio names the meaning of the practice's own keywords too.
        opted_out = keyword_choice(keyword)
        if opted_out is None:
            opted_out = keyword_choice(request.form.get("OptOutType", ""))
        message_id = request.form.get("MessageSid") or None
        if opted_out is not None:
            events.opt_out(
                SMS_CHANNEL,
                "text",
                sender,
                address,
                opted_out,
                source="reply",
                text=body,
                message_id=message_id,
            )
        elif body:
            events.reply(SMS_CHANNEL, sender, address, body, message_id=message_id)
        return twiml

    def _sender(self, number: str, service_sid: str | None) -> str | None:
        """Where the practices texted from, as the ``twilio_sms`` channel's ``shared_sender``
        names it: with a messaging service, the service (when the reply came through it); else
        the number the reply came to."""
        service = self._settings(SMS_CHANNEL).get("messaging_service_sid")
        if not service:
            return number
        return service if service_sid == service else None

    def _unsigned(self, request: InboundRequest, channel: str) -> InboundResponse | None:
        """A 403 answer unless Twilio signed the request; None when it did."""
        token = self._settings(channel).get("auth_token")
        if not isinstance(token, str) or not token:
            log.warning(
                "A Twilio request to %s was refused: %s.auth_token is not configured, so its "
                "signature cannot be checked. Set it in the plugin configuration.",
                request.path,
                channel,
            )
        elif is_signed_by(request.url, request.form, request.header(HEADER), token):
            return None
        else:
            log.warning("A request to %s without a valid %s was refused", request.path, HEADER)
        return _answer(403, f"The request's {HEADER} is missing or does not match.")

    def _settings(self, channel: str) -> Mapping[str, Any]:
        settings = self.config.get(channel)
        return settings if isinstance(settings, Mapping) else {}


def _named_notification(url: str) -> tuple[str | None, str | None]:
    """The (practice, notification id) the channel put in a callback URL's query, if it did."""
    query = dict(parse_qsl(urlsplit(url).query))
    return query.get(CALLBACK_PRACTICE) or None, query.get(CALLBACK_NOTIFICATION) or None


def _detail(reported: str, error_code: str | None) -> str:
    if not error_code:
        return f"Twilio: {reported}."
    meaning = ERROR_MEANINGS.get(error_code)
    return f"Twilio: {reported}, error {error_code}" + (f" ({meaning})." if meaning else ".")
