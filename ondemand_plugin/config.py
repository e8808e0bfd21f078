"""The plugin's configuration: the host's ``pm_plugin_config``, else the environment, else defaults.

Each key is taken from the first source that has it, and the whole is validated against
``contracts/plugin-config.json``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from datetime import time
from pathlib import Path
from typing import Any

import attrs

from hookspecs.types import MODES
from ondemand_plugin import contracts
from ondemand_plugin.errors import ConfigError

DEFAULT_SEND_WINDOW = {"start": "08:00", "end": "21:00"}
DEFAULT_DEADLINE_SECONDS = 10.0
DEFAULT_CHANNEL = "outbox"


@attrs.frozen
class SendWindow:
    """Hours of the practice's local day during which messages may go out."""

    start: time
    end: time

    def contains(self, moment: time) -> bool:
        return self.start <= moment < self.end


@attrs.frozen
class Config:
    database_url: str
    outbox_dir: Path
    channels: Mapping[str, tuple[str, ...]]
    send_window: SendWindow | None
    deadline_seconds: float
    raw: Mapping[str, Any] = attrs.field(repr=False)


def ondemand_home(environ: Mapping[str, str]) -> Path:
    home = environ.get("ONDEMAND_HOME")
    if home:
        return Path(home)
    return Path.home() / ".local" / "share" / "ondemand"


def sqlite_url(path: Path) -> str:
    return "sqlite:///" + str(path.resolve())


def load_config(
    host_config: Mapping[str, Any] | None, environ: Mapping[str, str] = os.environ
) -> Config:
    """Merge the host's settings over the environment's over the defaults, and validate them."""
    merged: dict[str, Any] = {}
    home = ondemand_home(environ)
    merged["database_url"] = environ.get("ONDEMAND_DATABASE_URL") or sqlite_url(
        home / "ondemand.db"
    )
    merged["outbox_dir"] = environ.get("ONDEMAND_OUTBOX_DIR") or str(home / "outbox")
    merged.update(host_config or {})
    contracts.check("plugin-config", merged, _config_error)
    return Config(
        database_url=merged["database_url"],
        outbox_dir=Path(merged["outbox_dir"]),
        channels=_channels(merged.get("channels", {})),
        send_window=_send_window(merged.get("send_window", DEFAULT_SEND_WINDOW)),
        deadline_seconds=_deadline(merged.get("deadline_seconds", DEFAULT_DEADLINE_SECONDS)),
        raw=merged,
    )


def _config_error(path: str, problem: str) -> ConfigError:
    return ConfigError(
        f"The On-Demand plugin's configuration is invalid: {path} {problem}. "
        "Fix what pm_plugin_config(plugin_name='ondemand') returns or the ONDEMAND_* variables.",
        field=path,
    )


def _deadline(seconds: float) -> float:
    # JSON Schema's bounds let NaN through: every comparison with it is false.
    if math.isnan(seconds):
        raise ConfigError(
            "The On-Demand deadline_seconds must be a number of seconds above 0 and at most 300, "
            "not NaN.",
            field="deadline_seconds",
        )
    return float(seconds)


def _channels(configured: Mapping[str, str | list[str]]) -> dict[str, tuple[str, ...]]:
    channels: dict[str, tuple[str, ...]] = {}
    for mode in MODES:
        names = configured.get(mode, DEFAULT_CHANNEL)
        channels[mode] = (names,) if isinstance(names, str) else tuple(names)
    return channels


def _send_window(window: Mapping[str, str] | None) -> SendWindow | None:
    if window is None:
        return None
    start, end = _clock_time(window["start"]), _clock_time(window["end"])
    if end <= start:
        raise ConfigError(
            "The On-Demand send_window must end after it starts (for example 08:00 to 21:00).",
            field="send_window",
        )
    return SendWindow(start=start, end=end)


def _clock_time(text: str) -> time:
    if text == "24:00":
        return time.max
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))
