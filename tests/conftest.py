"""Helpers shared by the test modules. The fixtures ``ondemand_host`` and ``ondemand_pm`` come
from the plugin's own pytest plugin (``ondemand_plugin.testing``), loaded through ``pytest11``."""

from __future__ import annotations

from typing import Any

import pluggy
import pytest
from jsonschema.exceptions import best_match

from ondemand_plugin import SEND_ACTION_ID, contracts

# The demo practice's dashboard context, as a host passes it.
CONTEXT: dict[str, Any] = {"practice_id": "demo", "user": {"id": "u1", "name": "Amy Front"}}


def enable_addon(pm: pluggy.PluginManager, practice_id: str = "demo") -> None:
    """Switch the premium add-on on for ``practice_id`` through the manager's own instance."""
    pm.get_plugin("ondemand.instance").entitlement.switch(
        practice_id, True, "Test Account Manager", "tests"
    )


def assert_valid(schema_name: str, instance: object) -> None:
    """Fail, naming the field, unless ``instance`` follows ``contracts/<schema_name>.json``."""
    error = best_match(contracts.validator(schema_name).iter_errors(instance))
    if error is not None:
        path, problem = contracts.describe(error)
        pytest.fail(f"{schema_name}.json rejects the result: {path} {problem} ({error.message})")


def trace_sql(pm: pluggy.PluginManager) -> list[str]:
    """Every SQL statement the plugin's store runs from now on in this thread, as run.

    The store keeps one connection per thread; tracing it is how a test sees which queries a
    hook makes, with the bound values filled in (ready for EXPLAIN QUERY PLAN).
    """
    statements: list[str] = []
    store = pm.get_plugin("ondemand.instance").store
    store._connection().set_trace_callback(statements.append)
    return statements


def send_to_mei(
    pm: pluggy.PluginManager,
    *,
    context: dict[str, Any] = CONTEXT,
    mode: str = "text",
    body: str | None = "Your balance is {{BalanceDue}}: {{QuickPayLink}}",
    template_id: str | None = None,
) -> dict[str, Any]:
    """Send Mei Chen (guarantor of Lily) a notification from Lily's dashboard; check the result."""
    result: dict[str, Any] = pm.hook.pm_dashboard_action(
        action_id=SEND_ACTION_ID,
        step="submit",
        subject={"type": "patient", "id": "p-lily"},
        payload={
            "guarantor_id": "g-mei",
            "send_to": {"entity": {"type": "guarantor", "id": "g-mei"}, "mode": mode},
            "template_id": template_id,
            "body": body,
        },
        context=context,
    )
    assert_valid("send-result", result)
    return result
