"""The ``outbox`` channel: every message written as a JSON file, for the embedded default and demos.

Files land in ``<outbox_dir>/<practice_id>/<notification_id>.json``, written atomically, so that
``lookup`` can tell whether a message left.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

from hookspecs import hookimpl
from hookspecs.types import Channel, DeliveryReceipt, OutboundMessage, TransientDeliveryError


class OutboxChannel:
    name = "outbox"
    modes = frozenset({"email", "text", "voice"})

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def __repr__(self) -> str:
        return f"OutboxChannel({str(self.directory)!r})"

    def deliver(self, message: OutboundMessage) -> DeliveryReceipt:
        target = self._file_of(message)
        record = {**attrs.asdict(message), "delivered_at": datetime.now(UTC).isoformat()}
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(".partial")
            partial.write_text(json.dumps(record, indent=2), encoding="utf-8")
            os.replace(partial, target)
        except OSError as error:
            raise TransientDeliveryError(f"The outbox folder cannot be written: {error}") from None
        return DeliveryReceipt(status="delivered", provider_message_id=target.name)

    def lookup(self, message: OutboundMessage) -> DeliveryReceipt | None:
        """The file is written atomically under the notification's id: it exists, or the
        message never left."""
        target = self._file_of(message)
        if target.is_file():
            return DeliveryReceipt(status="delivered", provider_message_id=target.name)
        return None

    def _file_of(self, message: OutboundMessage) -> Path:
        return self.directory / message.practice_id / f"{message.notification_id}.json"


def read_outbox(directory: Path, practice_id: str) -> list[dict[str, Any]]:
    """What the outbox holds for a practice, oldest first."""
    folder = directory / practice_id
    if not folder.is_dir():
        return []
    messages = [json.loads(path.read_text("utf-8")) for path in folder.glob("*.json")]
    return sorted(messages, key=lambda message: str(message["delivered_at"]))


@hookimpl
def ondemand_delivery_channels(config: Mapping[str, Any]) -> list[Channel]:
    return [OutboxChannel(Path(config["outbox_dir"]))]
