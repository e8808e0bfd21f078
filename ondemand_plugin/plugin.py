"""The plugin as the host loads it (entry point ``pm: ondemand = ondemand_plugin.plugin``).

The module is shared by every plugin manager in the process, so it keeps no state: its
``pm_configure`` registers a fresh ``OnDemandPlugin`` per manager, which holds the configuration,
the store and the channels. The hook implementations are thin: validate, call, shape.
"""

from __future__ import annotations

import logging
from typing import Any

import pluggy

from hookspecs import hookimpl
from hookspecs.types import MODES, Channel
from ondemand_plugin import MANAGE_ACTION_ID, OPT_OUTS_ACTION_ID, PLUGIN_NAME, SEND_ACTION_ID
from ondemand_plugin.boundary import contracts
from ondemand_plugin.boundary.config import Config, load_config
from ondemand_plugin.boundary.extensions import (
    check_hooks,
    choose_template_store,
    collect_channels,
    collect_routes,
    disable_plugins,
    disabled_plugins,
    known_plugin_names,
    notify_observers,
    strict_plugins,
    warn_of_unknown_names,
)
from ondemand_plugin.boundary.host import Host
from ondemand_plugin.channels import BUILT_IN_CHANNEL_PLUGINS, register_built_in_channels
from ondemand_plugin.errors import ConfigError, InvalidRequest, NotFound
from ondemand_plugin.inbound.events import PluginEvents
from ondemand_plugin.inbound.links import PayLinks
from ondemand_plugin.inbound.requests import InboundRouter, ServedRoute
from ondemand_plugin.rules import composing
from ondemand_plugin.rules.criteria import NO_BATCHED_STATEMENT
from ondemand_plugin.rules.entitlement import Entitlement
from ondemand_plugin.rules.history import history_page
from ondemand_plugin.rules.opt_outs import OptOuts, StaffOptOuts
from ondemand_plugin.rules.templates import TemplateManager, template_to_dict
from ondemand_plugin.sending.progress import Progress
from ondemand_plugin.sending.recovery import Recovery
from ondemand_plugin.sending.service import SendService, request_error
from ondemand_plugin.stores import Store, open_store

log = logging.getLogger(__name__)

INSTANCE_NAME = "ondemand.instance"
PANELS = {"patient": "balance", "guarantor": "statement_notification_history"}
# The send action's steps about a notification already sent.
SEND_FOLLOW_UPS = ("status", "resend", "cancel_link")
# The steps of each action: a send can also be previewed, as it is typed, and followed after.
STEPS = {
    SEND_ACTION_ID: ("open", "preview", "submit", *SEND_FOLLOW_UPS),
    MANAGE_ACTION_ID: ("open", "submit"),
}
ACTION_LABEL = "Send Balance Notification"


@hookimpl
def pm_configure(plugin_manager: pluggy.PluginManager) -> None:
    if plugin_manager.get_plugin(INSTANCE_NAME) is None:
        plugin_manager.register(OnDemandPlugin.start(plugin_manager), name=INSTANCE_NAME)


def switch_off_disabled_plugins(plugin_manager: pluggy.PluginManager, config: Config) -> None:
    """Unregister and block the plugins that ``ONDEMAND_DISABLE_PLUGINS`` and the configuration's
    ``disabled_plugins`` name, then register the built-in channels that are not disabled.

    The configuration comes from the host's ``pm_plugin_config``, so it can only be read once the
    plugins are loaded: a plugin it names has been imported, but is switched off here, before
    any channel, route or template store is collected, and is never called again, not even
    later in the host's ``pm_configure`` call under way. (Its own ``pm_configure`` has run
    already if pluggy called it before this plugin's.)
    """
    names = disabled_plugins(config.raw)
    built_in = {module.__name__ for module in BUILT_IN_CHANNEL_PLUGINS}
    known = known_plugin_names(plugin_manager) | built_in
    disable_plugins(plugin_manager, names)
    register_built_in_channels(plugin_manager)
    warn_of_unknown_names(names - known)


def instance_of(plugin_manager: pluggy.PluginManager) -> OnDemandPlugin:
    """The manager's own instance, for the account manager's tools and the test kit; a manager
    that never configured the plugin is told how to."""
    instance = plugin_manager.get_plugin(INSTANCE_NAME)
    if not isinstance(instance, OnDemandPlugin):
        raise ConfigError(
            "This plugin manager has not configured On-Demand Balance Notifications: load the "
            "plugin (pm.load_setuptools_entrypoints(hookspecs.PROJECT_NAME)) and call "
            'pm.hook.pm_configure.call_historic(kwargs={"plugin_manager": pm}) first.',
            field="plugin_manager",
        )
    return instance


