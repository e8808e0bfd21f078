"""Handing a message to its mode's channels: retries with backoff, failover, one deadline.

``TransientDeliveryError`` is retried with exponential backoff and jitter, honouring the
provider's ``retry_after``; ``PermanentDeliveryError`` (or any other exception) ends a channel's
turn at once. When a channel gives up, the next channel configured for the mode gets the rest of
the deadline, shared evenly among the channels still to try. ``RecipientOptedOutError`` ends the
delivery: the recipient asked not to get these messages, whichever channel carries them.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Sequence

import attrs
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_before_delay,
    wait_random_exponential,
)

from hookspecs.types import (
    Channel,
    DeliveryReceipt,
    OutboundMessage,
    PermanentDeliveryError,
    RecipientOptedOutError,
    TransientDeliveryError,
)
from ondemand_plugin import telemetry
from ondemand_plugin.logsafe import message_texts, sanitised, summary
from ondemand_plugin.rules.addresses import mask

log = logging.getLogger(__name__)

_backoff = wait_random_exponential(multiplier=0.05, max=2.0)


@attrs.frozen
class DeliveryOutcome:
    status: str  # "sent" or "failed"
    detail: str
    channel: str | None
    provider_message_id: str | None
    # The provider of ``channel`` refused the message because the recipient opted out.
    recipient_opted_out: bool = False
    # The channel's receipt said "delivered": the message already reached the recipient.
    delivered: bool = False


def deliver(
    message: OutboundMessage,
    channels: Sequence[Channel],
    deadline_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
) -> DeliveryOutcome:
    deadline = time.monotonic() + deadline_seconds
    failures: list[str] = []
    for index, channel in enumerate(channels):
        share = (deadline - time.monotonic()) / (len(channels) - index)
        try:
            receipt = _with_retries(channel, message, share, sleep)
        except TransientDeliveryError as error:
            failures.append(f"{channel.name} kept failing until the deadline: {error}")
        except RecipientOptedOutError as error:
            log.warning("%s refused %s: the recipient opted out", channel.name, message)
            return DeliveryOutcome(
                status="failed",
                detail=f"{channel.name} refused the message: the recipient opted out of "
                f"{message.mode} messages ({error}). They will not be sent {message.mode} "
                "messages again unless they opt back in.",
                channel=channel.name,
                provider_message_id=None,
                recipient_opted_out=True,
            )
        except PermanentDeliveryError as error:
            failures.append(f"{channel.name} refused the message: {error}")
        except Exception as error:
            log.error(
                "Channel %s raised while delivering %s: %s",
                channel.name,
                message,
                summary(error, message_texts(message), (message.to,)),
            )
            failures.append(f"{channel.name} failed unexpectedly ({type(error).__name__})")
        else:
            if isinstance(receipt, DeliveryReceipt):
                log.info("Delivered %s to %s through %s", message, mask(message.to), channel.name)
                detail = receipt.detail or f"Accepted by {channel.name} ({receipt.status})."
                return DeliveryOutcome(
                    "sent",
                    detail,
                    channel.name,
                    receipt.provider_message_id,
                    delivered=receipt.status == "delivered",
                )
            failures.append(f"{channel.name} answered without a DeliveryReceipt")
        log.warning(
            "Delivery of %s through %s failed: %s",
            message,
            channel.name,
            sanitised(failures[-1], message_texts(message), (message.to,)),
        )
    return DeliveryOutcome(
        status="failed",
        detail="; ".join(failures) or "No channel is configured for this mode.",
        channel=channels[-1].name if channels else None,
        provider_message_id=None,
    )


def _with_retries(
    channel: Channel,
    message: OutboundMessage,
    budget_seconds: float,
    sleep: Callable[[float], None],
) -> DeliveryReceipt:
    retrying = Retrying(
        retry=retry_if_exception_type(TransientDeliveryError),
        wait=_wait,
        stop=stop_before_delay(max(budget_seconds, 0.0)),
        sleep=sleep,
        reraise=True,
    )
    return retrying(_attempts(channel), message)


def _attempts(channel: Channel) -> Callable[[OutboundMessage], DeliveryReceipt]:
    """``channel.deliver``, each call of it recorded as a delivery attempt."""
    tries = itertools.count(1)

    def attempt(message: OutboundMessage) -> DeliveryReceipt:
        with telemetry.delivery_attempt(channel.name, message.mode, next(tries)) as span:
            try:
                receipt = channel.deliver(message)
            except BaseException as error:
                outcome = _outcome(error)
                span.set(telemetry.OUTCOME, outcome)
                span.fail(outcome)
                raise
            if isinstance(receipt, DeliveryReceipt):
                span.set(telemetry.OUTCOME, "accepted")
            else:
                span.set(telemetry.OUTCOME, "no_receipt")
                span.fail("no_receipt")
            return receipt

    return attempt


def _outcome(error: BaseException) -> str:
    if isinstance(error, TransientDeliveryError):
        return "transient"
    if isinstance(error, RecipientOptedOutError):
        return "opted_out"
    if isinstance(error, PermanentDeliveryError):
        return "permanent"
    return "error"


def _wait(state: RetryCallState) -> float:
    """Backoff with jitter, but never sooner than the provider asked."""
    error = state.outcome.exception() if state.outcome else None
    hint = error.retry_after if isinstance(error, TransientDeliveryError) else None
    return max(_backoff(state), hint or 0.0)
