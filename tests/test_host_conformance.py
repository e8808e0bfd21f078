"""The reference host and the sandbox's adapter pass the host conformance suite; a host that
breaks the contract fails it, and the failure names the hook and the field at fault."""

from __future__ import annotations

import copy
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hookspecs import hookimpl
from ondemand_plugin import testing
from ondemand_plugin.testing import HostConformance, ReferenceHost, demo_host
from ondemand_sandbox import seed
from ondemand_sandbox.adapter import SandboxHost

DEMO_PATIENTS = ("p-lily", "p-noah", "p-ruth")


class TestReferenceHost(HostConformance):
    practice_id = "demo"
    patient_ids = DEMO_PATIENTS

    def make_host(self) -> object:
        return demo_host()


class TestSandboxAdapter(HostConformance):
    practice_id = seed.PRACTICE_ID

    @pytest.fixture(autouse=True)
    def _home(self, tmp_path: Path) -> None:
        self.home = tmp_path / "sandbox"
        self.home.mkdir()
        database = seed.open_database(self.home / "sandbox.db", datetime.now(UTC))
        database.add_later_tables()
        self.database = database
        self.patient_ids = [patient["id"] for patient in database.patients(self.practice_id)]

    def make_host(self) -> object:
        return SandboxHost(self.database, self.home, "http://127.0.0.1:8000")


class Broken(ReferenceHost):
    """The demo host with one record changed after the data was built."""

    def __init__(self) -> None:
        demo = demo_host()
        super().__init__(demo.plugin_config)
        self.practices, self.patients, self.guarantors = (
            copy.deepcopy(demo.practices),
            copy.deepcopy(demo.patients),
            copy.deepcopy(demo.guarantors),
        )


class GuarantorWithoutItsPatient(Broken):
    def __init__(self) -> None:
        super().__init__()
        self.guarantors["demo"]["g-tom"]["patient_ids"] = []


class PatientNamingAMissingGuarantor(Broken):
    def __init__(self) -> None:
        super().__init__()
        self.patients["demo"]["p-noah"]["guarantor_ids"].append("g-gone")


class BalanceAsANumber(Broken):
    def __init__(self) -> None:
        super().__init__()
        self.guarantors["demo"]["g-mei"]["pops_balance"] = 120.5


class MisspelledContactKind(Broken):
    def __init__(self) -> None:
        super().__init__()
        self.patients["demo"]["p-ruth"]["contacts"] = [{"kind": "cell", "value": "+15035550188"}]


class EmptyAnswerForUnknown(Broken):
    @hookimpl
    def pm_guarantor(self, practice_id: str, guarantor_id: str) -> dict[str, Any] | None:
        return super().pm_guarantor(practice_id, guarantor_id) or {}


class AnswersEveryPractice(Broken):
    """Looks patients up by id alone, whatever the practice."""

    @hookimpl
    def pm_patient(self, practice_id: str, patient_id: str) -> dict[str, Any] | None:
        return super().pm_patient("demo", patient_id)


class NotAZone(Broken):
    def __init__(self) -> None:
        super().__init__()
        self.practices["demo"]["timezone"] = "Pacific Time"


class ForgetsOptOuts(Broken):
    @hookimpl
    def pm_set_opt_out(
        self, practice_id: str, mode: str, address: str, opted_out: bool, context: dict[str, Any]
    ) -> bool:
        return True


class MisspelledHook(Broken):
    @hookimpl
    def pm_guarantors(self, practice_id: str) -> list[str]:
        return []


BROKEN = [
    (
        GuarantorWithoutItsPatient,
        "test_a_patients_guarantors_name_the_patient_back",
        "pm_guarantor(practice_id='demo', guarantor_id='g-tom'): patient_ids lacks 'p-lily'",
    ),
    (
        PatientNamingAMissingGuarantor,
        "test_a_patients_guarantors_name_the_patient_back",
        "pm_patient(practice_id='demo', patient_id='p-noah'): guarantor_ids names 'g-gone', "
        "but pm_guarantor answers None",
    ),
    (
        BalanceAsANumber,
        "test_each_guarantor_follows_its_schema",
        "pm_guarantor(practice_id='demo', guarantor_id='g-mei'): pops_balance must be of type "
        "string",
    ),
    (
        MisspelledContactKind,
        "test_each_patient_follows_its_schema",
        "pm_patient(practice_id='demo', patient_id='p-ruth'): contacts.0.kind must be one of",
    ),
    (
        EmptyAnswerForUnknown,
        "test_unknown_ids_are_answered_with_none",
        "pm_guarantor(practice_id='demo', guarantor_id='conformance-unknown-0'): an unknown id "
        "must be answered with None, not dict",
    ),
    (
        AnswersEveryPractice,
        "test_unknown_ids_are_answered_with_none",
        "pm_patient(practice_id='conformance-unknown-0', patient_id='p-lily'): an unknown id",
    ),
    (
        NotAZone,
        "test_the_practice_follows_its_schema",
        "pm_practice(practice_id='demo'): timezone must be an IANA time zone name",
    ),
    (
        ForgetsOptOuts,
        "test_an_opt_out_shows_in_the_next_answer_and_so_does_its_end",
        "pm_guarantor(practice_id='demo', guarantor_id='g-mei'): opt_out.text is False after "
        "pm_set_opt_out(opted_out=True)",
    ),
    (MisspelledHook, "test_the_adapter_implements_only_declared_hooks", "pm_guarantors"),
]


class _BrokenSuite(HostConformance):
    practice_id = "demo"
    patient_ids = DEMO_PATIENTS
    host_class: type[ReferenceHost] = ReferenceHost

    def make_host(self) -> object:
        return self.host_class()


@pytest.mark.parametrize(("host_class", "check", "message"), BROKEN)
def test_a_broken_host_fails_naming_the_hook_and_the_field(
    host_class: type[ReferenceHost], check: str, message: str
) -> None:
    suite = _BrokenSuite()
    suite.host_class = host_class
    with pytest.raises((AssertionError, pytest.fail.Exception)) as failure:
        getattr(suite, check)(suite.host_calls())
    assert message in str(failure.value)
    # The same check passes the host it was broken from.
    suite.host_class = Broken
    getattr(suite, check)(suite.host_calls())


def test_the_suites_are_exported_from_the_kit_without_pytest_at_run_time() -> None:
    code = (
        "import sys, ondemand_plugin.testing as kit\n"
        "assert 'pytest' not in sys.modules, 'importing the kit imported pytest'\n"
        "assert kit.HostConformance.__module__ == 'ondemand_plugin.testing.host_conformance'\n"
        "assert kit.TemplateStoreConformance.__name__ == 'TemplateStoreConformance'\n"
        "assert kit.ChannelConformance.__name__ == 'ChannelConformance'\n"
    )
    finished = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr
    assert set(testing.__all__) >= {"HostConformance", "TemplateStoreConformance"}
