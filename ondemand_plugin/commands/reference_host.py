"""A reference host: the platform hooks answered from plain dictionaries.

Tests, the demo and host developers use it as the smallest complete host adapter. It records
every platform hook call, so tests can check what the plugin asked and changed.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from hookspecs import hookimpl


class ReferenceHost:
    """Practices, patients and guarantors in memory, keyed by practice id."""

    def __init__(self, plugin_config: dict[str, Any] | None = None) -> None:
        self.plugin_config = plugin_config
        self.practices: dict[str, dict[str, Any]] = {}
        self.patients: dict[str, dict[str, dict[str, Any]]] = {}
        self.guarantors: dict[str, dict[str, dict[str, Any]]] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []

    # Building data

    def add_practice(self, practice: dict[str, Any]) -> dict[str, Any]:
        self.practices[practice["id"]] = practice
        self.patients.setdefault(practice["id"], {})
        self.guarantors.setdefault(practice["id"], {})
        return practice

    def add_patient(self, practice_id: str, patient: dict[str, Any]) -> dict[str, Any]:
        self.patients[practice_id][patient["id"]] = patient
        return patient

    def add_guarantor(self, practice_id: str, guarantor: dict[str, Any]) -> dict[str, Any]:
        self.guarantors[practice_id][guarantor["id"]] = guarantor
        return guarantor

    def link(self, practice_id: str, patient_id: str, guarantor_id: str) -> None:
        """Make ``guarantor_id`` a guarantor of ``patient_id``."""
        patient = self.patients[practice_id][patient_id]
        guarantor = self.guarantors[practice_id][guarantor_id]
        if guarantor_id not in patient["guarantor_ids"]:
            patient["guarantor_ids"].append(guarantor_id)
        if patient_id not in guarantor["patient_ids"]:
            guarantor["patient_ids"].append(patient_id)

    def calls_to(self, hook_name: str) -> list[dict[str, Any]]:
        return [kwargs for name, kwargs in self.calls if name == hook_name]

    # The platform hooks. Answers are copies, as a real host's would be fresh objects.

    @hookimpl
    def pm_plugin_config(self, plugin_name: str) -> dict[str, Any] | None:
        if plugin_name == "ondemand" and self.plugin_config is not None:
            return copy.deepcopy(self.plugin_config)
        return None

    @hookimpl
    def pm_practice(self, practice_id: str) -> dict[str, Any] | None:
        self.calls.append(("pm_practice", {"practice_id": practice_id}))
        return copy.deepcopy(self.practices.get(practice_id))

    @hookimpl
    def pm_patient(self, practice_id: str, patient_id: str) -> dict[str, Any] | None:
        self.calls.append(("pm_patient", {"practice_id": practice_id, "patient_id": patient_id}))
        return copy.deepcopy(self.patients.get(practice_id, {}).get(patient_id))

    @hookimpl
    def pm_guarantor(self, practice_id: str, guarantor_id: str) -> dict[str, Any] | None:
        self.calls.append(
            ("pm_guarantor", {"practice_id": practice_id, "guarantor_id": guarantor_id})
        )
        return copy.deepcopy(self.guarantors.get(practice_id, {}).get(guarantor_id))

    @hookimpl
    def pm_quickpay_link(self, practice_id: str, guarantor_id: str, amount: Decimal) -> str:
        self.calls.append(
            (
                "pm_quickpay_link",
                {"practice_id": practice_id, "guarantor_id": guarantor_id, "amount": amount},
            )
        )
        return (
            f"https://pay.example.com/q/{quote(practice_id)}/{quote(guarantor_id)}?amount={amount}"
        )

    @hookimpl
    def pm_update_contact(
        self,
        practice_id: str,
        entity: dict[str, Any],
        contact: dict[str, Any],
        context: dict[str, Any],
    ) -> bool:
        self.calls.append(
            (
                "pm_update_contact",
                {"practice_id": practice_id, "entity": entity, "contact": contact},
            )
        )
        table = self.patients if entity["type"] == "patient" else self.guarantors
        record = table[practice_id][entity["id"]]
        same_kind = [c for c in record["contacts"] if c["kind"] == contact["kind"]]
        if same_kind:
            same_kind[0]["value"] = contact["value"]
        else:
            record["contacts"].append(dict(contact))
        return True

    @hookimpl
    def pm_set_opt_out(
        self,
        practice_id: str,
        mode: str,
        address: str,
        opted_out: bool,
        context: dict[str, Any],
    ) -> bool:
        self.calls.append(
            (
                "pm_set_opt_out",
                {
                    "practice_id": practice_id,
                    "mode": mode,
                    "address": address,
                    "opted_out": opted_out,
                    "context": context,
                },
            )
        )
        # The opt-out belongs to the contact; a guarantor holding it reports the mode opted out.
        for record in self.guarantors.get(practice_id, {}).values():
            if any(contact["value"] == address for contact in record["contacts"]):
                record["opt_out"][mode] = opted_out
        return True


def demo_host(plugin_config: dict[str, Any] | None = None) -> ReferenceHost:
    """A host with the demo practice ``demo``: the Chens and the Parks.

    - Lily Chen (patient ``p-lily``) has two guarantors: her mother Mei (``g-mei``, $120.50,
      text and e-mail) and her father Tom (``g-tom``, $0.00, e-mail only).
    - Noah Park (``p-noah``) has one guarantor, Grace Park (``g-grace``), who never had a
      batched statement.
    - Ruth Diaz (``p-ruth``) is her own guarantor (``g-ruth``) with a $35.00 credit and a
      home phone only.
    """
    host = ReferenceHost(plugin_config)
    host.add_practice(
        {
            "id": "demo",
            "name": "Maple Street Pediatrics",
            "phone": "+15035550100",
            "timezone": "America/Los_Angeles",
            "sender_email": "billing@maplestreet.example.com",
            "text_from": "+15035550101",
        }
    )
    host.add_patient(
        "demo",
        {
            "id": "p-lily",
            "first_name": "Lily",
            "last_name": "Chen",
            "guarantor_ids": [],
            "contacts": [],
        },
    )
    host.add_guarantor(
        "demo",
        guarantor(
            "g-mei",
            "Mei",
            "Chen",
            "120.50",
            statements=2,
            dunning=1,
            contacts=[("mobile", "+15035550123"), ("email", "mei.chen@example.com")],
        ),
    )
    host.add_guarantor(
        "demo",
        guarantor(
            "g-tom",
            "Tom",
            "Chen",
            "0.00",
            statements=1,
            contacts=[("email", "tom.chen@example.com")],
        ),
    )
    host.link("demo", "p-lily", "g-mei")
    host.link("demo", "p-lily", "g-tom")
    host.add_patient(
        "demo",
        {
            "id": "p-noah",
            "first_name": "Noah",
            "last_name": "Park",
            "guarantor_ids": [],
            "contacts": [],
        },
    )
    host.add_guarantor(
        "demo",
        guarantor(
            "g-grace", "Grace", "Park", "80.00", statements=0, contacts=[("mobile", "+15035550177")]
        ),
    )
    host.link("demo", "p-noah", "g-grace")
    host.add_patient(
        "demo",
        {
            "id": "p-ruth",
            "first_name": "Ruth",
            "last_name": "Diaz",
            "guarantor_ids": [],
            "contacts": [{"kind": "home", "value": "+15035550188"}],
        },
    )
    host.add_guarantor(
        "demo",
        guarantor(
            "g-ruth", "Ruth", "Diaz", "-35.00", statements=3, contacts=[("home", "+15035550188")]
        ),
    )
    host.link("demo", "p-ruth", "g-ruth")
    return host


def guarantor(
    guarantor_id: str,
    first_name: str,
    last_name: str,
    balance: str,
    *,
    statements: int,
    dunning: int = 0,
    contacts: list[tuple[str, str]] | None = None,
    opt_out: dict[str, bool] | None = None,
) -> dict[str, Any]:
    """A guarantor record as ``contracts/guarantor.json`` describes it."""
    return {
        "id": guarantor_id,
        "first_name": first_name,
        "last_name": last_name,
        "pops_balance": balance,
        "dunning_count": dunning,
        "batched_statement_count": statements,
        "patient_ids": [],
        "contacts": [{"kind": kind, "value": value} for kind, value in contacts or []],
        "opt_out": {"email": False, "text": False, "voice": False, **(opt_out or {})},
    }
