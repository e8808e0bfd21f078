"""Bad input at the boundary: whatever a host or a hostile payload sends, the answer is an
``OnDemandError`` with a stable code, and nothing is written or sent."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pluggy
import pytest
from conftest import CONTEXT, assert_valid, enable_addon
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hookspecs import hookimpl
from ondemand_plugin.boundary import contracts
from ondemand_plugin.errors import OnDemandError
from ondemand_plugin.testing import ReferenceHost, build_plugin_manager, config_of, store_of
from ondemand_plugin.testing.pytest_plugin import ondemand_test_config

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
    store = store_of(pm)
    rows = (
        store.backend.sqlite_connection()
        .execute("SELECT count(*) FROM notifications")
        .fetchone()[0]
    )
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
    store = store_of(entitled_pm)
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
        assert store.list_templates("demo") == []
    else:
        saved = store.list_templates("demo")
        assert len(saved) == 1
        store.delete_template("demo", saved[0].id)


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


# Hostile text in every text field, hostile contexts, hostile host answers, hostile configuration
# and every contract. A refusal carries a known code and a short sentence (a hostile value is
# never echoed at length) and writes and sends nothing; what is accepted is kept as plain data.

REFUSAL_CODES = KNOWN_CODES | {"host_error", "quickpay_unavailable"}
HOSTILE_STRINGS = st.sampled_from(
    [
        "' OR '1'='1",
        "'); DELETE FROM notifications; --",
        '" UNION SELECT * FROM addon_state --',
        "<img src=x onerror=alert(1)>",
        "</textarea><script>document.location='https://evil.example'</script>",
        "javascript:alert(1)",
        "\x00",
        "\r\nBcc: victim@example.com",
        "\u202egnp.exe",
        "\ud7ff\U0001f4a9" * 50,
        "%s%n%x",
        "{{QuickPayLink}}{{QuickPayLink}}",
        "$(rm -rf /)",
        "x" * 1_000_000,
        " ",
    ]
)
HOSTILE = HOSTILE_STRINGS | HOSTILE_TEXT | st.text(max_size=50) | JSON_VALUES
# Paths of every text field of a submit; the subject line only counts for e-mail.
SUBMIT_TEXT_FIELDS = [
    ("guarantor_id",),
    ("send_to", "entity", "type"),
    ("send_to", "entity", "id"),
    ("send_to", "mode"),
    ("send_to", "address"),
    ("template_id",),
    ("subject",),
    ("body",),
    ("idempotency_key",),
]
EMAIL_SUBMIT: dict[str, Any] = {
    **VALID_SUBMIT,
    "send_to": {"entity": {"type": "guarantor", "id": "g-mei"}, "mode": "email"},
    "subject": "Your balance",
}


def _replaced(document: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    inner = changed
    for key in path[:-1]:
        inner = inner[key]
    inner[path[-1]] = value
    return changed


def _assert_refusal(error: OnDemandError) -> None:
    assert error.code in REFUSAL_CODES, error.code
    assert 0 < len(error.message) < 600 and error.message.endswith((".", ")", "!"))


def _submit(pm: pluggy.PluginManager, payload: Any, context: Any = CONTEXT) -> Any:
    return pm.hook.pm_dashboard_action(
        action_id=SEND, step="submit", subject=PATIENT, payload=payload, context=context
    )


def _outbox(host: ReferenceHost) -> Path:
    return Path(host.plugin_config["outbox_dir"])  # type: ignore[index]


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    base=st.sampled_from([VALID_SUBMIT, EMAIL_SUBMIT]),
    path=st.sampled_from(SUBMIT_TEXT_FIELDS),
    value=HOSTILE,
)
def test_hostile_text_in_any_submit_field_is_refused_or_sent_as_plain_data(
    entitled_pm: pluggy.PluginManager,
    ondemand_host: ReferenceHost,
    base: dict[str, Any],
    path: tuple[str, ...],
    value: Any,
) -> None:
    before = _written(entitled_pm, _outbox(ondemand_host))
    try:
        result = _submit(entitled_pm, _replaced(base, path, value))
    except OnDemandError as error:
        _assert_refusal(error)
        assert _written(entitled_pm, _outbox(ondemand_host)) == before
        assert ondemand_host.calls_to("pm_update_contact") == []
    else:
        assert result["status"] == "sent"
        assert_valid("send-result", result)
        rows, files = before
        assert _written(entitled_pm, _outbox(ondemand_host)) == (rows + 1, files + 1)


def _hostile_context() -> st.SearchStrategy[Any]:
    paths = st.sampled_from([("practice_id",), ("user",), ("user", "id"), ("user", "name")])
    return JSON_VALUES | st.tuples(paths, HOSTILE).map(
        lambda change: _replaced(CONTEXT, change[0], change[1])
    )


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(context=_hostile_context())
def test_a_hostile_context_is_refused_by_every_hook_and_nothing_is_written(
    entitled_pm: pluggy.PluginManager, ondemand_host: ReferenceHost, context: Any
) -> None:
    store = store_of(entitled_pm)
    before = _written(entitled_pm, _outbox(ondemand_host))
    calls: list[Callable[[], Any]] = [
        lambda: entitled_pm.hook.pm_dashboard_actions(
            dashboard="patient", subject=PATIENT, context=context
        ),
        lambda: entitled_pm.hook.pm_dashboard_action(
            action_id=SEND, step="open", subject=PATIENT, payload={}, context=context
        ),
        lambda: entitled_pm.hook.pm_dashboard_action(
            action_id=MANAGE,
            step="submit",
            subject=PATIENT,
            payload={"op": "create", "template": {"label": "L", "mode": "text", "body": "Hi"}},
            context=context,
        ),
        lambda: entitled_pm.hook.pm_history_entries(
            guarantor_id="g-mei", context=context, before=None, limit=10
        ),
        lambda: _submit(entitled_pm, VALID_SUBMIT, context),
    ]
    accepted = []
    for call in calls:
        try:
            accepted.append(call())
        except OnDemandError as error:
            _assert_refusal(error)
    if len(accepted) < len(calls):
        assert _written(entitled_pm, _outbox(ondemand_host)) == before
        assert store.list_templates("demo") == []
    # A context that passes is a well-formed one: its user is kept as typed, as data.
    for template in store.list_templates("demo"):
        store.delete_template("demo", template.id)


class HostileHost:
    """Answers one platform hook in place of the host, with its answer changed."""

    def __init__(self, host: ReferenceHost) -> None:
        self.host = host
        self.hook = ""
        self.change: Callable[[Any], Any] = lambda answer: answer

    def _answer(self, hook: str, **kwargs: Any) -> Any:
        answer = getattr(self.host, hook)(**kwargs)
        return self.change(answer) if hook == self.hook else answer

    @hookimpl(tryfirst=True)
    def pm_practice(self, practice_id: str) -> Any:
        return self._answer("pm_practice", practice_id=practice_id)

    @hookimpl(tryfirst=True)
    def pm_patient(self, practice_id: str, patient_id: str) -> Any:
        return self._answer("pm_patient", practice_id=practice_id, patient_id=patient_id)

    @hookimpl(tryfirst=True)
    def pm_guarantor(self, practice_id: str, guarantor_id: str) -> Any:
        return self._answer("pm_guarantor", practice_id=practice_id, guarantor_id=guarantor_id)

    @hookimpl(tryfirst=True)
    def pm_quickpay_link(self, practice_id: str, guarantor_id: str, amount: Any) -> Any:
        return self._answer(
            "pm_quickpay_link", practice_id=practice_id, guarantor_id=guarantor_id, amount=amount
        )


@pytest.fixture
def hostile_host(entitled_pm: pluggy.PluginManager, ondemand_host: ReferenceHost) -> HostileHost:
    hostile = HostileHost(ondemand_host)
    entitled_pm.register(hostile, name="hostile-host")
    return hostile


def _changed_field(change: tuple[str, Any, bool]) -> Callable[[Any], Any]:
    field, value, drop = change

    def apply(answer: Any) -> Any:
        if type(answer) is not dict:
            return value
        if drop:
            return {key: item for key, item in answer.items() if key != field}
        return {**answer, field: value}

    return apply


ANSWER_FIELDS = st.sampled_from(
    [
        "id",
        "name",
        "phone",
        "timezone",
        "sender_email",
        "text_from",
        "first_name",
        "last_name",
        "guarantor_ids",
        "patient_ids",
        "contacts",
        "pops_balance",
        "dunning_count",
        "batched_statement_count",
        "opt_out",
        "unexpected",
    ]
)
BALANCES = (
    st.decimals(allow_nan=True, allow_infinity=True).map(str)
    | st.sampled_from(["-1e9", "1e9", "999999999999.99", "-999999999.99", "0.001", "-0"])
    | st.sampled_from(["NaN", "Infinity", "1_000.00", " 12.00", "12,00", "١٢٣", "+5.00", ""])
    | st.integers()
    | st.floats()
)


@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    hook=st.sampled_from(["pm_practice", "pm_patient", "pm_guarantor", "pm_quickpay_link"]),
    change=st.tuples(ANSWER_FIELDS, HOSTILE | BALANCES, st.booleans()),
    mode=st.sampled_from(["text", "email"]),
)
def test_hostile_host_answers_are_refused_with_a_code_and_nothing_is_written(
    entitled_pm: pluggy.PluginManager,
    ondemand_host: ReferenceHost,
    hostile_host: HostileHost,
    hook: str,
    change: tuple[str, Any, bool],
    mode: str,
) -> None:
    hostile_host.hook, hostile_host.change = hook, _changed_field(change)
    payload = EMAIL_SUBMIT if mode == "email" else VALID_SUBMIT
    payload = {**payload, "body": "{{BalanceDue}} {{GuarantorFullName}} {{QuickPayLink}}"}
    before = _written(entitled_pm, _outbox(ondemand_host))
    for call in (
        lambda: entitled_pm.hook.pm_dashboard_actions(
            dashboard="patient", subject=PATIENT, context=CONTEXT
        ),
        lambda: entitled_pm.hook.pm_dashboard_action(
            action_id=SEND, step="open", subject=PATIENT, payload={}, context=CONTEXT
        ),
    ):
        try:
            call()
        except OnDemandError as error:
            _assert_refusal(error)
    try:
        result = _submit(entitled_pm, payload)
    except OnDemandError as error:
        _assert_refusal(error)
        assert _written(entitled_pm, _outbox(ondemand_host)) == before
    else:
        assert result["status"] == "sent"
        assert_valid("send-result", result)
    assert ondemand_host.calls_to("pm_update_contact") == []


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(balance=BALANCES)
def test_absurd_balances_are_host_errors_or_shown_as_money(
    entitled_pm: pluggy.PluginManager,
    ondemand_host: ReferenceHost,
    hostile_host: HostileHost,
    balance: Any,
) -> None:
    hostile_host.hook = "pm_guarantor"
    hostile_host.change = _changed_field(("pops_balance", balance, False))
    before = _written(entitled_pm, _outbox(ondemand_host))
    try:
        result = _submit(entitled_pm, {**EMAIL_SUBMIT, "body": "{{BalanceDue}} {{QuickPayLink}}"})
    except OnDemandError as error:
        assert error.code == "host_error"
        assert "pops_balance" in error.message
        assert _written(entitled_pm, _outbox(ondemand_host)) == before
    else:
        # Shown to the cent, a negative zero as zero.
        assert Decimal(result["balance"]) == Decimal(balance)
        assert re.fullmatch(r"-?[0-9]+\.[0-9]{2}", result["balance"])
        assert result["balance"] != "-0.00"
        assert_valid("send-result", result)
        assert result["payment_allowed"] is (Decimal(balance) > 0)


CONFIG_KEYS = st.sampled_from(
    ["channels", "outbox_dir", "send_window", "deadline_seconds", "outbox", "x" * 300, "\x00"]
)
CONFIG_VALUES = (
    HOSTILE
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(
        [
            {"text": "nowhere"},
            {"text": []},
            {"fax": "outbox"},
            {"start": "25:00", "end": "26:00"},
            {"start": "09:00", "end": "08:00"},
            {"start": "00:00", "end": "24:00", "extra": 1},
        ]
    )
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(change=st.tuples(CONFIG_KEYS, CONFIG_VALUES))
@example(change=("deadline_seconds", float("nan")))
def test_a_hostile_plugin_configuration_is_invalid_config_and_opens_nothing(
    tmp_path_factory: pytest.TempPathFactory, change: tuple[str, Any]
) -> None:
    directory = tmp_path_factory.mktemp("config")
    settings_ = {**ondemand_test_config(directory), change[0]: change[1]}
    try:
        pm = build_plugin_manager(ReferenceHost(settings_))
    except OnDemandError as error:
        assert error.code == "invalid_config"
        assert len(error.message) < 600
        assert not (directory / "ondemand.db").exists()
    else:
        config = config_of(pm)
        assert 0 < config.deadline_seconds <= 300
        pm.hook.pm_unconfigure(plugin_manager=pm)


class ContractError(Exception):
    def __init__(self, path: str, problem: str) -> None:
        super().__init__(path, problem)
        self.path, self.problem = path, problem


def _instances(name: str) -> st.SearchStrategy[Any]:
    """Random values, and objects made of the schema's own field names with hostile values."""
    properties = sorted(contracts.schema(name).get("properties", {})) or ["id"]
    return JSON_VALUES | st.dictionaries(
        st.sampled_from(properties) | st.text(max_size=5), HOSTILE | JSON_VALUES, max_size=6
    )


