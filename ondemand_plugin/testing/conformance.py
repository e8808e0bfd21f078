"""The channel conformance suite: does a channel honour the contract the plugin relies on?

A channel author subclasses ``ChannelConformance`` in a test module, says how to make the channel
and how to make its provider fail, and pytest runs every check below against it::

    class TestPigeonChannel(ChannelConformance):
        secrets = ["the-api-token"]

        def make_channel(self):
            return PigeonChannel({"token": "the-api-token", "url": self.provider_url})

        @contextlib.contextmanager
        def provider_fails(self, kind):  # kind is "transient" or "permanent"
            ...  # make the provider answer 503 (transient) or 400 (permanent) meanwhile
            yield

Checked: the channel's name and modes; a receipt for each of its modes that follows
``contracts/delivery-receipt.json``; transient and permanent failures raised as
``TransientDeliveryError`` and ``PermanentDeliveryError``; no secret and no recipient address in
logs, errors or ``repr``; and, under the plugin's own retry policy with a short deadline, retries
of transient failures, no retry of permanent ones, and a channel that recovers delivers. Then,
each when the channel has it: ``lookup`` (a delivered message is found, one never given is
``None``), ``close()`` (safe to call twice), ``RecipientOptedOutError`` (say how with
``provider_says_opted_out``), and its inbound routes (say how with ``inbound_routes`` and
``signed_status_request``, and ``signed_stop_request`` for replies): a request signed right is
reported through the events, one unsigned or tampered with is refused and reports nothing, a
replay reports nothing new, and a report about a message the plugin does not know is answered
without an error::

    class TestPigeonChannel(ChannelConformance):
        ...

        def inbound_routes(self):
            return pigeon_plugin.ondemand_inbound_routes({"pigeon": self.settings})

        def signed_status_request(self, message, receipt, status):
            form = {"tag": receipt.provider_message_id, "state": status}
            body = urlencode(form)
            return InboundRequest(
                method="POST", path="pigeon/status", url="https://pm.example/pigeon/status",
                headers={"X-Pigeon-Signature": signing.hmac_signature(SECRET, body)},
                form=form, body=body)
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, Literal

import attrs
import pytest

from hookspecs.types import (
    MODES,
    Channel,
    DeliveryError,
    DeliveryReceipt,
    DeliveryStatus,
    InboundRequest,
    InboundResponse,
    InboundRoute,
    Mode,
    OutboundMessage,
    PermanentDeliveryError,
    RecipientOptedOutError,
    TransientDeliveryError,
)
from ondemand_plugin.boundary import contracts
from ondemand_plugin.boundary.extensions import channel_problem
from ondemand_plugin.sending.delivery import deliver

FailureKind = Literal["transient", "permanent"]
ADDRESSES: dict[str, str] = {
    "email": "mei.chen@example.com",
    "text": "+15035550123",
    "voice": "+15035550123",
}
SENDERS: dict[str, str] = {
    "email": "billing@maplestreet.example.com",
    "text": "+15035550101",
    "voice": "+15035550101",
}


def sample_message(mode: Mode, number: int = 1) -> OutboundMessage:
    """A message of ``mode`` as the plugin hands it to a channel."""
    body = "Hi Mei, your balance with Maple Street Pediatrics is $120.50."
    return OutboundMessage(
        notification_id=f"ntf_conformance{number:04d}",
        practice_id="demo",
        mode=mode,
        to=ADDRESSES[mode],
        sender=SENDERS[mode],
        sender_name="Maple Street Pediatrics",
        subject="Your balance with Maple Street Pediatrics" if mode == "email" else None,
        body=body,
        html=f"<p>{body}</p>" if mode == "email" else None,
    )


@attrs.frozen
class ReportedEvent:
    """One call a route made on the events: its method's name and arguments."""

    method: str
    arguments: dict[str, Any]


