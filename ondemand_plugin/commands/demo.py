"""``ondemand demo``: a whole office session against the built-in demo practice.

It runs on the embedded default (a SQLite file and the outbox folder) in ``<home>/demo``, which is
deleted and recreated at each run so that every run tells the same story. The plugin manager is
built exactly as a host builds one; every step goes through the hooks a host calls.
"""

from __future__ import annotations

import shutil
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import pluggy

from ondemand_plugin import MANAGE_ACTION_ID, SEND_ACTION_ID, admin
from ondemand_plugin.boundary.config import ALL_DAY, sqlite_url
from ondemand_plugin.boundary.manager import build_plugin_manager
from ondemand_plugin.channels.outbox import read_outbox
from ondemand_plugin.commands.reference_host import ReferenceHost, demo_host
from ondemand_plugin.errors import OnDemandError
from ondemand_plugin.rules import composing
from ondemand_plugin.rules.criteria import MODE_NAMES

PRACTICE_ID = "demo"
CONTEXT: dict[str, Any] = {"practice_id": PRACTICE_ID, "user": {"id": "u-amy", "name": "Amy Front"}}
ACCOUNT_MANAGER = "Sam Rivera"
LILY = {"type": "patient", "id": "p-lily"}
NOAH = {"type": "patient", "id": "p-noah"}
LINE = 78  # the width of the printed story
EMAIL_WIDTH = 66


def run(out: TextIO, home: Path) -> Path:
    """Tell the whole story on ``out``; return the demo folder."""
    folder = home / "demo"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    host = demo_host(
        {
            "database_url": sqlite_url(folder / "ondemand.db"),
            "outbox_dir": str(folder / "outbox"),
            "send_window": ALL_DAY,
        }
    )
    # Mei asked not to be called, so that the dialog shows a refused Send To with its reason.
    host.guarantors[PRACTICE_ID]["g-mei"]["opt_out"]["voice"] = True
    pm = build_plugin_manager(host)
    try:
        Story(out, pm, host, folder).tell()
    finally:
        pm.hook.pm_unconfigure(plugin_manager=pm)
    return folder


