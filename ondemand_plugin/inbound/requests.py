"""Routing ``pm_inbound_request`` to the ``InboundRoute`` of its path, and shaping the answers.

Anyone on the internet can reach these routes, so a request is answered, never raised out of the
hook, unless the host's call itself breaks the contract: one too large is refused (413, 414)
before any work is spent on it, one whose text is not UTF-8 is a bad request (400), and nothing
derived from a request is kept before its handler has checked who sent it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from hookspecs.types import DeliveryEvents, InboundRequest, InboundResponse, InboundRoute
from ondemand_plugin import telemetry
from ondemand_plugin.boundary import contracts
from ondemand_plugin.errors import InvalidRequest

log = logging.getLogger(__name__)

TEXT_PLAIN = "text/plain; charset=utf-8"
PAY_PREFIX = "pay/"
# A provider's callback or reply is a few KB; the limit is on the body and on the decoded form.
MAX_BODY_BYTES = 64 * 1024
# As contracts/inbound-request.json caps them.
MAX_URL_CHARS = 4096
MAX_PATH_CHARS = 2048
# What a host's decoding leaves of bytes that are not UTF-8 (surrogateescape), or any lone one.
_SURROGATE = re.compile("[\ud800-\udfff]")


@attrs.frozen
class ServedRoute:
    """A plugin's route, with the label (plugin and distribution) that names it in logs."""

    route: InboundRoute
    label: str


def answer(status: int, body: str = "", content_type: str = TEXT_PLAIN) -> dict[str, Any]:
    return {"status": status, "headers": {"Content-Type": content_type}, "body": body}


class InboundRouter:
    """The plugin's answers under its mount prefix: every plugin's ``InboundRoute``, by path."""

    def __init__(
        self,
        routes: Mapping[str, ServedRoute],
        events: DeliveryEvents,
        pay_links: Callable[[InboundRequest], dict[str, Any]],
    ) -> None:
        self.routes = routes
        self.events = events
        # The plugin's own tracked pay links, under ``pay/``: one route for every token.
        self.pay_links = pay_links

    def handle(self, arguments: dict[str, Any]) -> dict[str, Any]:
        with telemetry.inbound() as span:
            answered = self._handle(arguments, span)
            span.set(telemetry.HTTP_STATUS, answered["status"])
            return answered

    def _handle(self, arguments: dict[str, Any], span: telemetry.Mark) -> dict[str, Any]:
        refusal = _too_large(arguments)
        if refusal is not None:
            return refusal
        contracts.check("inbound-request", arguments, _request_error, remember=False)
        refusal = _not_utf_8(arguments)
        if refusal is not None:
            return refusal
        request = InboundRequest(
            method=arguments["method"].upper(),
            path=arguments["path"].strip("/"),
            url=arguments["url"],
            headers=arguments["headers"],
            form=arguments["form"],
            body=arguments["body"],
        )
        if request.path.startswith(PAY_PREFIX):
            span.set(telemetry.ROUTE, PAY_PREFIX + "{token}")  # never the token itself
            return self.pay_links(request)
        served = self.routes.get(request.path)
        if served is None:
            return answer(404, f"Nothing is served at {request.path!r}.")
        span.set(telemetry.ROUTE, request.path)  # a registered route's path, not any request's
        allowed = ", ".join(sorted(served.route.methods))
        if request.method not in served.route.methods:
            refused = answer(405, f"{request.path} takes {allowed} only.")
            refused["headers"]["Allow"] = allowed
            return refused
        return self._run(served, request)

    def _run(self, served: ServedRoute, request: InboundRequest) -> dict[str, Any]:
        """The handler's answer; one that raises or answers something else is a 500 that names
        nothing, logged by type: the request and the error may hold a stranger's text."""
        try:
            response = served.route.handler(request, self.events)
        except Exception as error:
            log.error(
                "The route %s of %s raised %s; answered 500",
                request.path,
                served.label,
                type(error).__name__,
            )
            return answer(500, "The request could not be handled.")
        if not isinstance(response, InboundResponse):
            log.error(
                "The route %s of %s answered %s, not an InboundResponse; answered 500",
                request.path,
                served.label,
                type(response).__name__,
            )
            return answer(500, "The request could not be handled.")
        return {
            "status": response.status,
            "headers": dict(response.headers),
            "body": response.body,
        }


def _too_large(arguments: Mapping[str, Any]) -> dict[str, Any] | None:
    """A 413 or 414 answer for a request over the limits; None for one within them. Read before
    the request is validated, so arguments of any type are skipped here."""
    body, form = arguments.get("body"), arguments.get("form")
    if (isinstance(body, str) and _utf8_size(body) > MAX_BODY_BYTES) or (
        isinstance(form, Mapping) and _form_size(form) > MAX_BODY_BYTES
    ):
        return answer(413, f"The request is over {MAX_BODY_BYTES // 1024} KiB; send less.")
    for name, limit in (("url", MAX_URL_CHARS), ("path", MAX_PATH_CHARS)):
        text = arguments.get(name)
        if isinstance(text, str) and len(text) > limit:
            return answer(414, f"The request's {name} is over {limit} characters.")
    return None


def _utf8_size(text: str) -> int:
    # Each character takes one byte at least: a text longer than the limit needs no encoding.
    if text.isascii() or len(text) > MAX_BODY_BYTES:
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


def _form_size(form: Mapping[Any, Any]) -> int:
    """The form's size as urlencoded, near enough: names, values and a separator each."""
    size = 0
    for name, value in form.items():
        size += 2 + sum(_utf8_size(part) for part in (name, value) if isinstance(part, str))
        if size > MAX_BODY_BYTES:
            break
    return size


def _not_utf_8(arguments: Mapping[str, Any]) -> dict[str, Any] | None:
    """A 400 answer when any text of the request cannot be UTF-8 (a lone surrogate); else None.
    The offending text is not echoed, nor logged."""
    parts = {
        "path": [arguments["path"]],
        "URL": [arguments["url"]],
        "headers": [text for item in arguments["headers"].items() for text in item],
        "form": [text for item in arguments["form"].items() for text in item],
        "body": [arguments["body"]],
    }
    for where, texts in parts.items():
        if any(_SURROGATE.search(text) for text in texts):
            return answer(400, f"The request's {where} is not valid UTF-8; send UTF-8 text.")
    return None


def _request_error(path: str, problem: str) -> InvalidRequest:
    return InvalidRequest(
        f"The host's pm_inbound_request call: {path} {problem}. Pass the request as "
        "contracts/inbound-request.json describes it.",
        field=path,
    )