class OnDemandPlugin:
    """Everything one plugin manager's On-Demand feature needs."""

    def __init__(
        self,
        plugin_manager: pluggy.PluginManager,
        config: Config,
        store: Store,
        routes: dict[str, tuple[Channel, ...]],
        templates: TemplateManager,
        channels: dict[str, Channel],
        inbound_routes: dict[str, ServedRoute],
    ) -> None:
        self.pm = plugin_manager
        self.config = config
        self.store = store
        self.routes = routes
        self.host = Host(plugin_manager)
        self.entitlement = Entitlement(store)
        self.templates = templates
        self.opt_outs = OptOuts(store, self.host)
        self.staff_opt_outs = StaffOptOuts(self.opt_outs, self.host)
        self.events = PluginEvents(
            store, self.host, self.opt_outs, channels, text_route=routes.get("text", ())
        )
        self.inbound = InboundRouter(inbound_routes, self.events, PayLinks(store, self.host).handle)
        self.progress = Progress(store)
        self.recovery = Recovery(store, routes, config.deadline_seconds)
        self.sends = SendService(
            host=self.host,
            config=config,
            store=store,
            templates=self.templates,
            channels=routes,
            notify=self._notify,
            opt_outs=self.opt_outs,
            recovery=self.recovery,
            completed=self.events.completed,
            remember=self.progress.remember,
        )

    @classmethod
    def start(cls, plugin_manager: pluggy.PluginManager) -> OnDemandPlugin:
        config = load_config(Host(plugin_manager).plugin_config(PLUGIN_NAME))
        switch_off_disabled_plugins(plugin_manager, config)
        if strict_plugins():
            check_hooks(plugin_manager)
        # A routing error stops the start, rather than a send later.
        channels = collect_channels(plugin_manager, config.raw)
        routes = channels_by_mode(config, channels)
        inbound_routes = collect_routes(plugin_manager, config.raw)
        chosen = choose_template_store(plugin_manager, config.raw)
        store = open_store(config.database_url)
        host = Host(plugin_manager)
        templates = TemplateManager(
            *(chosen or (store,)),
            practice_sender=lambda practice_id: host.practice(practice_id).sender_email,
        )
        plugin = cls(plugin_manager, config, store, routes, templates, channels, inbound_routes)
        _bind_channels(channels, plugin.events)
        # A worker that starts may be replacing one that died mid-delivery.
        plugin.recovery.run()
        return plugin

    def __repr__(self) -> str:
        channels = {
            mode: [channel.name for channel in route] for mode, route in self.routes.items()
        }
        return f"OnDemandPlugin({self.store!r}, channels={channels})"

    @hookimpl
    def pm_unconfigure(self, plugin_manager: pluggy.PluginManager) -> None:
        if plugin_manager is self.pm:
            self.store.close()
            _close_channels(self.routes)
            plugin_manager.unregister(self)

    @hookimpl
    def pm_dashboard_actions(
        self, dashboard: str, subject: dict[str, Any], context: dict[str, Any]
    ) -> list[dict[str, Any]]:
        practice_id = context.get("practice_id") if type(context) is dict else None
        if type(practice_id) is not str:
            raise InvalidRequest("context.practice_id must be the practice's id.", field="context")
        # Other plugins show actions on dashboards this one has none for: an unknown dashboard
        # is no error, or the host would lose every plugin's actions with it.
        panel = PANELS.get(dashboard) if type(dashboard) is str else None
        if panel is None or not self.entitlement.shown_on_dashboards(practice_id):
            return []
        if (
            type(subject) is not dict
            or subject.get("type") != dashboard
            or type(subject.get("id")) is not str
        ):
            raise InvalidRequest(
                f"On the {dashboard} dashboard, subject must be "
                f"{{'type': '{dashboard}', 'id': ...}}.",
                field="subject",
            )
        reason = None if self._any_batched_statement(practice_id, subject) else NO_BATCHED_STATEMENT
        return [
            {
                "id": SEND_ACTION_ID,
                "label": ACTION_LABEL,
                "dashboard": dashboard,
                "panel": panel,
                "enabled": reason is None,
                "disabled_reason": reason,
            }
        ]

    def _any_batched_statement(self, practice_id: str, subject: dict[str, Any]) -> bool:
        """R6, from the fewest host lookups: stop at the first guarantor with a statement."""
        if subject["type"] == "guarantor":
            return self.host.batched_statement_count(practice_id, subject["id"]) > 0
        for guarantor_id in self.host.guarantor_ids_of_patient(practice_id, subject["id"]):
            try:
                if self.host.batched_statement_count(practice_id, guarantor_id) > 0:
                    return True
            except NotFound:
                continue
        return False

    @hookimpl
    def pm_dashboard_action(
        self,
        action_id: str,
        step: str,
        subject: dict[str, Any],
        payload: dict[str, Any],
        context: dict[str, Any],
    ) -> dict[str, Any] | None:
        if action_id not in (SEND_ACTION_ID, MANAGE_ACTION_ID, OPT_OUTS_ACTION_ID):
            return None
        contracts.check("dashboard-context", context, _context_error)
        if action_id == OPT_OUTS_ACTION_ID:
            # No add-on check: what a recipient asked for holds whether or not the practice
            # sends on-demand messages today.
            if step != "submit":
                raise InvalidRequest("ondemand.opt_outs has one step: 'submit'.", field="step")
            return self.staff_opt_outs.record(payload, context)
        # The timeline's status answers from the last known state while the database is away:
        # the add-on's as last read too.
        self.entitlement.require(context["practice_id"], as_last_read=step == "status")
        steps = STEPS[action_id]
        if step not in steps:
            raise InvalidRequest(
                f"step must be {' or '.join(repr(known) for known in steps)} for {action_id}.",
                field="step",
            )
        if step in SEND_FOLLOW_UPS:
            return self._follow_up(step, subject, payload, context)
        if action_id == MANAGE_ACTION_ID:
            self._check_manage_subject(subject, context)
            if step == "open":
                return self._manage_form(context["practice_id"])
            return self._manage(payload, context["practice_id"])
        contracts.check("subject", subject, _subject_error)
        if step == "open":
            return self.sends.open_form(subject, context)
        if type(payload) is not dict:
            raise InvalidRequest("payload must be an object.", field="payload")
        if step == "preview":
            return self.sends.preview(subject, payload, context)
        return self.sends.submit(subject, payload, context)

    def _follow_up(
        self,
        step: str,
        subject: dict[str, Any],
        payload: dict[str, Any],
        context: dict[str, Any],
    ) -> dict[str, Any]:
        """A sent notification's ``status`` (the dialog's timeline), or, from the history, its
        ``resend`` (the dialog opened as it was filled in, with a new key) or ``cancel_link``."""
        practice_id = context["practice_id"]
        if step == "status":
            return self.progress.status(practice_id, payload)
        if step == "cancel_link":
            return self.progress.cancel_link(practice_id, payload, context)
        contracts.check("subject", subject, _subject_error)
        prefill = self.progress.request_of(practice_id, payload)
        return {**self.sends.open_form(subject, context), "prefill": prefill}

    @hookimpl
    def pm_payment_posted(
        self,
        practice_id: str,
        guarantor_id: str,
        amount: str,
        paid_at: str,
        reference: str,
        notification_id: str | None,
    ) -> None:
        # No add-on check: a payment after a notification counts, even if the add-on has been
        # switched off since.
        self.progress.payment_posted(
            {
                "practice_id": practice_id,
                "guarantor_id": guarantor_id,
                "amount": amount,
                "paid_at": paid_at,
                "reference": reference,
                "notification_id": notification_id,
            }
        )

    @hookimpl
    def pm_history_entries(
        self, guarantor_id: str, context: dict[str, Any], before: str | None, limit: int
    ) -> list[dict[str, Any]]:
        contracts.check("dashboard-context", context, _context_error)
        if type(guarantor_id) is not str or not guarantor_id:
            raise InvalidRequest("guarantor_id must be the guarantor's id.", field="guarantor_id")
        return history_page(
            self.store, context["practice_id"], guarantor_id, before, limit, self.recovery
        )

    @hookimpl
    def pm_inbound_request(
        self,
        plugin_name: str,
        method: str,
        path: str,
        url: str,
        headers: dict[str, str],
        form: dict[str, str],
        body: str,
    ) -> dict[str, Any] | None:
        # No add-on check: a callback about a notification already sent, or a STOP, always counts.
        if plugin_name != PLUGIN_NAME:
            return None
        return self.inbound.handle(
            {
                "plugin_name": plugin_name,
                "method": method,
                "path": path,
                "url": url,
                "headers": headers,
                "form": form,
                "body": body,
            }
        )

    # Templates (R7)

    def _check_manage_subject(self, subject: dict[str, Any], context: dict[str, Any]) -> None:
        if type(subject) is dict and subject.get("type") == "practice":
            if subject.get("id") != context["practice_id"]:
                raise NotFound(
                    "Templates can be managed only for your own practice.", field="subject"
                )
            return
        contracts.check("subject", subject, _subject_error)

    def _manage_form(self, practice_id: str) -> dict[str, Any]:
        return {
            "action_id": MANAGE_ACTION_ID,
            "templates": [template_to_dict(t) for t in self.templates.list(practice_id)],
            "fields": list(composing.FIELDS),
            "modes": list(MODES),
        }

    def _manage(self, payload: dict[str, Any], practice_id: str) -> dict[str, Any]:
        contracts.check("template-request", payload, request_error)
        op = payload["op"]
        if op == "list":
            return {"templates": [template_to_dict(t) for t in self.templates.list(practice_id)]}
        fields = payload.get("template") or {}
        if op == "create":
            return {"template": template_to_dict(self.templates.create(practice_id, fields))}
        template_id = payload.get("template_id")
        if template_id is None:
            raise InvalidRequest(f"The {op!r} operation needs a template_id.", field="template_id")
        operations = {
            "get": lambda: self.templates.get(practice_id, template_id),
            "update": lambda: self.templates.update(practice_id, template_id, fields),
            "copy": lambda: self.templates.copy(practice_id, template_id, fields),
            "delete": lambda: self.templates.delete(practice_id, template_id),
        }
        return {"template": template_to_dict(operations[op]())}

    def _notify(self, result: dict[str, Any], context: dict[str, Any]) -> None:
        # Observers get a copy, so that one changing what it was given cannot change what staff
        # are shown.
        notify_observers(
            self.pm, "ondemand_notification_sent", {"result": dict(result), "context": context}
        )