class Story:
    def __init__(
        self, out: TextIO, pm: pluggy.PluginManager, host: ReferenceHost, folder: Path
    ) -> None:
        self.out = out
        self.pm = pm
        self.host = host
        self.folder = folder
        self.outbox = folder / "outbox"
        self.labels: dict[str, str] = {}  # template id -> label

    def tell(self) -> None:
        practice = self.host.practices[PRACTICE_ID]
        self.say("On-Demand Balance Notifications: a demo session")
        self.say(f"Practice: {practice['name']}. At the front desk: {CONTEXT['user']['name']}.")
        self.say(
            "The demo practice sends around the clock (no sending hours), so it runs any time."
        )
        dunning_before = self.dunning_count("g-mei")
        self.switch_addon_on()
        self.open_dialog()
        text_id, email_id = self.show_starter_templates()
        self.send_to_mei(text_id, email_id)
        self.show_history(dunning_before)
        self.send_zero_balance(email_id)
        self.refuse_noah()
        self.show_files()

    def switch_addon_on(self) -> None:
        self.heading(1, "An account manager switches the premium add-on on")
        shown = ", ".join(action["label"] for action in self.actions(LILY)) or "no On-Demand action"
        self.say(f"Before: Lily Chen's Patient Dashboard shows {shown}.")
        reason = "Practice bought the add-on"
        admin.switch_addon(self.pm, PRACTICE_ID, enabled=True, by=ACCOUNT_MANAGER, reason=reason)
        self.say(f"{ACCOUNT_MANAGER}, their account manager, switches it on, as this command does:")
        self.say(
            f'  ondemand addon enable --practice demo --by "{ACCOUNT_MANAGER}" --reason "{reason}"'
        )
        self.say("Audit trail (ondemand addon log --practice demo):")
        for change in admin.addon_log(self.pm, PRACTICE_ID):
            state = "ON" if change.enabled else "OFF"
            self.say(
                f"  {change.changed_at:%Y-%m-%d %H:%M:%S} UTC  {state}  by {change.changed_by}: "
                f"{change.reason}"
            )

    def open_dialog(self) -> None:
        self.heading(2, "Lily Chen's parent calls to pay; Amy opens the dialog")
        for action in self.actions(LILY):
            state = "enabled" if action["enabled"] else "disabled"
            self.say(f"Patient Dashboard > Balance panel: [{action['label']}] ({state})")
        self.say("Amy clicks it. The dialog:")
        form = self.pm.hook.pm_dashboard_action(
            action_id=SEND_ACTION_ID, step="open", subject=LILY, payload={}, context=CONTEXT
        )
        self.say("Guarantor (the one picked sets the balance):")
        for guarantor in form["guarantors"]:
            payment = "can pay" if guarantor["payment_allowed"] else "no payment can be made"
            self.say(f"  {guarantor['name']:<10} {money(guarantor['balance']):>8}  {payment}")
            if guarantor["notice"]:
                self.wrapped(guarantor["notice"], "    ", "    ")
        self.say("Send To (the contact picked sets how it is sent):")
        for option in form["send_to"]:
            entity = option["entity"]
            who = f"{entity['name']} ({entity['type']})"
            allowed = "allowed" if option["allowed"] else "refused"
            mode = MODE_NAMES[option["mode"]]
            self.say(f"  {allowed}  {who:<21} {mode:<7} {option['address']}")
            if option["reason"]:
                self.wrapped(option["reason"], "           ", "           ")
        listed = {option["entity"]["id"] for option in form["send_to"]}
        if LILY["id"] not in listed:
            self.say("  (Lily has no contact information of her own, so she is not listed.)")
        if form["notices"]:
            self.say("Notices:")
        for notice in form["notices"]:
            self.wrapped(notice, "  - ", "    ")

    def show_starter_templates(self) -> tuple[str, str]:
        self.heading(3, "The starter templates the add-on came with, from -MANAGE-")
        self.say("One per mode, which Amy can edit, copy or delete:")
        ids = {}
        for template in self.manage({"op": "list"})["templates"]:
            ids[template["mode"]] = template["id"]
            self.labels[template["id"]] = template["label"]
            self.say(f"{template['label']!r} ({MODE_NAMES[template['mode']]}):")
            if template["subject"]:
                self.say(f"  Subject: {template['subject']}")
            for line in template["body"].splitlines():
                if line:
                    self.wrapped(line, "  | ", "  | ")
        return ids["text"], ids["email"]

    def send_to_mei(self, text_id: str, email_id: str) -> None:
        self.heading(4, "Send Now (F2): a text and an e-mail to Mei Chen")
        text = self.send(LILY, "g-mei", "g-mei", "text", text_id)
        self.say("Mei's phone shows:")
        self.show_text(self.delivered(text))
        email = self.send(LILY, "g-mei", "g-mei", "email", email_id)
        self.say("Mei's inbox shows:")
        self.show_email(self.delivered(email))

    def show_history(self, dunning_before: int) -> None:
        self.heading(5, "Guarantor Dashboard > Statement/Notification History: Mei Chen")
        [entries] = self.pm.hook.pm_history_entries(
            guarantor_id="g-mei", context=CONTEXT, before=None, limit=10
        )
        for entry in entries:
            self.say(
                f"  {entry['occurred_at'][:19].replace('T', ' ')} UTC  {entry['display']['title']}"
            )
            self.wrapped(entry["display"]["summary"], "    ", "    ")
        self.say(
            f"Mei's dunning count: {dunning_before} before, {self.dunning_count('g-mei')} after. "
            "On-Demand notifications never count toward dunning."
        )

    def send_zero_balance(self, email_id: str) -> None:
        self.heading(6, "Tom Chen owes $0.00: it can be sent, but nothing can be paid")
        email = self.send(LILY, "g-tom", "g-tom", "email", email_id)
        self.say("Tom's inbox shows:")
        self.show_email(self.delivered(email))
        asked = [
            call
            for call in self.host.calls_to("pm_quickpay_link")
            if call["guarantor_id"] == "g-tom"
        ]
        self.say(f"QuickPay links asked of the host for Tom: {len(asked)} (nothing to pay).")

    def refuse_noah(self) -> None:
        self.heading(7, "Noah Park: his guarantor never had a batched statement")
        for action in self.actions(NOAH):
            state = "enabled" if action["enabled"] else "disabled"
            self.say(f"Patient Dashboard > Balance panel: [{action['label']}] ({state})")
            self.wrapped(f"Reason: {action['disabled_reason']}", "  ", "  ")
        try:
            self.send(NOAH, "g-grace", "g-grace", "text", None, body="Your balance: {{BalanceDue}}")
        except OnDemandError as error:
            self.wrapped(
                f"A send submitted anyway is refused: OnDemandError [{error.code}]; nothing is "
                "sent or recorded.",
                "",
                "",
            )
        else:
            self.say("A send submitted anyway was NOT refused: this is a bug.")

    def show_files(self) -> None:
        self.heading(8, "Where the files are")
        messages = read_outbox(self.outbox, PRACTICE_ID)
        self.say(f"Database: {self.folder / 'ondemand.db'}")
        self.say(
            f"Outbox:   {self.outbox / PRACTICE_ID} ({len(messages)} messages, one JSON file each)"
        )
        self.say("Look again with, for example:")
        self.say(
            f"  ondemand --database-url {sqlite_url(self.folder / 'ondemand.db')} "
            "history --practice demo --guarantor g-mei"
        )

    # Hook calls, as a host makes them

    def actions(self, subject: dict[str, str]) -> list[dict[str, Any]]:
        answers = self.pm.hook.pm_dashboard_actions(
            dashboard=subject["type"], subject=subject, context=CONTEXT
        )
        return [action for answer in answers for action in answer]

    def manage(self, payload: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = self.pm.hook.pm_dashboard_action(
            action_id=MANAGE_ACTION_ID,
            step="submit",
            subject=LILY,
            payload=payload,
            context=CONTEXT,
        )
        return answer

    def send(
        self,
        subject: dict[str, str],
        guarantor_id: str,
        to_guarantor_id: str,
        mode: str,
        template_id: str | None,
        body: str | None = None,
    ) -> dict[str, Any]:
        result: dict[str, Any] = self.pm.hook.pm_dashboard_action(
            action_id=SEND_ACTION_ID,
            step="submit",
            subject=subject,
            payload={
                "guarantor_id": guarantor_id,
                "send_to": {"entity": {"type": "guarantor", "id": to_guarantor_id}, "mode": mode},
                "template_id": template_id,
                "body": body,
            },
            context=CONTEXT,
        )
        guarantor = self.host.guarantors[PRACTICE_ID][guarantor_id]
        template = repr(self.labels[template_id]) if template_id else "typed text"
        self.say(
            f"Amy picks guarantor {guarantor['first_name']} {guarantor['last_name']}, "
            f"{MODE_NAMES[mode]} to {result['to']}, {template}; Send Now: {result['status']}."
        )
        return result

    def dunning_count(self, guarantor_id: str) -> int:
        guarantor = self.pm.hook.pm_guarantor(practice_id=PRACTICE_ID, guarantor_id=guarantor_id)
        return int(guarantor["dunning_count"])

    # What the recipient sees, read back from the outbox folder

    def delivered(self, result: dict[str, Any]) -> dict[str, Any]:
        for message in read_outbox(self.outbox, PRACTICE_ID):
            if message["notification_id"] == result["notification_id"]:
                return message
        raise LookupError(f"{result['notification_id']} is not in the outbox {self.outbox}.")

    def show_text(self, message: dict[str, Any]) -> None:
        # As wide as the longest word (the link), so that the link stays in one piece.
        lines = wrap(message["body"], max(40, *(len(word) for word in message["body"].split())))
        inner = max(len(line) for line in lines)
        self.say(f"    From {message['sender']}")
        self.say("    ." + "-" * (inner + 2) + ".")
        for line in lines:
            self.say(f"    | {line:<{inner}} |")
        self.say("    '" + "-" * (inner + 2) + "'")
        encoding, segments = composing.sms_segments(message["body"])
        self.say(f"    ({segments} SMS segment{'s' if segments > 1 else ''}, {encoding})")

    def show_email(self, message: dict[str, Any]) -> None:
        self.say(f"    From:    {message['sender']}")
        self.say(f"    To:      {message['to']}")
        self.say(f"    Subject: {message['subject']}")
        self.say("    " + "-" * EMAIL_WIDTH)
        for paragraph in message["body"].splitlines():
            for line in wrap(paragraph, EMAIL_WIDTH) if paragraph else [""]:
                self.say(f"    {line}".rstrip())
        self.say("    " + "-" * EMAIL_WIDTH)
        if message["html"]:
            self.say("    (an HTML part goes along, headed by the practice's name)")

    # Printing

    def say(self, text: str = "") -> None:
        print(text, file=self.out)

    def heading(self, number: int, title: str) -> None:
        self.say()
        self.say(f"== {number}. {title}")

    def wrapped(self, text: str, first: str, rest: str) -> None:
        for index, line in enumerate(wrap(text, LINE - len(first))):
            self.say(((first if index == 0 else rest) + line).rstrip())


def wrap(text: str, width: int) -> list[str]:
    """Lines of at most ``width`` characters; a link is never broken, so it stays clickable."""
    return textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False) or [""]


def money(amount: str) -> str:
    return composing.format_money(Decimal(amount))
