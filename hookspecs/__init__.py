"""The contract between a practice-management host, the On-Demand plugin and its extensions.

A host wires everything with::

    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    hookspecs.add_hookspecs(pm)
    pm.register(MyHostAdapter())
    pm.load_setuptools_entrypoints(hookspecs.PROJECT_NAME)
    pm.hook.pm_configure.call_historic(kwargs={"plugin_manager": pm})
"""

from __future__ import annotations

import pluggy

from hookspecs._markers import PROJECT_NAME, hookimpl, hookspec
from hookspecs._version import CONTRACT_VERSION
from hookspecs.types import (
    DELIVERY_STATUSES,
    BindsEvents,
    Channel,
    DeliveryEvents,
    DeliveryReceipt,
    DeliveryStatus,
    InboundRequest,
    InboundResponse,
    InboundRoute,
    OutboundMessage,
    PermanentDeliveryError,
    RecipientOptedOutError,
    StatusLookup,
    Template,
    TemplateStore,
    TransientDeliveryError,
)

__all__ = [
    "CONTRACT_VERSION",
    "DELIVERY_STATUSES",
    "PROJECT_NAME",
    "BindsEvents",
    "Channel",
    "DeliveryEvents",
    "DeliveryReceipt",
    "DeliveryStatus",
    "InboundRequest",
    "InboundResponse",
    "InboundRoute",
    "OutboundMessage",
    "PermanentDeliveryError",
    "RecipientOptedOutError",
    "StatusLookup",
    "Template",
    "TemplateStore",
    "TransientDeliveryError",
    "add_hookspecs",
    "hookimpl",
    "hookspec",
]


def add_hookspecs(pm: pluggy.PluginManager) -> None:
    """Add every hook specification of the project to a plugin manager."""
    from hookspecs import dashboard, lifecycle, ondemand, platform, web

    for module in (lifecycle, dashboard, platform, ondemand, web):
        pm.add_hookspecs(module)
