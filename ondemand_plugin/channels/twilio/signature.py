"""Twilio's ``X-Twilio-Signature``: how Twilio proves a callback came from it.

The signature is base64(HMAC-SHA1(auth token, the full URL + each POST parameter's name and value,
sorted by name)), as Twilio documents under "Webhooks security".

Twilio does not always sign the URL as it was configured: with the scheme's default port written
(``https://host:443/...``) or left out, and a host's framework may also add or drop it. So, as
Twilio's own libraries do, a signature over either spelling counts (``signing.url_spellings``).
"""

from __future__ import annotations

from collections.abc import Mapping

from ondemand_plugin.signing import hmac_signature, url_spellings, verify_hmac

HEADER = "X-Twilio-Signature"


def _signed_text(url: str, params: Mapping[str, str]) -> str:
    return url + "".join(name + params[name] for name in sorted(params))


def expected_signature(url: str, params: Mapping[str, str], auth_token: str) -> str:
    return hmac_signature(
        auth_token, _signed_text(url, params), algorithm="sha1", encoding="base64"
    )


def is_signed_by(
    url: str, params: Mapping[str, str], signature: str | None, auth_token: str
) -> bool:
    """Whether ``signature`` is Twilio's for this request; compared in constant time."""
    return any(
        verify_hmac(
            auth_token,
            _signed_text(spelling, params),
            signature,
            algorithm="sha1",
            encoding="base64",
        )
        for spelling in url_spellings(url)
    )


__all__ = ["HEADER", "expected_signature", "is_signed_by", "url_spellings"]
