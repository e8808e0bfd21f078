"""The account manager's switch of the premium add-on, through the plugin's public
``ondemand_plugin.admin``.

No hook switches the add-on: it is the account manager's business, not a dashboard's. The page
calls ``switch_addon`` and ``addon_log`` with the host's own plugin manager, as a host's admin
page would, so the switch takes effect at once here and reaches other workers within seconds.
"""

from __future__ import annotations

from typing import Any

import pluggy

import ondemand_plugin.admin as admin
from ondemand_plugin.errors import OnDemandError


class SwitchRefused(Exception):
    """The plugin refused the switch; the message is its sentence."""


def switch_addon(
    pm: pluggy.PluginManager, practice_id: str, enabled: bool, by: str, reason: str
) -> dict[str, Any]:
    """Switch the add-on; returns what was done (``AddonSwitch.to_dict()``), which the page
    says in the practice's time zone."""
    try:
        done = admin.switch_addon(pm, practice_id, enabled=enabled, by=by, reason=reason)
    except OnDemandError as error:
        raise SwitchRefused(error.message) from error
    return done.to_dict()


def report(pm: pluggy.PluginManager, practice_id: str, month: str | None) -> dict[str, Any]:
    """The month's figures that ``ondemand report`` prints, for the account page."""
    try:
        return admin.practice_report(pm, practice_id, month)
    except OnDemandError as error:
        raise SwitchRefused(error.message) from error


def addon_log(pm: pluggy.PluginManager, practice_id: str) -> list[dict[str, Any]]:
    """Every switch of the add-on for the practice, newest first."""
    try:
        changes = admin.addon_log(pm, practice_id)
    except OnDemandError as error:
        raise SwitchRefused(error.message) from error
    return [admin.change_to_dict(change) for change in reversed(changes)]


def audit(pm: pluggy.PluginManager, practice_id: str) -> list[dict[str, Any]]:
    """Every send, add-on switch and consent change of the practice, oldest first."""
    return admin.audit(pm, practice_id)
