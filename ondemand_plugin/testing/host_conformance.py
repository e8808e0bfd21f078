"""The host conformance suite: does a host's adapter answer the platform hooks as the plugin needs?

A host team subclasses ``HostConformance`` in a test module, says how to make its adapter (the
plugin that answers the ``pm_*`` hooks) over test data, and names a practice and some of its
patients and guarantors; pytest runs every check below against it::

    class TestOurAdapter(HostConformance):
        practice_id = "pr1"
        patient_ids = ("p1", "p2")
        guarantor_ids = ("g7",)  # more guarantors; the patients' own are checked anyway

        def make_host(self):
            return OurAdapter(test_database())

Checked, each answer through pluggy as the plugin would ask it: ``pm_practice``,
``pm_patient`` and ``pm_guarantor`` answers follow ``contracts/`` and carry the id asked
for; the links between patients and guarantors agree both ways (a patient's ``guarantor_ids``
are guarantors whose ``patient_ids`` include the patient, and the other way round); unknown ids,
and known ids asked under another practice, are answered with None; QuickPay links are http(s)
URLs; ``pm_plugin_config`` answers a valid configuration or None; a contact saved with
``pm_update_contact`` and an opt-out set with ``pm_set_opt_out`` show in the next
``pm_guarantor``; and the adapter implements no hook that no specification declares. A failure
names the hook, its arguments and the field at fault.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pluggy
import pytest

import hookspecs
from ondemand_plugin import PLUGIN_NAME
from ondemand_plugin.boundary import contracts
from ondemand_plugin.boundary.config import load_config
from ondemand_plugin.boundary.extensions import check_hooks
from ondemand_plugin.errors import ConfigError, PluginError

UNKNOWN_ID = "conformance-unknown-0"
ID_ARGUMENTS = {
    "pm_practice": "practice_id",
    "pm_patient": "patient_id",
    "pm_guarantor": "guarantor_id",
}
CONTEXT = {"practice_id": "", "user": {"id": "conformance", "name": "Host Conformance"}}


class HostConformance:
    """Subclass as ``Test...``: implement ``make_host``, set ``practice_id`` and
    ``patient_ids`` (at least one patient with a guarantor), optionally ``guarantor_ids``."""

    #: A practice of the test data.
    practice_id: str = ""
    #: Patients of that practice to check; their guarantors are checked too.
    patient_ids: Sequence[str] = ()
    #: Further guarantors to check (the patients' are found through their links).
    guarantor_ids: Sequence[str] = ()

    def make_host(self) -> object:
        raise NotImplementedError(
            "Return a new instance of the host's adapter plugin over its test data."
        )

    def host_calls(self) -> HostCalls:
        """A new adapter alone in a plugin manager, as the plugin's hooks find it."""
        assert self.practice_id, "set practice_id to a practice of the test data"
        assert self.patient_ids, "set patient_ids to some patients of that practice"
        pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        hookspecs.add_hookspecs(pm)
        pm.register(self.make_host(), name="host")
        return HostCalls(pm, self.practice_id)

    @pytest.fixture
    def hosted(self) -> HostCalls:
        return self.host_calls()

    # The checks

    def test_the_adapter_implements_only_declared_hooks(self, hosted: HostCalls) -> None:
        try:
            check_hooks(hosted.pm)
        except PluginError as error:
            pytest.fail(error.message)

    def test_the_practice_follows_its_schema(self, hosted: HostCalls) -> None:
        practice = hosted.known("pm_practice", "practice", practice_id=self.practice_id)
        where = hosted.call("pm_practice", practice_id=self.practice_id)
        try:
            ZoneInfo(practice["timezone"])
        except (ZoneInfoNotFoundError, ValueError):
            pytest.fail(f"{where}: timezone must be an IANA time zone name (America/Chicago)")

    def test_each_patient_follows_its_schema(self, hosted: HostCalls) -> None:
        for patient_id in self.patient_ids:
            hosted.patient(patient_id)

    def test_each_guarantor_follows_its_schema(self, hosted: HostCalls) -> None:
        for guarantor_id in self._guarantors(hosted):
            hosted.guarantor(guarantor_id)

    def test_a_patients_guarantors_name_the_patient_back(self, hosted: HostCalls) -> None:
        linked = 0
        for patient_id in self.patient_ids:
            where = hosted.call("pm_patient", patient_id=patient_id)
            for guarantor_id in hosted.patient(patient_id)["guarantor_ids"]:
                linked += 1
                guarantor = hosted.answer("pm_guarantor", guarantor_id=guarantor_id)
                assert guarantor is not None, (
                    f"{where}: guarantor_ids names {guarantor_id!r}, but pm_guarantor answers "
                    "None for it"
                )
                assert patient_id in guarantor.get("patient_ids", []), (
                    f"{hosted.call('pm_guarantor', guarantor_id=guarantor_id)}: patient_ids "
                    f"lacks {patient_id!r}, whose guarantor_ids name this guarantor"
                )
        assert linked, "none of patient_ids has a guarantor: name a patient that has one"

    def test_a_guarantors_patients_name_the_guarantor_back(self, hosted: HostCalls) -> None:
        for guarantor_id in self._guarantors(hosted):
            where = hosted.call("pm_guarantor", guarantor_id=guarantor_id)
            for patient_id in hosted.guarantor(guarantor_id)["patient_ids"]:
                patient = hosted.answer("pm_patient", patient_id=patient_id)
                assert patient is not None, (
                    f"{where}: patient_ids names {patient_id!r}, but pm_patient answers None for it"
                )
                assert guarantor_id in patient.get("guarantor_ids", []), (
                    f"{hosted.call('pm_patient', patient_id=patient_id)}: guarantor_ids lacks "
                    f"{guarantor_id!r}, whose patient_ids name this patient"
                )

    def test_unknown_ids_are_answered_with_none(self, hosted: HostCalls) -> None:
        patient_id = self.patient_ids[0]
        guarantor_id = self._guarantors(hosted)[0]
        asked: list[tuple[str, dict[str, str]]] = [
            ("pm_practice", {"practice_id": UNKNOWN_ID}),
            ("pm_patient", {"practice_id": self.practice_id, "patient_id": UNKNOWN_ID}),
            ("pm_guarantor", {"practice_id": self.practice_id, "guarantor_id": UNKNOWN_ID}),
            # A known id under another practice: one practice's records never answer another's.
            ("pm_patient", {"practice_id": UNKNOWN_ID, "patient_id": patient_id}),
            ("pm_guarantor", {"practice_id": UNKNOWN_ID, "guarantor_id": guarantor_id}),
        ]
        for hook_name, kwargs in asked:
            answer = hosted.raw(hook_name, **kwargs)
            assert answer is None, (
                f"{_call(hook_name, kwargs)}: an unknown id must be answered with None, "
                f"not {type(answer).__name__}"
            )

    def test_each_quickpay_link_is_an_http_url(self, hosted: HostCalls) -> None:
        for guarantor_id in self._guarantors(hosted):
            balance = Decimal(hosted.guarantor(guarantor_id)["pops_balance"])
            amount = balance if balance > 0 else Decimal("10.00")
            kwargs = {"guarantor_id": guarantor_id, "amount": amount}
            link = hosted.answer("pm_quickpay_link", **kwargs)
            assert isinstance(link, str) and link.startswith(("https://", "http://")), (
                f"{hosted.call('pm_quickpay_link', **kwargs)}: the answer must be an http(s) URL"
            )

    def test_the_plugin_configuration_is_valid_or_none(self, hosted: HostCalls) -> None:
        config = hosted.raw("pm_plugin_config", plugin_name=PLUGIN_NAME)
        if config is None:
            return
        try:
            load_config(config, environ={}, source="pm_plugin_config")
        except ConfigError as error:
            pytest.fail(
                f"{_call('pm_plugin_config', {'plugin_name': PLUGIN_NAME})}: {error.field} is "
                f"at fault: {error.message}"
            )

    def test_a_saved_contact_shows_in_the_next_answer(self, hosted: HostCalls) -> None:
        guarantor_id = self._guarantors(hosted)[0]
        contact = {"kind": "email", "value": "conformance.saved@example.com"}
        entity = {"type": "guarantor", "id": guarantor_id}
        kwargs = {"entity": entity, "contact": contact, "context": hosted.context}
        saved = hosted.answer("pm_update_contact", **kwargs)
        assert saved is True, f"{hosted.call('pm_update_contact', **kwargs)}: must answer True"
        contacts = hosted.guarantor(guarantor_id)["contacts"]
        assert contact in contacts, (
            f"{hosted.call('pm_guarantor', guarantor_id=guarantor_id)}: contacts lacks the "
            "e-mail address pm_update_contact saved"
        )

    def test_an_opt_out_shows_in_the_next_answer_and_so_does_its_end(
        self, hosted: HostCalls
    ) -> None:
        found = self._guarantor_with_a_phone(hosted)
        if found is None:
            pytest.skip("no guarantor to check has a mobile phone number")
        guarantor_id, number = found
        where = hosted.call("pm_guarantor", guarantor_id=guarantor_id)
        for opted_out in (True, False):
            kwargs = {
                "mode": "text",
                "address": number,
                "opted_out": opted_out,
                "context": {
                    "source": "reply",
                    "keyword": "STOP" if opted_out else "START",
                    "channel": "conformance",
                    "changed_at": "2026-01-05T17:00:00Z",
                },
            }
            saved = hosted.answer("pm_set_opt_out", **kwargs)
            assert saved is True, f"{hosted.call('pm_set_opt_out', **kwargs)}: must answer True"
            reported = hosted.guarantor(guarantor_id)["opt_out"].get("text", False)
            assert reported is opted_out, (
                f"{where}: opt_out.text is {reported} after pm_set_opt_out(opted_out="
                f"{opted_out}) for its mobile number"
            )

    def _guarantors(self, hosted: HostCalls) -> list[str]:
        """``guarantor_ids`` and every guarantor of ``patient_ids``, each once."""
        found = list(self.guarantor_ids)
        for patient_id in self.patient_ids:
            found += hosted.patient(patient_id)["guarantor_ids"]
        assert found, "no guarantor to check: set guarantor_ids, or name a patient who has one"
        return list(dict.fromkeys(found))

    def _guarantor_with_a_phone(self, hosted: HostCalls) -> tuple[str, str] | None:
        for guarantor_id in self._guarantors(hosted):
            for contact in hosted.guarantor(guarantor_id)["contacts"]:
                if contact["kind"] == "mobile":
                    return guarantor_id, contact["value"]
        return None


