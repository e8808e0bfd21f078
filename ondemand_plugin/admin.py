"""The account manager's tools: switch the premium add-on (R1) for a practice, see its state and
who switched it, when and why.

No hook switches the add-on: it is the account manager's business, not a dashboard's. A host (or
its admin page, or a test) calls these with the plugin manager that loaded the plugin::

    from ondemand_plugin.admin import addon_log, addon_state, switch_addon

    switch = switch_addon(pm, "pr1", enabled=True, by="Ann Manager", reason="Signed the plan")
    switch.changed        # False if it was on already: then nothing was recorded
    addon_state(pm, "pr1").enabled                        # True
    [(c.enabled, c.changed_by) for c in addon_log(pm, "pr1")]   # [(True, "Ann Manager")]

A switch takes effect at once in the manager that made it, and reaches the others on the same
database within ``REFRESH_SECONDS`` (they re-read the switch at most that often). The ``ondemand
addon`` command does the same on a database named on its command line.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import attrs
import pluggy

from ondemand_plugin.clock import format_timestamp, utc_now
from ondemand_plugin.commands.report import month_report
from ondemand_plugin.errors import InvalidRequest, PluginError
from ondemand_plugin.plugin import instance_of
from ondemand_plugin.rules.audit import audit_rows
from ondemand_plugin.rules.entitlement import REFRESH_SECONDS, Entitlement
from ondemand_plugin.rules.templates import TemplateManager
from ondemand_plugin.stores import AddonChange

__all__ = [
    "REFRESH_SECONDS",
    "AddonChange",
    "AddonState",
    "AddonSwitch",
    "addon_log",
    "addon_state",
    "audit",
    "change_to_dict",
    "log",
    "practice_report",
    "state",
    "switch",
    "switch_addon",
]


@attrs.frozen
class AddonState:
    """Whether a practice has the add-on, and the switch that made it so (None: never switched,
    so it is off)."""

    practice_id: str
    enabled: bool
    last_change: AddonChange | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "practice_id": self.practice_id,
            "enabled": self.enabled,
            "last_change": change_to_dict(self.last_change) if self.last_change else None,
        }


@attrs.frozen
class AddonSwitch:
    """What a switch did. ``record`` is the audit record it wrote; when ``changed`` is False the
    practice already had that state and nothing was written: ``record`` is then the switch that
    set it (None if the add-on was never switched). ``starter_templates``: the ids of the
    templates the first switch on gave the practice."""

    practice_id: str
    enabled: bool
    changed: bool
    record: AddonChange | None
    starter_templates: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "practice_id": self.practice_id,
            "enabled": self.enabled,
            "changed": self.changed,
            "record": change_to_dict(self.record) if self.record else None,
            "starter_templates": list(self.starter_templates),
        }


def switch_addon(
    plugin_manager: pluggy.PluginManager,
    practice_id: str,
    *,
    enabled: bool,
    by: str,
    reason: str | None = None,
) -> AddonSwitch:
    """Switch the add-on on or off for a practice, keeping who did it (``by``), when and why.

    Switching to the state the practice already has records nothing (``changed`` is False).
    An empty ``by`` is refused with ``invalid_request``. The first switch on gives a practice
    without templates the starter templates, one per mode, before the switch is recorded: a
    template store that fails then refuses the switch (``plugin_error``), and the next switch on
    adds the starters still missing.
    """
    plugin = instance_of(plugin_manager)
    return switch(
        plugin.entitlement,
        lambda: plugin.templates,
        practice_id,
        enabled=enabled,
        by=by,
        reason=reason,
    )


def addon_state(plugin_manager: pluggy.PluginManager, practice_id: str) -> AddonState:
    """The practice's add-on state as the database holds it now, with its last switch."""
    return state(_entitlement_of(plugin_manager), practice_id)


def addon_log(plugin_manager: pluggy.PluginManager, practice_id: str) -> list[AddonChange]:
    """Every switch of the add-on for the practice, oldest first."""
    return log(_entitlement_of(plugin_manager), practice_id)


