"""Twilio's requests: status callbacks move a notification's status forward, replies of STOP or
START change the sender's opt-out. Each is refused (403) unless Twilio signed it with the auth
token configured for the channel it concerns, and then changes nothing.

A callback finds its notification by the message's SID, recorded when the send completes; else,
for a callback that came first (or whose send's worker died), by the practice and notification id
the channel put in the callback URL's query, which the signature covers. The query never points a
callback at another notification than the one its SID names, nor at a send that completed through
another channel or message.

A callback about a message the plugin does not know, or a status it does not track, is answered
200 and logged: any other answer is an error in the account's Twilio debugger, and asking again
would not make the message known.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ondemand_plugin.addresses import mask, normalize_phone, practice_region
from ondemand_plugin.channels._twilio import CALLBACK_NOTIFICATION, CALLBACK_PRACTICE
from ondemand_plugin.errors import OnDemandError
from ondemand_plugin.host import Host
from ondemand_plugin.inbound.requests import InboundRequest, answer
from ondemand_plugin.inbound.twilio_signature import HEADER, is_signed_by
from ondemand_plugin.opt_outs import OptOuts, keyword_choice
from ondemand_plugin.stores.base import NotificationRecord, Store, utc_now

log = logging.getLogger(__name__)

SMS_CHANNEL = "twilio_sms"
VOICE_CHANNEL = "twilio_voice"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'

# Twilio's statuses → the history's. Others (e.g. "scheduled", "received") are not tracked.
SMS_STATUSES = {
    "queued": "sent",
    "accepted": "sent",
    "sending": "sent",
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "undelivered": "undelivered",
    "failed": "failed",
    "canceled": "failed",
}
CALL_STATUSES = {
    "queued": "sent",
    "initiated": "sent",
    "ringing": "sent",
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


class TwilioRequests:
    def __init__(
        self, settings: Mapping[str, Any], store: Store, host: Host, opt_outs: OptOuts
    ) -> None:
        self.settings = settings
        self.store = store
        self.host = host
        self.opt_outs = opt_outs

    def status(self, request: InboundRequest) -> dict[str, Any]:
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
            return answer(
                400,
                "A status callback needs MessageSid and MessageStatus, or CallSid and CallStatus.",
            )
        status = (CALL_STATUSES if is_call else SMS_STATUSES).get(reported.lower())
        if status is None:
            log.info("Twilio status %r of %s is not tracked; ignored", reported, sid)
            return answer(200)
        record = self._notification(request, channel, sid)
        if record is None:
            return answer(200)
        error_code = form.get("ErrorCode")
        detail = _detail(reported, error_code)
        advanced = self.store.advance_status(record.practice_id, record.id, status, detail)
        if advanced:
            log.info("Notification %s is now %s (Twilio: %s)", record.id, status, reported)
        else:
            log.info(
                "Notification %s stays %s (Twilio: %s came late)",
                record.id,
                record.status,
                reported,
            )
        # Only the callback that brought the outcome tells of the opt-out: the same callback
        # again, after the recipient opted back in, must not opt them out once more.
        if advanced and error_code == OPTED_OUT_ERROR:
            self.opt_outs.change(
                record.practice_id,
                record.mode,
                record.recipient,
                True,
                source="provider",
                keyword=None,
                channel=channel,
            )
        return answer(200)

    def _notification(
        self, request: InboundRequest, channel: str, sid: str
    ) -> NotificationRecord | None:
        """The notification a status callback is about: by its SID, else by the URL's query."""
        named = _named_notification(request.url)
        record = self.store.notification_by_provider_id(channel, sid)
        if record is None and named is not None:
            record = self.store.notification_by_id(*named)
            if record is not None and (
                record.provider_message_id is not None or record.channel not in (None, channel)
            ):
                log.info(
                    "Twilio status callback for %s %s: notification %s was sent by another "
                    "message; ignored",
                    channel,
                    sid,
                    record.id,
                )
                return None
        if record is None:
            log.warning("Twilio status callback for unknown %s %s; ignored", channel, sid)
            return None
        if named is not None and named != (record.practice_id, record.id):
            log.warning(
                "Twilio status callback for %s %s names another notification than %s; ignored",
                channel,
                sid,
                record.id,
            )
            return None
        return record

    def reply(self, request: InboundRequest) -> dict[str, Any]:
        """``POST twilio/inbound``: a text a recipient sent back; STOP and START are acted on."""
        refusal = self._unsigned(request, SMS_CHANNEL)
        if refusal is not None:
            return refusal
        sender, number, body = (request.form.get(name) for name in ("From", "To", "Body"))
        if not sender or not number:
            return answer(400, "A reply needs From and To.")
        keyword = (body or "").strip().upper()
        # With Advanced Opt-Out, Twilio names the meaning of the practice's own keywords too.
        opted_out = keyword_choice(keyword)
        if opted_out is None:
            opted_out = keyword_choice(request.form.get("OptOutType", ""))
        if opted_out is not None:
            self._change_opt_outs(request, sender, number, opted_out, keyword)
        # Empty TwiML: Twilio itself answers STOP and START, the plugin sends nothing back.
        return answer(200, EMPTY_TWIML, "text/xml")

    def _change_opt_outs(
        self, request: InboundRequest, sender: str, number: str, opted_out: bool, keyword: str
    ) -> None:
        """Act on a STOP or START once: the same message again (Twilio's ``MessageSid``) changes
        nothing, or a replayed STOP would undo the START that came after it.

        The message is recorded once acted on, not before: a worker that dies in between leaves
        a STOP to be acted on again when it comes again, rather than lost.
        """
        message_sid = request.form.get("MessageSid")
        if message_sid and self.store.inbound_message_seen(SMS_CHANNEL, message_sid):
            log.info("Reply %s was acted on before; this repeat changes nothing", message_sid)
            return
        practices = self._practices_texting(sender, number, request.form.get("MessagingServiceSid"))
        if not practices:
            log.info("Reply from %s to a number no practice texted them from", mask(sender))
        for practice_id in practices:
            self.opt_outs.change(
                practice_id,
                "text",
                sender,
                opted_out,
                source="reply",
                keyword=keyword,
                channel=SMS_CHANNEL,
            )
        if message_sid:
            self.store.record_inbound_message(SMS_CHANNEL, message_sid, utc_now())

    def _unsigned(self, request: InboundRequest, channel: str) -> dict[str, Any] | None:
        """A 403 answer unless Twilio signed the request; None when it did."""
        token = self._auth_token(channel)
        if token is None:
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
        return answer(403, f"The request's {HEADER} is missing or does not match.")

    def _auth_token(self, channel: str) -> str | None:
        token = self._settings(channel).get("auth_token")
        return token if isinstance(token, str) and token else None

    def _settings(self, channel: str) -> Mapping[str, Any]:
        settings = self.settings.get(channel)
        return settings if isinstance(settings, Mapping) else {}

    def _practices_texting(self, sender: str, number: str, service_sid: str | None) -> list[str]:
        """The practices that texted ``sender`` from ``number``: where a reply to it belongs.

        The number is the one the ``twilio_sms`` channel sends from: with a messaging service,
        any of the service's (Twilio names the service in the reply); else the channel's
        ``from``, shared by every practice; else the practice's own text number.
        """
        settings = self._settings(SMS_CHANNEL)
        service = settings.get("messaging_service_sid")
        if service and service_sid != service:
            return []
        practices = []
        for practice_id in self.store.practices_that_notified("text", sender):
            try:
                practice = self.host.practice(practice_id)
            except OnDemandError:
                continue  # a practice the host no longer knows cannot text anyone
            sends_from = settings.get("from") or practice.text_from
            if service or (
                sends_from and _same_number(sends_from, number, practice_region(practice.phone))
            ):
                practices.append(practice_id)
        return practices


def _same_number(recorded: str, reported: str, region: str) -> bool:
    try:
        return normalize_phone(recorded, region, for_text=False) == normalize_phone(
            reported, region, for_text=False
        )
    except OnDemandError:
        return recorded == reported


def _named_notification(url: str) -> tuple[str, str] | None:
    """The (practice, notification id) the channel put in a callback URL's query, if it did."""
    query = dict(parse_qsl(urlsplit(url).query))
    practice_id, notification_id = query.get(CALLBACK_PRACTICE), query.get(CALLBACK_NOTIFICATION)
    return (practice_id, notification_id) if practice_id and notification_id else None


def _detail(reported: str, error_code: str | None) -> str:
    if not error_code:
        return f"Twilio: {reported}."
    meaning = ERROR_MEANINGS.get(error_code)
    return f"Twilio: {reported}, error {error_code}" + (f" ({meaning})." if meaning else ".")
