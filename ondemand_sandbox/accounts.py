"""The account manager's switch of the premium add-on, through the public ``ondemand`` command.

No hook switches the add-on: it is the account manager's business, not a dashboard's. The sandbox
runs ``ondemand addon enable|disable|log`` on the plugin's database, as an account manager would,
so it needs nothing of the plugin's inside.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any


class SwitchRefused(Exception):
    """The command refused the switch; the message is its sentence."""


def ondemand_command(database_url: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ondemand_plugin", "--database-url", database_url, *arguments],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def switch_addon(database_url: str, practice_id: str, enabled: bool, by: str, reason: str) -> str:
    """Switch the add-on; returns what the command said."""
    done = ondemand_command(
        database_url,
        "addon",
        "enable" if enabled else "disable",
        "--practice",
        practice_id,
        "--by",
        by,
        "--reason",
        reason,
    )
    if done.returncode != 0:
        raise SwitchRefused(done.stderr.strip().removeprefix("error: ") or done.stdout.strip())
    return done.stdout.strip()


def addon_log(database_url: str, practice_id: str) -> list[dict[str, Any]]:
    """Every switch of the add-on for the practice, newest first."""
    done = ondemand_command(database_url, "addon", "log", "--practice", practice_id, "--json")
    if done.returncode != 0:
        raise SwitchRefused(done.stderr.strip().removeprefix("error: "))
    changes: list[dict[str, Any]] = json.loads(done.stdout)
    return changes[::-1]
