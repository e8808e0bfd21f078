"""Staff record what a recipient asked for in person or on the phone (``ondemand.opt_outs``):
honoured at once, told to the host, kept in the consent ledger with who and when. Bad input is
refused with a stable code and nothing is kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pluggy
import pytest
from conftest import CONTEXT, assert_valid, host_on, send_to_mei

from ondemand_plugin import OPT_OUTS_ACTION_ID
from ondemand_plugin.commands.reference_host import ReferenceHost
from ondemand_plugin.errors import OnDemandError
from ondemand_plugin.testing import enable_addon, store_of

MEI = "+15035550123"


@pytest.fixture
def ondemand_host(database_url: str, tmp_path: Path) -> ReferenceHost:
    """The demo host, with the plugin on each backend in turn: the ledger is kept on each."""
    return host_on(database_url, tmp_path)


def record(pm: pluggy.PluginManager, payload: Any, step: str = "submit") -> dict[str, Any]:
    result: dict[str, Any] = pm.hook.pm_dashboard_action(
        action_id=OPT_OUTS_ACTION_ID,
        step=step,
        subject={"type": "guarantor", "id": "g-mei"},
        payload=payload,
        context=CONTEXT,
    )
    return result


def test_an_opt_out_staff_record_is_honoured_at_once_and_kept_with_who_and_when(
    ondemand_pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    pm = ondemand_pm
    enable_addon(pm, "demo")
    result = record(
        pm,
        {"op": "opt_out", "mode": "text", "address": "(503) 555-0123", "note": "Asked at desk"},
    )
    assert_valid("opt-out-result", result)
    assert (result["address"], result["opted_out"], result["changed_by"]) == (
        MEI,
        True,
        "Amy Front",
    )
    with pytest.raises(OnDemandError) as refused:
        send_to_mei(pm)
    assert refused.value.code == "opted_out"
    [told] = ondemand_host.calls_to("pm_set_opt_out")
    assert (told["mode"], told["opted_out"], told["context"]["source"]) == ("text", True, "staff")
    [kept] = store_of(pm).consent_changes("demo", None, None)
    assert (kept.source, kept.actor, kept.words) == ("staff", "Amy Front (u1)", "Asked at desk")

    record(pm, {"op": "opt_in", "mode": "text", "address": MEI})
    assert send_to_mei(pm)["status"] == "sent"
    assert len(store_of(pm).consent_changes("demo", None, None)) == 2


@pytest.mark.parametrize(
    ("payload", "code", "field"),
    [
        ({"op": "maybe", "mode": "text", "address": MEI}, "invalid_request", "op"),
        ({"op": "opt_out", "mode": "fax", "address": MEI}, "invalid_request", "mode"),
        ({"op": "opt_out", "mode": "text"}, "invalid_request", None),
        ({"op": "opt_out", "mode": "text", "address": "555"}, "invalid_address", None),
        ({"op": "opt_out", "mode": "email", "address": "mei@"}, "invalid_address", None),
        ({"op": "opt_out", "mode": "text", "address": MEI, "extra": 1}, "invalid_request", None),
    ],
)
def test_a_bad_record_is_refused_and_nothing_is_kept(
    ondemand_pm: pluggy.PluginManager,
    ondemand_host: ReferenceHost,
    payload: dict[str, Any],
    code: str,
    field: str | None,
) -> None:
    with pytest.raises(OnDemandError) as refused:
        record(ondemand_pm, payload)
    assert refused.value.code == code
    if field is not None:
        assert refused.value.field == field
    assert ondemand_host.calls_to("pm_set_opt_out") == []
    assert store_of(ondemand_pm).consent_changes("demo", None, None) == []


def test_the_action_has_only_a_submit_step(ondemand_pm: pluggy.PluginManager) -> None:
    with pytest.raises(OnDemandError) as refused:
        record(ondemand_pm, {}, step="open")
    assert (refused.value.code, refused.value.field) == ("invalid_request", "step")
