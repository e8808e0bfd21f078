"""Hooks the host implements and plugins call: the platform's data (all firstresult).

Shapes are JSON Schemas in ``contracts/``: ``practice.json``, ``patient.json``,
``guarantor.json``, ``contact.json``, ``plugin-config.json``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hookspecs._markers import hookspec


@hookspec(firstresult=True)
def pm_practice(practice_id: str) -> dict[str, Any] | None:
    """The practice, or None when unknown.

    Example::

        @hookimpl
        def pm_practice(self, practice_id):
            return {"id": practice_id, "name": "Maple Pediatrics", "phone": "+15035550100",
                    "timezone": "America/Los_Angeles", "sender_email": "billing@maple.example",
                    "text_from": "+15035550101"}
    """


@hookspec(firstresult=True)
def pm_patient(practice_id: str, patient_id: str) -> dict[str, Any] | None:
    """A patient of the practice, or None when unknown.

    Example::

        @hookimpl
        def pm_patient(self, practice_id, patient_id):
            return {"id": patient_id, "first_name": "Lily", "last_name": "Chen",
                    "guarantor_ids": ["g1", "g2"],
                    "contacts": [{"kind": "mobile", "value": "+15035550123"}]}
    """


@hookspec(firstresult=True)
def pm_guarantor(practice_id: str, guarantor_id: str) -> dict[str, Any] | None:
    """A guarantor of the practice, or None when unknown.

    Example::

        @hookimpl
        def pm_guarantor(self, practice_id, guarantor_id):
            return {"id": guarantor_id, "first_name": "Mei", "last_name": "Chen",
                    "pops_balance": "120.50", "dunning_count": 1,
                    "batched_statement_count": 2, "patient_ids": ["p1"],
                    "contacts": [{"kind": "email", "value": "mei@example.com"}],
                    "opt_out": {"email": False, "text": False, "voice": True}}
    """


@hookspec(firstresult=True)
def pm_quickpay_link(practice_id: str, guarantor_id: str, amount: Decimal) -> str | None:
    """A QuickPay link for the guarantor to pay ``amount``. Asked only when a payment can be made.

    Example::

        @hookimpl
        def pm_quickpay_link(self, practice_id, guarantor_id, amount):
            return f"https://pay.maple.example/q/{make_token(guarantor_id, amount)}"
    """


@hookspec(firstresult=True)
def pm_update_contact(
    practice_id: str, entity: dict[str, Any], contact: dict[str, Any], context: dict[str, Any]
) -> bool | None:
    """Save a corrected contact to the record (the dialog's Modify with "save to the record").

    ``entity`` is ``{"type": "patient"|"guarantor", "id": ...}``; ``contact`` is
    ``{"kind": "email"|"mobile"|"home"|"work", "value": ...}``, already validated and normalised.
    Return True once saved.

    Example::

        @hookimpl
        def pm_update_contact(self, practice_id, entity, contact, context):
            db.save_contact(entity["id"], contact["kind"], contact["value"],
                            changed_by=context["user"]["id"])
            return True
    """


@hookspec(firstresult=True)
def pm_plugin_config(plugin_name: str) -> dict[str, Any] | None:
    """The host's configuration for a plugin, or None to let the plugin use its environment.

    For ``ondemand``: the keys of ``contracts/plugin-config.json``, each optional (``null`` means
    unset). ``ondemand_plugin.config.read_config_file(path)`` reads them from the JSON or TOML
    file that the ``ondemand`` command is given too (``--config`` or ``ONDEMAND_CONFIG``).

    Example::

        @hookimpl
        def pm_plugin_config(self, plugin_name):
            if plugin_name == "ondemand":
                return {"database_url": "sqlite:////var/lib/pm/ondemand.db",
                        "channels": {"email": "outbox", "text": "outbox", "voice": "outbox"},
                        "send_window": {"start": "08:00", "end": "21:00"}}
            return None
    """


@hookspec(firstresult=True)
def pm_set_opt_out(
    practice_id: str, mode: str, address: str, opted_out: bool, context: dict[str, Any]
) -> bool | None:
    """Record that ``address`` opted out of (or back into) ``mode`` messages from the practice.

    Called when a recipient replies STOP or START to a text, or when a provider refuses a message
    because the recipient opted out. ``address`` is normalised (E.164 for a phone number); the host
    marks every contact of the practice with that address, so that ``pm_guarantor`` reports the
    opt-out from then on. ``context`` says why (``contracts/opt-out-context.json``):
    ``{"source": "reply"|"provider", "keyword": "STOP"|None, "channel": ..., "changed_at": ...}``.
    The plugin honours the change at once on its own; return True once the host has saved it.

    Example::

        @hookimpl
        def pm_set_opt_out(self, practice_id, mode, address, opted_out, context):
            db.set_contact_opt_out(practice_id, address, mode, opted_out,
                                   reason=context["source"], at=context["changed_at"])
            return True
    """


@hookspec
def pm_payment_posted(
    practice_id: str,
    guarantor_id: str,
    amount: str,
    paid_at: str,
    reference: str,
    notification_id: str | None,
) -> None:
    """The host tells the plugins that its payment portal posted a payment (the host calls it,
    plugins implement it).

    ``amount`` is a string decimal (``"45.10"``), ``paid_at`` an RFC 3339 UTC time, ``reference``
    the host's id of the payment, unique per practice (a payment reported twice counts once);
    ``notification_id`` is the notification whose pay link led to it when the host knows it
    (the QuickPay link the plugin asked for carries no such id, so it may be None). Shape:
    ``contracts/payment-posted.json``. The On-Demand plugin attributes the payment to that
    notification, or else to the guarantor's latest one whose link was opened or is still live,
    and shows it in the history and the dialog's timeline; it never changes a dunning count.

    Example::

        pm.hook.pm_payment_posted(
            practice_id="maple", guarantor_id="g-mei", amount="45.10",
            paid_at="2026-05-01T16:42:07Z", reference="pops-88412", notification_id=None)
    """
