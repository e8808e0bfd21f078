"""Typed calls to the platform hooks the host implements, validated at the boundary.

The host is another team's code: everything it answers is checked against ``contracts/``
before the plugin relies on it, and a broken answer names the host plugin that gave it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pluggy

from ondemand_plugin.boundary import contracts
from ondemand_plugin.boundary.extensions import plugin_name
from ondemand_plugin.boundary.model import Contact, Guarantor, Patient, Practice
from ondemand_plugin.errors import ErrorCode, HostError, NotFound, OnDemandError
from ondemand_plugin.rules.addresses import normalize_email
from ondemand_plugin.rules.composing import to_cents

# Longer than any well-formed id (contracts/common.json).
ID_SHOWN_LENGTH = 64


class Host:
    """The host platform as seen through one plugin manager."""

    def __init__(self, plugin_manager: pluggy.PluginManager) -> None:
        self._pm = plugin_manager
        self._hook = plugin_manager.hook

    def practice(self, practice_id: str) -> Practice:
        data = self._call("pm_practice", practice_id=practice_id)
        self._check("pm_practice", "practice", practice_id, data)
        try:
            timezone = ZoneInfo(data["timezone"])
        except (ZoneInfoNotFoundError, ValueError):
            raise self._invalid(
                "pm_practice", practice_id, "timezone is not an IANA time zone name"
            ) from None
        return Practice(
            id=data["id"],
            name=data["name"],
            phone=data["phone"],
            timezone=timezone,
            sender_email=self._sender_email(practice_id, data.get("sender_email")),
            text_from=data.get("text_from"),
        )

    def _sender_email(self, practice_id: str, sender: str | None) -> str | None:
        """The practice's one sender address: it becomes an e-mail's From, and a list of
        several would put other people's addresses there."""
        if not sender:
            return None
        try:
            return normalize_email(sender)
        except OnDemandError:
            raise self._invalid(
                "pm_practice", practice_id, "sender_email must be one valid e-mail address"
            ) from None

    def patient(self, practice_id: str, patient_id: str) -> Patient:
        data = self._call("pm_patient", practice_id=practice_id, patient_id=patient_id)
        self._check("pm_patient", "patient", patient_id, data)
        return Patient(
            id=data["id"],
            first_name=data["first_name"],
            last_name=data["last_name"],
            guarantor_ids=tuple(data["guarantor_ids"]),
            contacts=_contacts(data["contacts"]),
        )

    def guarantor(self, practice_id: str, guarantor_id: str) -> Guarantor:
        data = self._call("pm_guarantor", practice_id=practice_id, guarantor_id=guarantor_id)
        self._check("pm_guarantor", "guarantor", guarantor_id, data)
        return Guarantor(
            id=data["id"],
            first_name=data["first_name"],
            last_name=data["last_name"],
            balance=to_cents(Decimal(data["pops_balance"])),
            dunning_count=data["dunning_count"],
            batched_statement_count=data["batched_statement_count"],
            patient_ids=tuple(data["patient_ids"]),
            contacts=_contacts(data["contacts"]),
            opt_out=dict(data["opt_out"]),
        )

    def quickpay_link(self, practice_id: str, guarantor_id: str, amount: Decimal) -> str:
        link = self._call(
            "pm_quickpay_link", practice_id=practice_id, guarantor_id=guarantor_id, amount=amount
        )
        if not isinstance(link, str) or not link.startswith(("https://", "http://")):
            raise HostError(
                "The host gave no QuickPay link for this guarantor, so the message cannot offer "
                "a way to pay. The host's pm_quickpay_link "
                f"({self._implementers('pm_quickpay_link')}) must return an http(s) URL.",
                code=ErrorCode.QUICKPAY_UNAVAILABLE,
            )
        return link

    def update_contact(
        self,
        practice_id: str,
        entity: dict[str, str],
        contact: dict[str, str],
        context: dict[str, Any],
    ) -> bool:
        saved = self._call(
            "pm_update_contact",
            practice_id=practice_id,
            entity=entity,
            contact=contact,
            context=context,
        )
        return saved is True

    def set_opt_out(
        self,
        practice_id: str,
        mode: str,
        address: str,
        opted_out: bool,
        context: dict[str, Any],
    ) -> bool:
        saved = self._call(
            "pm_set_opt_out",
            practice_id=practice_id,
            mode=mode,
            address=address,
            opted_out=opted_out,
            context=context,
        )
        return saved is True

    def plugin_config(self, plugin_name: str) -> Any:
        """The host's settings for ``plugin_name`` (validated by ``config.load_config``)."""
        return self._call("pm_plugin_config", plugin_name=plugin_name)

    def implementers(self, hook_name: str) -> str:
        """The host plugins that implement a hook, to name them in errors and logs."""
        return self._implementers(hook_name)

    # The dashboard-actions hook runs on every render: these read only what it needs and check
    # only those fields, instead of validating the whole answer against its schema.

    def guarantor_ids_of_patient(self, practice_id: str, patient_id: str) -> list[str]:
        data = self._call("pm_patient", practice_id=practice_id, patient_id=patient_id)
        if data is None:
            raise self._missing("patient", patient_id)
        ids = data.get("guarantor_ids") if type(data) is dict else None
        if type(ids) is not list or not all(type(item) is str for item in ids):
            raise self._invalid("pm_patient", patient_id, "guarantor_ids must be a list of ids")
        return ids

    def batched_statement_count(self, practice_id: str, guarantor_id: str) -> int:
        data = self._call("pm_guarantor", practice_id=practice_id, guarantor_id=guarantor_id)
        if data is None:
            raise self._missing("guarantor", guarantor_id)
        count = data.get("batched_statement_count") if type(data) is dict else None
        if type(count) is not int or count < 0:
            raise self._invalid(
                "pm_guarantor", guarantor_id, "batched_statement_count must be a whole number ≥ 0"
            )
        return count

    def _call(self, hook_name: str, **kwargs: Any) -> Any:
        """Call a platform hook through pluggy; whatever the host raises becomes a ``HostError``
        naming the hook and the host plugin, with the original chained for the host's log.

        The exception's text is left out of the message: a host's error could quote a patient.
        """
        caller = getattr(self._hook, hook_name)
        try:
            return caller(**kwargs)
        except Exception as error:
            raise HostError(
                f"The host plugin {self._raiser(caller, error)} raised "
                f"{type(error).__name__} in its {hook_name} hook, so this could not be done. "
                "Fix the host plugin (its log has the details), then try again.",
                field=hook_name,
            ) from error

    def _raiser(self, caller: pluggy.HookCaller, error: Exception) -> str:
        """The implementation the exception came from, found by its frame in the traceback;
        every implementer when none of their frames is there."""
        plugins = {
            code: impl.plugin
            for impl in caller.get_hookimpls()
            if (code := getattr(impl.function, "__code__", None)) is not None
        }
        raiser = None
        traceback = error.__traceback__
        while traceback is not None:
            raiser = plugins.get(traceback.tb_frame.f_code, raiser)
            traceback = traceback.tb_next
        if raiser is None:
            return self._implementers(caller.name)
        return plugin_name(self._pm, raiser)

    def _check(self, hook_name: str, schema: str, requested_id: str, data: Any) -> None:
        if data is None:
            raise self._missing(schema, requested_id)
        error = contracts.first_error(schema, data)
        if error is not None:
            path, problem = contracts.describe(error)
            raise self._invalid(hook_name, requested_id, f"{path} {problem}")
        if data["id"] != requested_id:
            raise self._invalid(hook_name, requested_id, "it answered with another id")

    def _missing(self, kind: str, requested_id: str) -> NotFound:
        return NotFound(f"No {kind} {_shown(requested_id)} was found in this practice.", field=kind)

    def _invalid(self, hook_name: str, requested_id: str, problem: str) -> HostError:
        return HostError(
            f"The host's answer to {hook_name} for {_shown(requested_id)} is invalid: {problem}. "
            f"Fix the host plugin ({self._implementers(hook_name)}) so that it follows contracts/.",
            field=hook_name,
        )

    def _implementers(self, hook_name: str) -> str:
        caller = getattr(self._hook, hook_name)
        names = [plugin_name(self._pm, impl.plugin) for impl in caller.get_hookimpls()]
        return ", ".join(names) or "no plugin implements it"


def _shown(requested_id: str) -> str:
    """An id as a message may quote it: a hostile one could be megabytes long."""
    if len(requested_id) <= ID_SHOWN_LENGTH:
        return repr(requested_id)
    return repr(requested_id[:ID_SHOWN_LENGTH]) + f" (cut at {ID_SHOWN_LENGTH} characters)"


def _contacts(items: list[dict[str, str]]) -> tuple[Contact, ...]:
    return tuple(Contact(kind=item["kind"], value=item["value"].strip()) for item in items)
