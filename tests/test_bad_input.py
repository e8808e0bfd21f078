"""Bad input at the boundary: whatever a host or a hostile payload sends, the answer is an
``OnDemandError`` with a stable code, and nothing is written or sent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pluggy
import pytest
from conftest import CONTEXT, enable_addon
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ondemand_plugin.errors import OnDemandError
from ondemand_plugin.testing import ReferenceHost

SEND = "ondemand.send_balance_notification"
MANAGE = "ondemand.manage_templates"
PATIENT = {"type": "patient", "id": "p-lily"}
KNOWN_CODES = {
    "invalid_request",
    "not_found",
    "not_entitled",
    "no_batched_statement",
    "guarantor_not_eligible",
    "no_contact",
    "invalid_address",
    "opted_out",
    "template_not_found",
    "template_mode_mismatch",
    "unknown_field",
    "sender_not_configured",
    "outside_send_window",
    "idempotency_conflict",
}
HOSTILE_TEXT = st.sampled_from(
    [
        "",
        "x" * 100_000,
        "'; DROP TABLE notifications; --",
        "<script>alert(1)</script>",
        "\x00\x07\x1b[31m",
        "{{Nope}}",
        "g-mei\n",
        "-1e9",
        "NaN",
    ]
)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True)
    | st.text(max_size=30)
    | HOSTILE_TEXT,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=8,
)
VALID_SUBMIT: dict[str, Any] = {
    "guarantor_id": "g-mei",
    "send_to": {"entity": {"type": "guarantor", "id": "g-mei"}, "mode": "text"},
    "body": "Your balance is {{BalanceDue}}",
}


def _written(pm: pluggy.PluginManager, outbox: Path) -> tuple[int, int]:
    store = pm.get_plugin("ondemand.instance").store
    rows = store._connection().execute("SELECT count(*) FROM notifications").fetchone()[0]
    return rows, len(list(outbox.rglob("*.json")))


@pytest.fixture
def entitled_pm(ondemand_pm: pluggy.PluginManager) -> pluggy.PluginManager:
    enable_addon(ondemand_pm)
    return ondemand_pm


def _mutations() -> st.SearchStrategy[dict[str, Any]]:
    """A valid submit with one key replaced, dropped, or joined by a stray one."""
    keys = st.sampled_from(["guarantor_id", "send_to", "body", "template_id", "subject", "x"])
    return st.tuples(keys, JSON_VALUES, st.booleans()).map(
        lambda change: (
            {k: v for k, v in VALID_SUBMIT.items() if k != change[0]}
            if change[2]
            else {**VALID_SUBMIT, change[0]: change[1]}
        )
    )


def _send_to_mutations() -> st.SearchStrategy[dict[str, Any]]:
    fields = st.fixed_dictionaries(
        {},
        optional={
            "entity": JSON_VALUES | st.just({"type": "guarantor", "id": "g-mei"}),
            "mode": JSON_VALUES | st.sampled_from(["text", "email", "voice", "fax"]),
            "address": JSON_VALUES | HOSTILE_TEXT,
            "save_contact": JSON_VALUES,
        },
    )
    return fields.map(lambda send_to: {**VALID_SUBMIT, "send_to": send_to})


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(payload=_mutations() | _send_to_mutations() | JSON_VALUES)
def test_a_malformed_submit_is_refused_with_a_code_and_writes_nothing(
    entitled_pm: pluggy.PluginManager, ondemand_host: ReferenceHost, payload: Any
) -> None:
    outbox = Path(ondemand_host.plugin_config["outbox_dir"])  # type: ignore[index]
    before = _written(entitled_pm, outbox)
    try:
        result = entitled_pm.hook.pm_dashboard_action(
            action_id=SEND, step="submit", subject=PATIENT, payload=payload, context=CONTEXT
        )
    except OnDemandError as error:
        assert error.code in KNOWN_CODES
        assert error.message.endswith((".", "!", ")")) and len(error.message) < 600
        assert _written(entitled_pm, outbox) == before
    else:
        # Some mutations are still valid requests (an optional key dropped, say).
        assert result["status"] == "sent"


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    dashboard=JSON_VALUES | st.sampled_from(["patient", "guarantor"]),
    subject=JSON_VALUES | st.just(PATIENT),
    context=JSON_VALUES | st.just(CONTEXT),
)
def test_malformed_dashboard_calls_are_refused_with_a_code(
    entitled_pm: pluggy.PluginManager, dashboard: Any, subject: Any, context: Any
) -> None:
    try:
        entitled_pm.hook.pm_dashboard_actions(dashboard=dashboard, subject=subject, context=context)
    except OnDemandError as error:
        assert error.code in KNOWN_CODES
    for action_id in (SEND, MANAGE):
        for step in ("open", "submit", dashboard):
            try:
                entitled_pm.hook.pm_dashboard_action(
                    action_id=action_id, step=step, subject=subject, payload={}, context=context
                )
            except OnDemandError as error:
                assert error.code in KNOWN_CODES


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(template=JSON_VALUES, op=JSON_VALUES | st.sampled_from(["create", "update", "copy"]))
def test_a_malformed_template_is_refused_and_not_saved(
    entitled_pm: pluggy.PluginManager, template: Any, op: Any
) -> None:
    instance = entitled_pm.get_plugin("ondemand.instance")
    try:
        entitled_pm.hook.pm_dashboard_action(
            action_id=MANAGE,
            step="submit",
            subject={"type": "practice", "id": "demo"},
            payload={"op": op, "template": template, "template_id": "tpl_missing"},
            context=CONTEXT,
        )
    except OnDemandError as error:
        assert error.code in KNOWN_CODES
        assert instance.templates.list("demo") == []
    else:
        saved = instance.templates.list("demo")
        assert len(saved) == 1
        instance.templates.delete("demo", saved[0].id)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(before=JSON_VALUES | HOSTILE_TEXT, limit=JSON_VALUES)
def test_malformed_history_requests_are_refused_with_a_code(
    entitled_pm: pluggy.PluginManager, before: Any, limit: Any
) -> None:
    try:
        pages = entitled_pm.hook.pm_history_entries(
            guarantor_id="g-mei", context=CONTEXT, before=before, limit=limit
        )
    except OnDemandError as error:
        assert error.code in KNOWN_CODES
    else:
        assert pages == [[]]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("pops_balance", "1e9"),
        ("pops_balance", "-0.001"),
        ("pops_balance", 120.5),
        ("pops_balance", "9999999999.00"),
        ("batched_statement_count", -1),
        ("batched_statement_count", "2"),
        ("contacts", [{"kind": "pager", "value": "123"}]),
        ("first_name", "Mei\x00"),
        ("opt_out", {"fax": True}),
    ],
)
def test_a_host_answer_that_breaks_the_contract_is_a_host_error_naming_the_field(
    entitled_pm: pluggy.PluginManager, ondemand_host: ReferenceHost, field: str, value: Any
) -> None:
    ondemand_host.guarantors["demo"]["g-mei"][field] = value
    with pytest.raises(OnDemandError) as refused:
        entitled_pm.hook.pm_dashboard_action(
            action_id=SEND, step="open", subject=PATIENT, payload={}, context=CONTEXT
        )
    assert refused.value.code == "host_error"
    assert "pm_guarantor" in refused.value.message
    assert "host" in refused.value.message
