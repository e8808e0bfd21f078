"""The public helper for HMAC signature schemes that channel authors use."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

import pytest

import hookspecs
from ondemand_plugin import signing


def test_verify_hmac_accepts_the_right_signature_and_refuses_others() -> None:
    right = hmac.new(b"secret", b"body", hashlib.sha256).hexdigest()
    assert signing.verify_hmac("secret", "body", right)
    assert signing.verify_hmac("secret", "body", right.upper())
    assert not signing.verify_hmac("secret", "body!", right)
    assert not signing.verify_hmac("other", "body", right)
    assert not signing.verify_hmac("secret", "body", None)
    assert not signing.verify_hmac("secret", "body", "")
    assert not signing.verify_hmac("", "body", right)


def test_verify_hmac_reads_base64_other_digests_and_a_prefix() -> None:
    digest = hmac.new(b"k", b"m", hashlib.sha1).digest()
    given = "sha1=" + base64.b64encode(digest).decode()
    assert signing.verify_hmac("k", "m", given, algorithm="sha1", encoding="base64", prefix="sha1=")
    assert not signing.verify_hmac(
        "k", "m", given[5:], algorithm="sha1", encoding="base64", prefix="sha1="
    )
    assert signing.hmac_signature("k", "m", algorithm="sha1", encoding="base64") == given[5:]


def test_is_fresh_refuses_old_future_and_malformed_timestamps() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert signing.is_fresh(str(int(now.timestamp()) - 299), now=now)
    assert not signing.is_fresh(int(now.timestamp()) - 301, now=now)
    assert not signing.is_fresh(now.timestamp() + 301, now=now)
    assert not signing.is_fresh("yesterday", now=now)


@pytest.mark.parametrize(
    ("url", "spellings"),
    [
        ("https://a.example/x", ("https://a.example/x", "https://a.example:443/x")),
        ("https://a.example:443/x?q=1", ("https://a.example:443/x?q=1", "https://a.example/x?q=1")),
        ("https://a.example:8443/x", ("https://a.example:8443/x",)),
        ("not a url", ("not a url",)),
    ],
)
def test_url_spellings_writes_and_drops_only_the_default_port(
    url: str, spellings: tuple[str, ...]
) -> None:
    assert signing.url_spellings(url) == spellings


def test_inbound_types_normalise_their_route_and_read_headers_in_any_case() -> None:
    route = hookspecs.InboundRoute(
        path="/pigeon/status/", methods={"post"}, handler=lambda r, e: hookspecs.InboundResponse()
    )
    assert route.path == "pigeon/status"
    assert route.methods == frozenset({"POST"})
    request = hookspecs.InboundRequest(
        method="POST",
        path="pigeon/status",
        url="https://h/x",
        headers={"X-Pigeon-Sig": "s"},
        form={},
        body="",
    )
    assert request.header("x-pigeon-sig") == "s"
    assert request.header("missing") is None
    with pytest.raises(ValueError, match="path"):
        hookspecs.InboundRoute(path="/", methods={"POST"}, handler=route.handler)
    with pytest.raises(attrs_frozen_error()):
        request.method = "GET"  # type: ignore[misc]


def attrs_frozen_error() -> type[Exception]:
    import attrs

    return attrs.exceptions.FrozenInstanceError