@pytest.mark.parametrize("name", contracts.schema_names())
def test_every_contract_refuses_hostile_instances_naming_the_field(name: str) -> None:
    @settings(max_examples=60, deadline=None)
    @given(instance=_instances(name))
    def check(instance: Any) -> None:
        valid = contracts.validator(name).is_valid(instance)
        try:
            contracts.check(name, instance, ContractError)
        except ContractError as error:
            assert not valid
            assert error.path and error.problem and len(error.problem) < 300
        else:
            assert valid

    check()


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(dashboard=st.sampled_from(["patient", "guarantor"]), subject_id=HOSTILE_STRINGS | HOSTILE)
def test_hostile_subject_ids_are_refused_briefly_by_every_dashboard_hook(
    entitled_pm: pluggy.PluginManager, ondemand_host: ReferenceHost, dashboard: str, subject_id: Any
) -> None:
    subject = {"type": dashboard, "id": subject_id}
    for call in (
        lambda: entitled_pm.hook.pm_dashboard_actions(
            dashboard=dashboard, subject=subject, context=CONTEXT
        ),
        lambda: entitled_pm.hook.pm_dashboard_action(
            action_id=SEND, step="open", subject=subject, payload={}, context=CONTEXT
        ),
        lambda: entitled_pm.hook.pm_history_entries(
            guarantor_id=subject_id, context=CONTEXT, before=None, limit=10
        ),
    ):
        try:
            answer = call()
        except OnDemandError as error:
            _assert_refusal(error)
        else:
            assert answer in (None, [[]])
    assert _written(entitled_pm, _outbox(ondemand_host)) == (0, 0)
