"""The sandbox's host adapter: the platform hooks (``pm_*``), answered from its own database.

This is the part of a host that a real platform writes once: each hook reads or writes the
platform's records and answers in the shape of ``contracts/*.json``. Nothing here knows how the
plugin works inside.
"""

from __future__ import annotations

import json
import secrets
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

from hookspecs import hookimpl
from ondemand_plugin.boundary.config import read_config_file
from ondemand_sandbox.database import Database
from ondemand_sandbox.phone import SANDBOX_ACCOUNT_SID

CONFIG_FILE = "ondemand.json"


def config_path(home: Path) -> Path:
    """The plugin's configuration file of a sandbox home folder."""
    return home.resolve() / CONFIG_FILE


class SandboxHost:
    """Answers the platform hooks for every practice of the sandbox database."""

    def __init__(self, database: Database, home: Path, base_url: str) -> None:
        self.database = database
        self.home = home
        self.base_url = base_url.rstrip("/")
        # Twilio's auth token for the account, which signs every request Twilio makes. The sandbox
        # plays Twilio for the replies typed in its outbox, so it makes one up each time it starts.
        self.twilio_auth_token = secrets.token_urlsafe(24)
        self.config_file = config_path(home)
        self._write_config_file()

    @property
    def plugin_database_url(self) -> str:
        return "sqlite:///" + str((self.home / "ondemand.db").resolve())

    @property
    def outbox_dir(self) -> Path:
        return self.home / "outbox"

    @hookimpl
    def pm_plugin_config(self, plugin_name: str) -> dict[str, Any] | None:
        if plugin_name != "ondemand":
            return None
        # The file the sandbox wrote, as a host with a configuration file does: the ondemand
        # command reads the same one (--config or ONDEMAND_CONFIG), so that it works on this
        # database and routes as the sandbox does.
        return read_config_file(self.config_file)

    def _write_config_file(self) -> None:
        # Written aside and moved in, so that a command reading it never sees half of it; only
        # its owner may read it, since it holds the Twilio auth token.
        aside = self.config_file.with_name(f".{CONFIG_FILE}.{secrets.token_hex(4)}")
        aside.touch(mode=0o600)
        aside.write_text(json.dumps(self._plugin_settings(), indent=2) + "\n", encoding="utf-8")
        aside.replace(self.config_file)

    def _plugin_settings(self) -> dict[str, Any]:
        # Everything lives in the sandbox's home folder. The sandbox sends to its own outbox only
        # (each mode named, so that the Twilio settings below never make the plugin text for
        # real), so it lets a visitor try it at any hour: the send window is the whole day.
        return {
            "database_url": self.plugin_database_url,
            "outbox_dir": str(self.outbox_dir),
            "channels": {"email": "outbox", "text": "outbox", "voice": "outbox"},
            "send_window": {"start": "00:00", "end": "24:00"},
            # A visitor tries many sends to the same demo guarantors: no cap on them, but the
            # same message again within ten minutes is asked about, as at a real front desk.
            "recipient_limit": None,
            # Pay links go through the plugin's tracked link, served under the sandbox's own
            # /plugins/ route, so the dialog sees them opened.
            "link_base_url": f"{self.base_url}/plugins/",
            # The plugin checks the signature of Twilio's requests (replies, status callbacks)
            # with this token; the account is the sandbox's own stand-in for a provider's.
            "twilio_sms": {
                "account_sid": SANDBOX_ACCOUNT_SID,
                "auth_token": self.twilio_auth_token,
            },
        }

    @hookimpl
    def pm_practice(self, practice_id: str) -> dict[str, Any] | None:
        return self.database.practice(practice_id)

    @hookimpl
    def pm_patient(self, practice_id: str, patient_id: str) -> dict[str, Any] | None:
        return self.database.patient(practice_id, patient_id)

    @hookimpl
    def pm_guarantor(self, practice_id: str, guarantor_id: str) -> dict[str, Any] | None:
        return self.database.guarantor(practice_id, guarantor_id)

    @hookimpl
    def pm_quickpay_link(self, practice_id: str, guarantor_id: str, amount: Decimal) -> str:
        return f"{self.base_url}/pay/{quote(practice_id)}/{quote(guarantor_id)}?amount={amount}"

    @hookimpl
    def pm_update_contact(
        self,
        practice_id: str,
        entity: dict[str, Any],
        contact: dict[str, Any],
        context: dict[str, Any],
    ) -> bool:
        return self.database.save_contact(practice_id, entity, contact)

    @hookimpl
    def pm_set_opt_out(
        self,
        practice_id: str,
        mode: str,
        address: str,
        opted_out: bool,
        context: dict[str, Any],
    ) -> bool:
        return self.database.set_contact_opt_out(practice_id, mode, address, opted_out, context)