class RecordingEvents:
    """A ``DeliveryEvents`` that records what it is told, for a channel's own tests.

    ``known`` holds the provider message ids it answers ``True`` for; any other is unknown."""

    def __init__(self, known: Sequence[str] = ()) -> None:
        self.known = set(known)
        self.reported: list[ReportedEvent] = []

    def delivery_status(
        self,
        channel: str,
        provider_message_id: str,
        status: DeliveryStatus,
        detail: str = "",
        occurred_at: datetime | None = None,
        **named: Any,
    ) -> bool:
        self.reported.append(
            ReportedEvent(
                "delivery_status",
                {
                    "channel": channel,
                    "provider_message_id": provider_message_id,
                    "status": status,
                    "detail": detail,
                    "occurred_at": occurred_at,
                    **named,
                },
            )
        )
        return provider_message_id in self.known

    def opt_out(
        self,
        channel: str,
        mode: Mode,
        sender: str,
        address: str,
        opted_out: bool = True,
        source: str = "reply",
        text: str | None = None,
        **named: Any,
    ) -> None:
        arguments: dict[str, Any] = {"channel": channel, "mode": mode, "sender": sender}
        arguments |= {"address": address, "opted_out": opted_out, "source": source}
        self.reported.append(ReportedEvent("opt_out", {**arguments, "text": text, **named}))

    def reply(
        self,
        channel: str,
        sender: str,
        address: str,
        text: str,
        occurred_at: datetime | None = None,
        **named: Any,
    ) -> None:
        arguments = {"channel": channel, "sender": sender, "address": address, "text": text}
        self.reported.append(
            ReportedEvent("reply", {**arguments, "occurred_at": occurred_at, **named})
        )


class _Counting:
    """A channel seen through the retry policy: counts attempts, may run code after the first."""

    def __init__(self, channel: Channel, after_first: contextlib.ExitStack | None = None) -> None:
        self.name = channel.name
        self.modes = channel.modes
        self.channel = channel
        self.attempts = 0
        self.after_first = after_first

    def deliver(self, message: OutboundMessage) -> DeliveryReceipt:
        self.attempts += 1
        try:
            return self.channel.deliver(message)
        finally:
            if self.after_first is not None:
                self.after_first.close()


