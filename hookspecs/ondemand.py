"""Hooks extension plugins implement and the On-Demand plugin calls."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hookspecs._markers import hookspec
from hookspecs.types import Channel, InboundRoute, TemplateStore


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


@hookspec
def ondemand_inbound_routes(config: Mapping[str, Any]) -> list[InboundRoute]:
    """HTTP routes this plugin serves under the host's ``pm_inbound_request`` for plugin name
    ``ondemand``: its provider's delivery callbacks and replies. Called once, at start.

    ``config`` is the On-Demand plugin's validated configuration. Paths are unique across
    plugins: two routes with one path are an error at start naming both plugins. The plugin
    refuses a body over 64 KiB (413) or not UTF-8 (400) before a handler runs, answers 405 for
    a method the route does not list, and 500 (logged by type) for a handler that raises. The
    handler checks its provider's signature, then reports through ``events``
    (``DeliveryEvents``).

    Example::

        def pigeon_status(request, events):
            if not signing.verify_hmac(SECRET, request.body, request.header("X-Pigeon-Sig")):
                return InboundResponse(status=403)
            events.delivery_status("pigeon", request.form["tag"], request.form["state"])
            return InboundResponse(status=204)

        @hookimpl
        def ondemand_inbound_routes(config):
            return [InboundRoute(path="pigeon/status", methods={"POST"}, handler=pigeon_status)]
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
