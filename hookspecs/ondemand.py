"""Hooks extension plugins implement and the On-Demand plugin calls."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hookspecs._markers import hookspec
from hookspecs.types import Channel, TemplateStore


@hookspec
def ondemand_delivery_channels(config: Mapping[str, Any]) -> list[Channel]:
    """Delivery channels this plugin provides. Called once per plugin manager, at configure time.

    ``config`` is the On-Demand plugin's validated configuration; a channel reads its own
    settings under its name. Channel names are unique across plugins.

    Example::

        class PigeonChannel:
            name = "pigeon"
            modes = frozenset({"text"})

            def __init__(self, settings):
                self.loft = settings.get("loft", "main")

            def deliver(self, message):
                tag = send_pigeon(self.loft, message.to, message.body)
                return DeliveryReceipt(status="sent", provider_message_id=tag)

        @hookimpl
        def ondemand_delivery_channels(config):
            return [PigeonChannel(config.get("pigeon", {}))]

    A channel may also implement ``lookup`` (``StatusLookup``): what became of a message whose
    worker stopped while delivering it. It is never delivered again; the lookup settles it::

        class PigeonChannel:
            ...

            def lookup(self, message):
                tag = find_pigeon(self.loft, message.notification_id)
                if tag is None:
                    return None  # the loft never got it: the send failed
                return DeliveryReceipt(status="sent", provider_message_id=tag)
    """


@hookspec(firstresult=True)
def ondemand_template_store(config: Mapping[str, Any]) -> TemplateStore | None:
    """A store for On-Demand templates, replacing the built-in one; None keeps the built-in.

    Each implementation is asked on its own, at start: of several stores, the configuration's
    ``template_store`` (a plugin's name) picks one, and two without it are an error. What the
    store raises or answers is checked: a broken template is left out with a notice, and a store
    that raises leaves the dialog open for typed text.

    Example::

        @hookimpl
        def ondemand_template_store(config):
            return MyCmsTemplateStore(config.get("cms_url"))
    """


@hookspec
def ondemand_notification_sent(result: dict[str, Any], context: dict[str, Any]) -> None:
    """Observers (audit, metrics) told of each notification after its delivery was attempted.

    ``result`` is the send result (``send-result.json``). The hook is called through pluggy,
    so ``wrapper=True`` and ``hookwrapper=True`` implementations run around the observers. An
    observer that raises is logged and skipped; the others still run and the result does not
    change.

    Example::

        @hookimpl
        def ondemand_notification_sent(result, context):
            metrics.increment("ondemand.sent", tags={"status": result["status"]})
    """
