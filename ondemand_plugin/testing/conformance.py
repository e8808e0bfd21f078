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
of transient failures, no retry of permanent ones, and a channel that recovers delivers.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import attrs
import pytest

from hookspecs.types import (
    MODES,
    Channel,
    DeliveryReceipt,
    Mode,
    OutboundMessage,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from ondemand_plugin import contracts
from ondemand_plugin.delivery import deliver
from ondemand_plugin.extensions import channel_problem

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

    def _from_provider(self, logger: str) -> bool:
        return any(
            logger == name or logger.startswith(name + ".") for name in self.provider_loggers
        )

    def _modes(self, channel: Channel) -> Iterator[Mode]:
        return (mode for mode in MODES if mode in channel.modes)

    def _mode(self, channel: Channel) -> Mode:
        return next(self._modes(channel))
