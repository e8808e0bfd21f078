"""Routing ``pm_inbound_request`` to the handler of its path, and shaping the answers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ondemand_plugin import contracts
from ondemand_plugin.errors import InvalidRequest

TEXT_PLAIN = "text/plain; charset=utf-8"


@attrs.frozen
class InboundRequest:
    method: str
    path: str
    url: str
    headers: Mapping[str, str] = attrs.field(repr=False)
    form: Mapping[str, str] = attrs.field(repr=False)
    body: str = attrs.field(repr=False)

    def header(self, name: str) -> str | None:
        """A header's value, whatever the case the host wrote its name in."""
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return value
        return None


Handler = Callable[[InboundRequest], dict[str, Any]]


def answer(status: int, body: str = "", content_type: str = TEXT_PLAIN) -> dict[str, Any]:
    return {"status": status, "headers": {"Content-Type": content_type}, "body": body}


class InboundRouter:
    """The plugin's answers under its mount prefix; every route takes POST only."""

    def __init__(self, routes: Mapping[str, Handler]) -> None:
        self.routes = routes

    def handle(self, arguments: dict[str, Any]) -> dict[str, Any]:
        contracts.check("inbound-request", arguments, _request_error)
        request = InboundRequest(
            method=arguments["method"].upper(),
            path=arguments["path"].strip("/"),
            url=arguments["url"],
            headers=arguments["headers"],
            form=arguments["form"],
            body=arguments["body"],
        )
        handler = self.routes.get(request.path)
        if handler is None:
            return answer(404, f"Nothing is served at {request.path!r}.")
        if request.method != "POST":
            refused = answer(405, f"{request.path} takes POST only.")
            refused["headers"]["Allow"] = "POST"
            return refused
        return handler(request)


def _request_error(path: str, problem: str) -> InvalidRequest:
    return InvalidRequest(
        f"The host's pm_inbound_request call: {path} {problem}. Pass the request as "
        "contracts/inbound-request.json describes it.",
        field=path,
    )
