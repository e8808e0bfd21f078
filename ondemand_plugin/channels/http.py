"""What the HTTP channels share: one client per channel, and provider answers mapped to errors.

Status 429 and 5xx, timeouts and connection failures are worth retrying; other 4xx are not.
Error texts pass through ``scrub`` first: a provider often repeats the recipient in its answer.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx

from hookspecs.types import PermanentDeliveryError, TransientDeliveryError
from ondemand_plugin.rules.addresses import mask

DEFAULT_TIMEOUT_SECONDS = 10.0
# Enough for many sends in flight at once, each on a kept-alive connection: every connection is
# kept, since a pool that closes some after each burst of sends opens (and handshakes) them again
# on the next one.
MAX_CONNECTIONS = 50
_LIMITS = httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS)


def client(
    base_url: str, timeout_seconds: float, auth: tuple[str, str] | None = None
) -> httpx.Client:
    return httpx.Client(
        base_url=base_url,
        auth=auth,
        timeout=timeout_seconds,
        limits=_LIMITS,
        headers={"User-Agent": "ondemand-plugin"},
    )


def public_url(url: str) -> str:
    """``url`` fit for a ``repr``: a host may carry a password in its user part or a token in
    its query; the scheme, host and path alone say which endpoint it is."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def scrub(text: str, addresses: Iterable[str], secrets: Iterable[str]) -> str:
    """``text`` with each address masked and each secret hidden."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[secret]")
    for address in addresses:
        if address:
            text = text.replace(address, mask(address))
    return text


def unreachable(provider: str, error: httpx.TransportError) -> TransientDeliveryError:
    """A timeout or a failed connection: the provider may answer the next attempt."""
    what = (
        "did not answer in time"
        if isinstance(error, httpx.TimeoutException)
        else "cannot be reached"
    )
    return TransientDeliveryError(f"{provider} {what} ({type(error).__name__}).")


def refusal(provider: str, response: httpx.Response, reason: str) -> Exception:
    """The error for a provider's non-2xx answer; ``reason`` is already scrubbed."""
    status = response.status_code
    if status == 429:
        return TransientDeliveryError(
            f"{provider} is rate limiting (429): {reason}", retry_after=retry_after(response)
        )
    if status >= 500:
        return TransientDeliveryError(f"{provider} failed ({status}): {reason}")
    return PermanentDeliveryError(f"{provider} refused the message ({status}): {reason}")


def retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds, given as seconds or as an HTTP date; None when absent."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None
