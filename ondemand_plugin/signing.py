"""Public helpers for checking a provider's webhook signature, for channel authors.

Most providers sign a callback with an HMAC of some bytes (the body, or the URL and the fields)
under a shared secret, and send it base64 or hex encoded in a header. ``verify_hmac`` compares
in constant time, so a forger learns nothing from how long a refusal takes::

    from ondemand_plugin import signing

    def pigeon_status(request, events):
        if not signing.verify_hmac(SECRET, request.body, request.header("X-Pigeon-Sig")):
            return InboundResponse(status=403)
        ...

Check the signature before reading anything else of the request, and keep nothing from a
request that fails it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import UTC, datetime
from typing import Literal

__all__ = [
    "DEFAULT_PORTS",
    "Encoding",
    "hmac_signature",
    "is_fresh",
    "url_spellings",
    "verify_hmac",
]

Encoding = Literal["hex", "base64"]
DEFAULT_PORTS = {"https": 443, "http": 80}
# An http(s) URL's scheme and authority: user info, host (a name, or an IPv6 address in brackets)
# and port, up to the path, query or fragment.
_AUTHORITY = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<userinfo>[^/?#@]*@)?"
    r"(?P<host>\[[^\]/?#]*\]|[^:/?#\[\]]*)(?::(?P<port>[^/?#]*))?(?=[/?#]|\Z)"
)


def _bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


def hmac_signature(
    key: str | bytes,
    message: str | bytes,
    *,
    algorithm: str = "sha256",
    encoding: Encoding = "hex",
) -> str:
    """The HMAC of ``message`` under ``key`` with ``algorithm`` (a ``hashlib`` name), encoded."""
    digest = hmac.new(_bytes(key), _bytes(message), getattr(hashlib, algorithm)).digest()
    return digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()


def verify_hmac(
    key: str | bytes,
    message: str | bytes,
    signature: str | None,
    *,
    algorithm: str = "sha256",
    encoding: Encoding = "hex",
    prefix: str = "",
) -> bool:
    """Whether ``signature`` (after ``prefix``, such as ``"sha256="``) is the HMAC of
    ``message`` under ``key``; compared in constant time. False for a missing signature or key."""
    if not signature or not key or not signature.startswith(prefix):
        return False
    expected = hmac_signature(key, message, algorithm=algorithm, encoding=encoding)
    given = signature[len(prefix) :]
    if encoding == "hex":
        given = given.lower()
    return hmac.compare_digest(expected.encode(), given.encode())


def is_fresh(
    timestamp: str | int | float, *, tolerance: float = 300, now: datetime | None = None
) -> bool:
    """Whether a signed Unix ``timestamp`` (seconds) is within ``tolerance`` seconds of now, so
    that a captured request cannot be replayed later. False for one that is not a number."""
    try:
        at = float(timestamp)
    except (TypeError, ValueError):
        return False
    current = (now or datetime.now(UTC)).timestamp()
    return abs(current - at) <= tolerance


def url_spellings(url: str) -> tuple[str, ...]:
    """``url``, and the same URL with its scheme's default port written if it was left out, or
    left out if it was written; the rest character for character.

    Providers do not always sign a URL as it was configured, and a host's framework may add or
    drop the default port from the URL it hands over, so a signature over either spelling should
    count. Only the default port is spelled both ways: another port names another server. Read
    with a pattern, not urlsplit, which remembers the last URLs it split: these are a stranger's
    until signed."""
    authority = _AUTHORITY.match(url)
    if authority is None or not authority["host"]:
        return (url,)
    default = DEFAULT_PORTS.get(authority["scheme"].lower())
    port = authority["port"]
    if default is None:
        return (url,)
    if port is None:
        return (url, f"{url[: authority.end()]}:{default}{url[authority.end() :]}")
    if port == str(default):
        return (url, url[: authority.start("port") - 1] + url[authority.end() :])
    return (url,)
