"""Handing a message to its mode's channels: retries with backoff, failover, one deadline.

``TransientDeliveryError`` is retried with exponential backoff and jitter, honouring the
provider's ``retry_after``; ``PermanentDeliveryError`` (or any other exception) ends a channel's
turn at once. When a channel gives up, the next channel configured for the mode gets the rest of
the deadline, shared evenly among the channels still to try. ``RecipientOptedOutError`` ends the
delivery: the recipient asked not to get these messages, whichever channel carries them.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Iterator, Sequence

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
from ondemand_plugin.addresses import mask, mask_addresses

log = logging.getLogger(__name__)

_backoff = wait_random_exponential(multiplier=0.05, max=2.0)
# How much of an exception's text a log line keeps.
SUMMARY_LENGTH = 300


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
            # Not log.exception: the exception's text, and its traceback's, may carry the
            # recipient's address or the message; the log gets a sanitised summary and the frames.
            log.error(
                "Channel %s raised %s while delivering %s: %s\n%s",
                channel.name,
                type(error).__name__,
                message,
                loggable(str(error), message),
                _frames(error),
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
            loggable(failures[-1], message),
        )
    return DeliveryOutcome(
        status="failed",
        detail="; ".join(failures) or "No channel is configured for this mode.",
        channel=channels[-1].name if channels else None,
        provider_message_id=None,
    )


def loggable(text: str, message: OutboundMessage) -> str:
    """``text`` fit for a log line: the message's own text taken out, whatever looks like an
    address masked, and cut short."""
    for piece in sorted(set(_message_texts(message)), key=len, reverse=True):
        text = text.replace(piece, "[message text]")
    text = mask_addresses(text.replace(message.to, mask(message.to)))
    return text if len(text) <= SUMMARY_LENGTH else text[:SUMMARY_LENGTH] + "…"


def _message_texts(message: OutboundMessage) -> Iterator[str]:
    """The message's texts as an exception may quote them: whole, as a repr, line by line."""
    for text in (message.body, message.subject, message.html):
        if not text:
            continue
        yield text
        yield repr(text)[1:-1]
        # Lines as short as a word would blank out ordinary words of the exception's text.
        yield from (line.strip() for line in text.splitlines() if len(line.strip()) >= 8)


def _frames(error: BaseException) -> str:
    """Where ``error`` was raised, frame by frame, without the source lines or their values."""
    frames = traceback.extract_tb(error.__traceback__)
    lines = [f'  File "{f.filename}", line {f.lineno}, in {f.name}' for f in frames]
    return "Traceback (most recent call last):\n" + "\n".join(lines)


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
    return retrying(channel.deliver, message)


def _wait(state: RetryCallState) -> float:
    """Backoff with jitter, but never sooner than the provider asked."""
    error = state.outcome.exception() if state.outcome else None
    hint = error.retry_after if isinstance(error, TransientDeliveryError) else None
    return max(_backoff(state), hint or 0.0)
