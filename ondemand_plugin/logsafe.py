"""What a log line may say about an exception: its type, its text with the addresses masked and
the message's own text taken out, and where it was raised. Never ``log.exception``: an
exception's text (and its traceback's) may carry a recipient's address or a patient's message."""

from __future__ import annotations

import traceback
from collections.abc import Iterable, Iterator

from hookspecs.types import OutboundMessage
from ondemand_plugin.rules.addresses import mask, mask_addresses

# How much of an exception's text a log line keeps.
SUMMARY_LENGTH = 300
# Lines as short as a word would blank out ordinary words of the exception's text.
SHORTEST_HIDDEN_LINE = 8


def sanitised(text: str, hide: Iterable[str] = (), addresses: Iterable[str] = ()) -> str:
    """``text`` with each of ``hide`` taken out, each of ``addresses`` and whatever else looks
    like an address masked, and cut short."""
    for piece in sorted(set(_spellings(hide)), key=len, reverse=True):
        text = text.replace(piece, "[message text]")
    for address in addresses:
        text = text.replace(address, mask(address))
    text = mask_addresses(text)
    return text if len(text) <= SUMMARY_LENGTH else text[:SUMMARY_LENGTH] + "…"


def summary(error: BaseException, hide: Iterable[str] = (), addresses: Iterable[str] = ()) -> str:
    """``RuntimeError: …`` with the text sanitised, then the frames it was raised through."""
    return f"{type(error).__name__}: {sanitised(str(error), hide, addresses)}\n{frames(error)}"


def frames(error: BaseException) -> str:
    """Where ``error`` was raised, frame by frame, without source lines or values."""
    lines = [
        f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}'
        for frame in traceback.extract_tb(error.__traceback__)
    ]
    return "\n".join(["Traceback (most recent call last):", *lines])


def message_texts(message: OutboundMessage) -> list[str]:
    """What of a message no log line may repeat, even masked."""
    return [text for text in (message.body, message.subject, message.html) if text]


def _spellings(texts: Iterable[str]) -> Iterator[str]:
    """Each text as an exception may quote it: whole, as a repr, line by line."""
    for text in texts:
        yield text
        yield repr(text)[1:-1]
        yield from (
            line.strip() for line in text.splitlines() if len(line.strip()) >= SHORTEST_HIDDEN_LINE
        )