def audit(
    plugin_manager: pluggy.PluginManager,
    practice_id: str,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[dict[str, Any]]:
    """Every send, add-on switch and consent change of the practice from ``start`` (inclusive)
    to ``end`` (exclusive), oldest first, addresses masked: what ``ondemand audit`` prints."""
    _check_practice_id(practice_id)
    return audit_rows(instance_of(plugin_manager).store, practice_id, start, end)


def practice_report(
    plugin_manager: pluggy.PluginManager, practice_id: str, month: str | None = None
) -> dict[str, Any]:
    """A month of the practice's notifications, from sent to paid, as ``ondemand report --json``
    prints it (``month`` as ``YYYY-MM`` in UTC; None: this month)."""
    _check_practice_id(practice_id)
    return month_report(instance_of(plugin_manager).store, practice_id, month, utc_now())


def change_to_dict(change: AddonChange) -> dict[str, Any]:
    """An audit record as JSON: its ``changed_at`` in RFC 3339 UTC."""
    return {
        "practice_id": change.practice_id,
        "enabled": change.enabled,
        "changed_by": change.changed_by,
        "reason": change.reason,
        "changed_at": format_timestamp(change.changed_at),
    }


# The same operations on an Entitlement: the command line has a database but no host.


def switch(
    entitlement: Entitlement,
    templates: Callable[[], TemplateManager],
    practice_id: str,
    *,
    enabled: bool,
    by: str,
    reason: str | None = None,
) -> AddonSwitch:
    """``templates`` is asked for only when the starters are to be added: the command line
    loads the plugins to choose the template store, and a switch that adds none needs no store."""
    _check_practice_id(practice_id)
    if type(enabled) is not bool:
        raise InvalidRequest(
            "enabled must be True (switch on) or False (switch off).", field="enabled"
        )
    if type(by) is not str or not by.strip():
        raise InvalidRequest(
            "Say who switches the add-on (by, or --by NAME on the command line): the audit "
            "trail needs a name.",
            field="by",
        )
    if reason is not None and type(reason) is not str:
        raise InvalidRequest("reason must be text, or None.", field="reason")
    changes = log(entitlement, practice_id)
    current = _state_of(practice_id, changes)
    if current.enabled == enabled:
        return AddonSwitch(practice_id, enabled, changed=False, record=current.last_change)
    first_time = enabled and not any(change.enabled for change in changes)
    # The starters before the switch: a practice whose add-on is on has had them, and a first
    # switch on cut short (a dying process, a failing store) is simply made again.
    starters = _add_starters(templates(), practice_id) if first_time else ()
    record = entitlement.switch(practice_id, enabled, by, reason)
    return AddonSwitch(
        practice_id, enabled, changed=True, record=record, starter_templates=starters
    )


def _add_starters(templates: TemplateManager, practice_id: str) -> tuple[str, ...]:
    try:
        return tuple(template.id for template in templates.add_starters(practice_id))
    except PluginError as error:
        raise PluginError(
            f"{error.message} The add-on was not switched on for practice {practice_id}: "
            "switch it on again once the template store works.",
            field=error.field,
        ) from error


def state(entitlement: Entitlement, practice_id: str) -> AddonState:
    # The log, not the cache: another manager may have switched it since the last refresh.
    return _state_of(practice_id, log(entitlement, practice_id))


def _state_of(practice_id: str, changes: list[AddonChange]) -> AddonState:
    last = changes[-1] if changes else None
    return AddonState(practice_id, enabled=last is not None and last.enabled, last_change=last)


def log(entitlement: Entitlement, practice_id: str) -> list[AddonChange]:
    _check_practice_id(practice_id)
    return entitlement.log(practice_id)


def _check_practice_id(practice_id: object) -> None:
    if type(practice_id) is not str or not practice_id.strip():
        raise InvalidRequest("practice_id must be the practice's id.", field="practice_id")


def _entitlement_of(plugin_manager: pluggy.PluginManager) -> Entitlement:
    return instance_of(plugin_manager).entitlement
