"""Twilio's ``X-Twilio-Signature``: how Twilio proves a callback came from it.

The signature is base64(HMAC-SHA1(auth token, the full URL + each POST parameter's name and value,
sorted by name)), as Twilio documents under "Webhooks security".

Twilio does not always sign the URL as it was configured: with the scheme's default port written
(``https://host:443/...``) or left out. A host's framework may also add or drop it from the URL it
hands over. So, as Twilio's own libraries do, a signature over either spelling counts. Only the
default port is spelled both ways: another port names another server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping

HEADER = "X-Twilio-Signature"
DEFAULT_PORTS = {"https": 443, "http": 80}
# An http(s) URL's scheme and authority: user info, host (a name, or an IPv6 address in brackets)
# and port, up to the path, query or fragment.
_AUTHORITY = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<userinfo>[^/?#@]*@)?"
    r"(?P<host>\[[^\]/?#]*\]|[^:/?#\[\]]*)(?::(?P<port>[^/?#]*))?(?=[/?#]|\Z)"
)


def expected_signature(url: str, params: Mapping[str, str], auth_token: str) -> str:
    signed = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def is_signed_by(
    url: str, params: Mapping[str, str], signature: str | None, auth_token: str
) -> bool:
    """Whether ``signature`` is Twilio's for this request; compared in constant time."""
    if not signature or not auth_token:
        return False
    given = signature.encode()
    return any(
        hmac.compare_digest(expected_signature(spelling, params, auth_token).encode(), given)
        for spelling in url_spellings(url)
    )


def url_spellings(url: str) -> tuple[str, ...]:
    """``url``, and the same URL with its scheme's default port written if it was left out, or
    left out if it was written; the rest character for character. Read with a pattern, not
    urlsplit, which remembers the last URLs it split: these are a stranger's until signed."""
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
