"""The texts the plugin sends back to a recipient's reply: one confirmation of an opt-out or an
opt-in (the FCC allows one, with nothing else in it), and the answer to HELP (the practice's
name and a number to call, as carriers ask). A shared number may send for several practices:
the answer names each of them."""

from __future__ import annotations

from ondemand_plugin.boundary.model import Practice


def _names(practices: list[Practice]) -> str:
    return ", ".join(practice.name for practice in practices)


def opted_out_text(practices: list[Practice]) -> str:
    return (
        f"{_names(practices)}: you are opted out and will get no more texts from this number. "
        "Reply START to opt back in."
    )


def opted_in_text(practices: list[Practice]) -> str:
    return (
        f"{_names(practices)}: you will get balance texts from this number again. "
        "Reply STOP to opt out."
    )


def help_text(practices: list[Practice]) -> str:
    contacts = "; ".join(f"{practice.name}, {practice.phone}" for practice in practices)
    return f"Balance notices from {contacts}. Call for help. Reply STOP to opt out."
