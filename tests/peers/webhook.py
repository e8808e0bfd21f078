"""A host's webhook receiver: keeps each signed delivery and answers with an id of its own."""

from __future__ import annotations

import itertools
from typing import Any

from peers.http import HttpPeer, Reply, Request

WEBHOOK_SECRET = "whsec-0123456789abcdef"


class WebhookPeer(HttpPeer):
    def __init__(self) -> None:
        self._ids = itertools.count(1)
        super().__init__(self._accept)

    def settings(self, **extra: Any) -> dict[str, Any]:
        return {"url": self.url + "/ondemand/messages", "secret": WEBHOOK_SECRET, **extra}

    def _accept(self, request: Request) -> Reply:
        return Reply(202, {"id": f"host-{next(self._ids)}"})
