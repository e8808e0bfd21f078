"""On-Demand's Telnyx channel, a plugin of its own (entry point ``telnyx`` in group ``pm``).

Settings under the configuration key ``telnyx``: ``api_key`` (required), ``messaging_profile_id``
or ``from`` (else each practice's own text number is the sender), ``public_key`` (the account's
Ed25519 key, base64; without it no webhook is accepted), ``webhook_url`` (where Telnyx posts a
message's events: the host's URL of the route ``telnyx/webhooks``), ``base_url`` and
``timeout_seconds``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hookspecs import hookimpl
from hookspecs.types import Channel, InboundRoute
from ondemand_telnyx._channel import OPTED_OUT_ERROR, TelnyxChannel
from ondemand_telnyx._settings import CONFIG_KEY, SettingsError, TelnyxSettings
from ondemand_telnyx._webhooks import ROUTE_PATH, signature_problem, webhook_handler

__all__ = [
    "OPTED_OUT_ERROR",
    "ROUTE_PATH",
    "SettingsError",
    "TelnyxChannel",
    "TelnyxSettings",
    "ondemand_delivery_channels",
    "ondemand_inbound_routes",
    "signature_problem",
    "webhook_handler",
]


@hookimpl
def ondemand_delivery_channels(config: Mapping[str, Any]) -> list[Channel]:
    settings = config.get(CONFIG_KEY)
    return [TelnyxChannel(TelnyxSettings.read(settings))] if settings else []


@hookimpl
def ondemand_inbound_routes(config: Mapping[str, Any]) -> list[InboundRoute]:
    settings = config.get(CONFIG_KEY)
    if not settings:
        return []
    public_key = TelnyxSettings.read(settings).public_key
    if public_key is None:
        return []  # nothing could tell Telnyx's webhooks from anyone's
    return [InboundRoute(ROUTE_PATH, ("POST",), webhook_handler(public_key))]