class ChannelConformance:
    """Subclass as ``Test...`` and implement ``make_channel`` and ``provider_fails``."""

    #: Strings that must never show in logs, errors or ``repr`` (tokens, passwords).
    secrets: Sequence[str] = ()
    #: False for a channel whose provider cannot refuse a message for good.
    can_fail_permanently: bool = True
    #: Loggers of a provider running inside the test process (a local test server), not checked.
    provider_loggers: Sequence[str] = ()
    #: The deadline given to the plugin's retry policy in the retry checks.
    deadline_seconds: float = 1.5

    def make_channel(self) -> Channel:
        raise NotImplementedError("Return a new instance of the channel under test.")

    def provider_fails(self, kind: FailureKind) -> contextlib.AbstractContextManager[Any]:
        raise NotImplementedError(
            "Return a context manager within which the provider fails: 'transient' as a busy "
            "or unreachable provider does, 'permanent' as one refusing the message does."
        )

    def message(self, mode: Mode, number: int = 1) -> OutboundMessage:
        """The message each check sends; override to give addresses your provider accepts."""
        return sample_message(mode, number)

    # Optional: override those your channel has, the checks of the others are skipped.

    def provider_says_opted_out(self) -> contextlib.AbstractContextManager[Any] | None:
        """A context manager within which the provider refuses the message because the
        recipient opted out; None if it never says so."""
        return None

    def inbound_routes(self) -> list[InboundRoute]:
        """The routes the channel's plugin answers from ``ondemand_inbound_routes``."""
        return []

    def signed_status_request(
        self, message: OutboundMessage, receipt: DeliveryReceipt, status: DeliveryStatus
    ) -> InboundRequest | None:
        """The provider's callback saying ``message`` (delivered with ``receipt``) is now
        ``status``, signed as the provider signs it; None if the provider never calls back."""
        return None

    def signed_stop_request(self, message: OutboundMessage) -> InboundRequest | None:
        """The provider's request saying the recipient of ``message`` replied STOP, signed;
        None if the provider does not pass replies on."""
        return None

    def unsigned(self, request: InboundRequest) -> InboundRequest:
        """``request`` without its signature: by default, without the headers naming one."""
        headers = {
            name: value
            for name, value in request.headers.items()
            if "signature" not in name.lower()
        }
        return attrs.evolve(request, headers=headers)

    def tampered(self, request: InboundRequest) -> InboundRequest:
        """``request`` with what it says changed after it was signed: by default its last form
        value, else its body, gets one more character."""
        if request.form:
            name = list(request.form)[-1]
            form = {**request.form, name: request.form[name] + "0"}
            return attrs.evolve(request, form=form, body=request.body + "0")
        return attrs.evolve(request, body=request.body + "0")

    # The checks

    def test_the_channel_has_a_name_and_modes(self) -> None:
        channel = self.make_channel()
        assert channel_problem(channel) is None, channel_problem(channel)
        assert isinstance(channel, Channel)
        assert isinstance(channel.modes, frozenset)
        assert channel.modes <= set(MODES)

    def test_each_mode_is_delivered_with_a_receipt_that_follows_its_schema(self) -> None:
        channel = self.make_channel()
        for mode in self._modes(channel):
            receipt = channel.deliver(self.message(mode))
            assert isinstance(receipt, DeliveryReceipt), f"{mode}: {receipt!r} is no receipt"
            errors = list(
                contracts.validator("delivery-receipt").iter_errors(attrs.asdict(receipt))
            )
            assert not errors, f"{mode}: the receipt breaks delivery-receipt.json: {errors[0]}"

    def test_a_transient_provider_failure_raises_a_transient_error(self) -> None:
        channel = self.make_channel()
        with self.provider_fails("transient"), pytest.raises(TransientDeliveryError) as error:
            channel.deliver(self.message(self._mode(channel)))
        assert error.value.retry_after is None or error.value.retry_after >= 0
        assert str(error.value), "the error should say what went wrong"

    def test_a_permanent_provider_failure_raises_a_permanent_error(self) -> None:
        if not self.can_fail_permanently:
            pytest.skip("this channel's provider never refuses a message for good")
        channel = self.make_channel()
        with self.provider_fails("permanent"), pytest.raises(PermanentDeliveryError) as error:
            channel.deliver(self.message(self._mode(channel)))
        assert not isinstance(error.value, TransientDeliveryError)
        assert str(error.value), "the error should say what went wrong"

    def test_no_secret_or_address_shows_in_logs_errors_or_repr(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        channel = self.make_channel()
        message = self.message(self._mode(channel))
        seen = [repr(channel)]
        kinds: list[FailureKind] = ["transient"]
        if self.can_fail_permanently:
            kinds.append("permanent")
        with caplog.at_level(logging.DEBUG):
            seen.append(repr(channel.deliver(message)))
            for kind in kinds:
                with self.provider_fails(kind), pytest.raises(Exception) as error:
                    channel.deliver(message)
                seen += [str(error.value), repr(error.value)]
        seen += [
            record.getMessage() for record in caplog.records if not self._from_provider(record.name)
        ]
        text = "\n".join(seen)
        for secret in self.secrets:
            assert secret not in text, "a secret shows in a log line, an error or a repr"
        assert message.to not in text, "the recipient's address shows unmasked"

    def test_transient_failures_are_retried_until_the_deadline(self) -> None:
        counting = _Counting(self.make_channel())
        with self.provider_fails("transient"):
            outcome = deliver(self.message(self._mode(counting)), [counting], self.deadline_seconds)
        assert outcome.status == "failed"
        assert counting.name in outcome.detail
        assert counting.attempts >= 2, "a transient failure should be retried"

    def test_a_permanent_failure_is_not_retried(self) -> None:
        if not self.can_fail_permanently:
            pytest.skip("this channel's provider never refuses a message for good")
        counting = _Counting(self.make_channel())
        with self.provider_fails("permanent"):
            outcome = deliver(self.message(self._mode(counting)), [counting], self.deadline_seconds)
        assert outcome.status == "failed"
        assert counting.attempts == 1, "a permanent failure should not be retried"

    def test_a_provider_that_recovers_gets_the_message_through_the_retry_policy(self) -> None:
        failing = contextlib.ExitStack()
        failing.enter_context(self.provider_fails("transient"))
        counting = _Counting(self.make_channel(), after_first=failing)
        outcome = deliver(self.message(self._mode(counting)), [counting], self.deadline_seconds)
        assert outcome.status == "sent", outcome.detail
        assert outcome.channel == counting.name
        assert counting.attempts == 2

    def test_lookup_finds_a_delivered_message_and_not_one_never_given(self) -> None:
        channel = self.make_channel()
        lookup = getattr(channel, "lookup", None)
        if not callable(lookup):
            pytest.skip("this channel has no lookup")
        mode = self._mode(channel)
        delivered = self.message(mode)
        channel.deliver(delivered)
        found = lookup(delivered)
        assert isinstance(found, DeliveryReceipt), "lookup should find a delivered message"
        errors = list(contracts.validator("delivery-receipt").iter_errors(attrs.asdict(found)))
        assert not errors, f"the lookup's receipt breaks delivery-receipt.json: {errors[0]}"
        try:
            never = lookup(self.message(mode, number=9999))
        except DeliveryError:
            return  # it cannot tell now: allowed, the send stays unknown
        assert never is None, "a message the provider never got should be looked up as None"

    def test_a_provider_refusal_because_of_an_opt_out_raises_recipient_opted_out(self) -> None:
        refusing = self.provider_says_opted_out()
        if refusing is None:
            pytest.skip("this channel's provider never says a recipient opted out")
        channel = self.make_channel()
        with refusing, pytest.raises(RecipientOptedOutError) as error:
            channel.deliver(self.message(self._mode(channel)))
        assert str(error.value), "the error should say what went wrong"

    def test_close_can_be_called_twice(self) -> None:
        channel = self.make_channel()
        close = getattr(channel, "close", None)
        if not callable(close):
            pytest.skip("this channel has no close")
        close()
        close()

    def test_a_status_callback_signed_right_is_reported(self) -> None:
        request, receipt = self._status_request("delivered")
        events = RecordingEvents(known=[receipt.provider_message_id or ""])
        response = self._route_answer(request, events)
        assert 200 <= response.status < 300, f"a signed callback was answered {response.status}"
        [reported] = [e for e in events.reported if e.method == "delivery_status"]
        assert reported.arguments["channel"] == self.make_channel().name
        assert reported.arguments["provider_message_id"] == receipt.provider_message_id
        assert reported.arguments["status"] == "delivered"

    @pytest.mark.parametrize("forgery", ["unsigned", "tampered"])
    def test_a_request_unsigned_or_tampered_with_is_refused_and_reports_nothing(
        self, forgery: str
    ) -> None:
        requests = [self._status_request("delivered")[0]]
        stop = self._stop_request(required=False)
        if stop is not None:
            requests.append(stop)
        for request in requests:
            forged = self.unsigned(request) if forgery == "unsigned" else self.tampered(request)
            events = RecordingEvents()
            response = self._route_answer(forged, events)
            assert 400 <= response.status < 500, f"a forged request was answered {response.status}"
            assert events.reported == [], f"a forged request was reported: {events.reported}"

    def test_a_replayed_request_reports_nothing_new(self) -> None:
        request, receipt = self._status_request("delivered")
        events = RecordingEvents(known=[receipt.provider_message_id or ""])
        self._route_answer(request, events)
        first = list(events.reported)
        replayed = self._route_answer(request, events)
        assert replayed.status < 500, f"a replay was answered {replayed.status}"
        for event in events.reported[len(first) :]:
            assert event in first, f"a replay reported something new: {event}"

    def test_a_stop_signed_right_is_reported_as_an_opt_out(self) -> None:
        stop = self._stop_request(required=True)
        assert stop is not None
        events = RecordingEvents()
        response = self._route_answer(stop, events)
        assert 200 <= response.status < 300, f"a signed STOP was answered {response.status}"
        [reported] = [e for e in events.reported if e.method == "opt_out"]
        assert reported.arguments["channel"] == self.make_channel().name
        assert reported.arguments["opted_out"] is True
        assert reported.arguments["mode"] in self.make_channel().modes

    def test_a_status_of_a_message_the_plugin_does_not_know_is_answered_without_error(
        self,
    ) -> None:
        request, _ = self._status_request("delivered")
        events = RecordingEvents(known=[])  # every id is unknown to the plugin
        response = self._route_answer(request, events)
        assert response.status < 500, f"an unknown message was answered {response.status}"

    def _status_request(self, status: DeliveryStatus) -> tuple[InboundRequest, DeliveryReceipt]:
        channel = self.make_channel()
        message = self.message(self._mode(channel))
        receipt = channel.deliver(message)
        request = self.signed_status_request(message, receipt, status)
        if request is None or not self.inbound_routes():
            pytest.skip("this channel's provider does not call back")
        return request, receipt

    def _stop_request(self, *, required: bool) -> InboundRequest | None:
        channel = self.make_channel()
        stop = self.signed_stop_request(self.message(self._mode(channel)))
        if stop is None and required:
            pytest.skip("this channel's provider does not pass replies on")
        return stop

    def _route_answer(self, request: InboundRequest, events: RecordingEvents) -> InboundResponse:
        routes = {route.path: route for route in self.inbound_routes()}
        route = routes.get(request.path)
        assert route is not None, f"no route of the channel serves {request.path!r}"
        assert request.method in route.methods, f"{request.path} does not take {request.method}"
        response = route.handler(request, events)
        assert isinstance(response, InboundResponse), f"{request.path} answered {response!r}"
        return response

    def _from_provider(self, logger: str) -> bool:
        return any(
            logger == name or logger.startswith(name + ".") for name in self.provider_loggers
        )

    def _modes(self, channel: Channel) -> Iterator[Mode]:
        return (mode for mode in MODES if mode in channel.modes)

    def _mode(self, channel: Channel) -> Mode:
        return next(self._modes(channel))