def channels_by_mode(
    config: Config, channels: dict[str, Channel]
) -> dict[str, tuple[Channel, ...]]:
    """Each mode's channels in the configured order (failover order); the command line's
    ``recover`` routes the same way."""
    routes: dict[str, tuple[Channel, ...]] = {}
    for mode, names in config.channels.items():
        for name in names:
            channel = channels.get(name)
            if channel is None:
                raise ConfigError(
                    f"channels.{mode} names the channel {name!r}, but no plugin provides it "
                    f"(available: {', '.join(sorted(channels)) or 'none'}). Install its plugin "
                    f"or change the configuration.{_disabled_note(config)}",
                    field=f"channels.{mode}",
                )
            if mode not in channel.modes:
                raise ConfigError(
                    f"channels.{mode} names {name!r}, which cannot send {mode} messages "
                    f"(it sends: {', '.join(sorted(channel.modes))}).",
                    field=f"channels.{mode}",
                )
        routes[mode] = tuple(channels[name] for name in names)
    return routes


def _bind_channels(channels: dict[str, Channel], events: PluginEvents) -> None:
    """A channel whose provider is polled takes the events at start (``bind(events)``)."""
    for channel in channels.values():
        bind = getattr(channel, "bind", None)
        if callable(bind):
            bind(events)


def _disabled_note(config: Config) -> str:
    names = disabled_plugins(config.raw)
    if not names:
        return ""
    return (
        f" Switched off by ONDEMAND_DISABLE_PLUGINS or disabled_plugins: "
        f"{', '.join(sorted(names))}; if its plugin is one of them, enable it again."
    )


def _close_channels(routes: dict[str, tuple[Channel, ...]]) -> None:
    """A channel holding connections may have ``close()``; they go with the plugin."""
    for channel in {
        id(channel): channel for route in routes.values() for channel in route
    }.values():
        close = getattr(channel, "close", None)
        if callable(close):
            try:
                close()
            except Exception as error:
                log.warning("Channel %s did not close: %s", channel.name, type(error).__name__)


def _context_error(path: str, problem: str) -> InvalidRequest:
    return InvalidRequest(
        f"The host's context {path} {problem}: pass "
        "{'practice_id': ..., 'user': {'id': ..., 'name': ...}}.",
        field=f"context.{path}",
    )


def _subject_error(path: str, problem: str) -> InvalidRequest:
    return InvalidRequest(
        f"The subject {path} {problem}: pass {{'type': 'patient'|'guarantor', 'id': ...}}.",
        field=f"subject.{path}",
    )
