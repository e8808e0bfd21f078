"""The host: its plugin manager, wired exactly as the README says, and what its pages ask of it.

Everything the pages show of the feature comes from a hook's answer; the host adds only its own
records (balances, statements, payments) and never looks inside the plugin.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pluggy

import hookspecs
from ondemand_sandbox import accounts, seed
from ondemand_sandbox.adapter import SandboxHost
from ondemand_sandbox.database import cents, money

MANAGE_ACTION_ID = "ondemand.manage_templates"
OPT_OUTS_ACTION_ID = "ondemand.opt_outs"
SEND_ACTION_ID = "ondemand.send_balance_notification"
HISTORY_PAGE = 10
USER = {"id": "u-amy", "name": "Amy Front"}


def refusal(error: BaseException) -> dict[str, Any] | None:
    """A plugin's refusal as ``contracts/error.json``, or None for any other exception.

    Refusals are recognised by their stable ``code``, as a host in another language would.
    """
    code = getattr(error, "code", None)
    message = getattr(error, "message", None)
    if not isinstance(code, str) or not isinstance(message, str):
        return None
    return {"code": code, "message": message, "field": getattr(error, "field", None)}


class Sandbox:
    """One sandbox home folder: the platform's database, the plugin's files, the plugin manager."""

    def __init__(self, home: Path, base_url: str) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.home = home.resolve()
        self.database = seed.open_database(self.home / "sandbox.db", datetime.now(UTC))
        self.database.add_later_tables()
        self.adapter = SandboxHost(self.database, self.home, base_url)
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        hookspecs.add_hookspecs(self.pm)
        self.pm.register(self.adapter, name="sandbox.host")
        self.pm.load_setuptools_entrypoints(hookspecs.PROJECT_NAME)
        self.pm.hook.pm_configure.call_historic(kwargs={"plugin_manager": self.pm})
        if not self.database.set_up():
            try:
                self.set_up_the_demo_practice()
            except BaseException:
                self.close()
                raise
            self.database.mark_set_up(datetime.now(UTC))

    def set_up_the_demo_practice(self) -> None:
        """Give the demo practice the add-on, unless an earlier start did: its first switch on
        brings the plugin's starter templates, one per mode.

        The plugin's database is set up through the plugin, so it cannot share a transaction with
        the sandbox's: the sandbox's database records when it is done, and a start that failed
        before that switches it on at the next start.
        """
        if not self.addon_log(seed.PRACTICE_ID):
            self.switch_addon(seed.PRACTICE_ID, True, seed.SETUP_BY, seed.SETUP_REASON)

    def close(self) -> None:
        self.pm.hook.pm_unconfigure(plugin_manager=self.pm)
        self.database.close()

    @staticmethod
    def context(practice_id: str) -> dict[str, Any]:
        return {"practice_id": practice_id, "user": dict(USER)}

    # The feature's hooks

    def actions(self, practice_id: str, dashboard: str, subject_id: str) -> list[dict[str, Any]]:
        """The actions every plugin puts on a dashboard (pluggy gathers one list per plugin)."""
        per_plugin = self.pm.hook.pm_dashboard_actions(
            dashboard=dashboard,
            subject={"type": dashboard, "id": subject_id},
            context=self.context(practice_id),
        )
        return [action for actions in per_plugin for action in actions]

    def open_action(
        self, practice_id: str, action_id: str, subject: dict[str, str]
    ) -> dict[str, Any]:
        form: dict[str, Any] = self.pm.hook.pm_dashboard_action(
            action_id=action_id,
            step="open",
            subject=subject,
            payload={},
            context=self.context(practice_id),
        )
        return form

    def submit_action(
        self, practice_id: str, action_id: str, subject: dict[str, str], payload: dict[str, Any]
    ) -> dict[str, Any]:
        result: dict[str, Any] = self.pm.hook.pm_dashboard_action(
            action_id=action_id,
            step="submit",
            subject=subject,
            payload=payload,
            context=self.context(practice_id),
        )
        return result

    def preview_action(
        self, practice_id: str, action_id: str, subject: dict[str, str], payload: dict[str, Any]
    ) -> dict[str, Any]:
        preview: dict[str, Any] = self.pm.hook.pm_dashboard_action(
            action_id=action_id,
            step="preview",
            subject=subject,
            payload=payload,
            context=self.context(practice_id),
        )
        return preview

    def manage(self, practice_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        return self.submit_action(
            practice_id, MANAGE_ACTION_ID, {"type": "practice", "id": practice_id}, payload
        )

    def history(
        self, practice_id: str, guarantor_id: str, page: dict[str, str | None]
    ) -> tuple[list[dict[str, Any]], dict[str, str | None] | None]:
        """One page of the Statement/Notification History: the host's records and the plugins'.

        Both sources are newest first; a page takes the newest of each source's next entries and
        remembers where it stopped in each (``own`` key, plugin ``cursor``), so pages never skip
        or repeat an entry however the two interleave.
        """
        own = self.database.history(practice_id, guarantor_id, page.get("own"), HISTORY_PAGE)
        plugin_pages = self.pm.hook.pm_history_entries(
            guarantor_id=guarantor_id,
            context=self.context(practice_id),
            before=page.get("cursor"),
            limit=HISTORY_PAGE,
        )
        theirs = [entry for entries in plugin_pages for entry in entries]
        merged = sorted(
            [("own", entry) for entry in own] + [("plugin", entry) for entry in theirs],
            key=lambda item: datetime.fromisoformat(str(item[1]["occurred_at"])),
            reverse=True,
        )
        shown = merged[:HISTORY_PAGE]
        next_page = dict(page)
        for source, entry in shown:
            if source == "own":
                next_page["own"] = entry["key"]
            else:
                next_page["cursor"] = entry["cursor"]
        more = len(merged) > HISTORY_PAGE
        return [entry for _, entry in shown], next_page if more else None

    def inbound(
        self,
        plugin_name: str,
        method: str,
        path: str,
        url: str,
        headers: dict[str, str],
        form: dict[str, str],
        body: str,
    ) -> dict[str, Any] | None:
        """A request under the host's ``/plugins/`` prefix, for the plugin it names."""
        answer: dict[str, Any] | None = self.pm.hook.pm_inbound_request(
            plugin_name=plugin_name,
            method=method,
            path=path,
            url=url,
            headers=headers,
            form=form,
            body=body,
        )
        return answer

    # The host's own business

    def run_statement_batch(self, practice_id: str) -> int:
        return self.database.run_statement_batch(practice_id, datetime.now(UTC))

    def pay(self, practice_id: str, guarantor_id: str, asked: Decimal | None) -> int:
        """A test payment of the whole balance, which the portal then reports to the plugins
        (``pm_payment_posted``), as a host's payment portal does; returns the cents paid."""
        now = datetime.now(UTC)
        paid = self.database.pay(
            practice_id, guarantor_id, now, None if asked is None else cents(asked)
        )
        self.pm.hook.pm_payment_posted(
            practice_id=practice_id,
            guarantor_id=guarantor_id,
            amount=money(paid),
            paid_at=now.isoformat().replace("+00:00", "Z"),
            reference=f"sandbox-{uuid.uuid4().hex}",
            notification_id=None,
        )
        return paid

    def switch_addon(self, practice_id: str, enabled: bool, by: str, reason: str) -> dict[str, Any]:
        return accounts.switch_addon(self.pm, practice_id, enabled, by, reason)

    def addon_log(self, practice_id: str) -> list[dict[str, Any]]:
        return accounts.addon_log(self.pm, practice_id)

    def audit(self, practice_id: str) -> list[dict[str, Any]]:
        """Every send, add-on switch and consent change, newest first (as a page shows them)."""
        return list(reversed(accounts.audit(self.pm, practice_id)))

    def report(self, practice_id: str, month: str | None) -> dict[str, Any]:
        return accounts.report(self.pm, practice_id, month)

    def notification_status(
        self, practice_id: str, subject: dict[str, str], notification_id: str
    ) -> dict[str, Any]:
        """The ``status`` step, which the dialog's timeline polls."""
        answer: dict[str, Any] = self.pm.hook.pm_dashboard_action(
            action_id=SEND_ACTION_ID,
            step="status",
            subject=subject,
            payload={"notification_id": notification_id},
            context=self.context(practice_id),
        )
        return answer

    def outbox(self, practice_id: str) -> list[dict[str, Any]]:
        """What the outbox channel delivered for the practice, newest first."""
        folder = self.adapter.outbox_dir / practice_id
        messages = [json.loads(path.read_text("utf-8")) for path in sorted(folder.glob("*.json"))]
        return sorted(messages, key=lambda message: str(message["delivered_at"]), reverse=True)