class HostCalls:
    """The adapter's hooks as the plugin calls them, and what a failure says of each answer."""

    def __init__(self, pm: pluggy.PluginManager, practice_id: str) -> None:
        self.pm = pm
        self.practice_id = practice_id
        self.context = {**CONTEXT, "practice_id": practice_id}

    def call(self, hook_name: str, **kwargs: Any) -> str:
        """How a failure names a call: the hook and its arguments."""
        return _call(hook_name, self._with_practice(hook_name, kwargs))

    def raw(self, hook_name: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.pm.hook, hook_name)(**kwargs)
        except Exception as error:
            pytest.fail(f"{_call(hook_name, kwargs)} raised {type(error).__name__}: {error}")

    def answer(self, hook_name: str, **kwargs: Any) -> Any:
        """The hook's answer for the practice (``practice_id`` filled in)."""
        return self.raw(hook_name, **self._with_practice(hook_name, kwargs))

    def known(self, hook_name: str, schema: str, **kwargs: Any) -> dict[str, Any]:
        """The answer for a record that exists: not None, valid, and the one asked for."""
        answer = self.answer(hook_name, **kwargs)
        where = self.call(hook_name, **kwargs)
        assert answer is not None, f"{where} answered None for a record of the test data"
        error = contracts.first_error(schema, answer, remember=False)
        if error is not None:
            path, problem = contracts.describe(error)
            pytest.fail(f"{where}: {path} {problem} (contracts/{schema}.json)")
        asked = kwargs[ID_ARGUMENTS[hook_name]]
        assert answer["id"] == asked, f"{where}: id is {answer['id']!r}, not the id asked for"
        result: dict[str, Any] = answer
        return result

    def patient(self, patient_id: str) -> dict[str, Any]:
        return self.known("pm_patient", "patient", patient_id=patient_id)

    def guarantor(self, guarantor_id: str) -> dict[str, Any]:
        return self.known("pm_guarantor", "guarantor", guarantor_id=guarantor_id)

    def _with_practice(self, hook_name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        if hook_name == "pm_plugin_config" or "practice_id" in kwargs:
            return kwargs
        return {"practice_id": self.practice_id, **kwargs}


def _call(hook_name: str, kwargs: dict[str, Any]) -> str:
    shown = ", ".join(
        f"{key}={value!r}" for key, value in kwargs.items() if key not in ("context", "entity")
    )
    return f"{hook_name}({shown})"


__all__ = ["HostCalls", "HostConformance"]
