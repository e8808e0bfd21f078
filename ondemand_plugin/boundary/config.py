"""The plugin's configuration: the host's ``pm_plugin_config``, else the environment, else defaults.

Each key is taken from the first source that has it, and the whole is validated against
``contracts/plugin-config.json``. A ``null`` for a setting of the plugin's own means unset, as if
the key were absent (TOML has no null, so both file formats say the same things).

``read_config_file`` reads the same settings from a JSON or TOML file: the ``ondemand`` command
takes one (``--config FILE`` or ``ONDEMAND_CONFIG``), and a host's ``pm_plugin_config`` can answer
the same file, so that the command and the host route alike.
"""

from __future__ import annotations

import copy
import json
import math
import os
import tomllib
from collections.abc import Mapping
from datetime import time
from pathlib import Path
from typing import Any

import attrs

from hookspecs.types import MODES
from ondemand_plugin.boundary import contracts
from ondemand_plugin.errors import ConfigError

DEFAULT_SEND_WINDOW = {"start": "08:00", "end": "21:00"}
# The send window that never refuses: the whole day.
ALL_DAY = {"start": "00:00", "end": "24:00"}
DEFAULT_DEADLINE_SECONDS = 10.0
# Defaults kept in the configuration itself, so that channels (which read it) see them too.
PACING_DEFAULTS: Mapping[str, Any] = {
    "text_validity_seconds": 900,
    "recipient_limit": {"messages": 3, "hours": 24},
    "repeat_window_seconds": 600,
}
DEFAULT_CHANNEL = "outbox"
DEFAULT_LINK_TTL_SECONDS = 86_400
CONFIG_FILE_VARIABLE = "ONDEMAND_CONFIG"
HOST_SOURCE = "what pm_plugin_config(plugin_name='ondemand') returns or the ONDEMAND_* variables"


@attrs.frozen
class SendWindow:
    """Hours of the practice's local day during which messages may go out."""

    start: time
    end: time

    def contains(self, moment: time) -> bool:
        return self.start <= moment < self.end


@attrs.frozen
class RecipientLimit:
    """At most ``messages`` on-demand messages to one address within ``hours``."""

    messages: int
    hours: float


@attrs.frozen
class Config:
    database_url: str
    outbox_dir: Path
    channels: Mapping[str, tuple[str, ...]]
    send_window: SendWindow | None  # None: sent at any hour
    deadline_seconds: float
    recipient_limit: RecipientLimit | None  # None: no limit
    repeat_window_seconds: int  # 0: repeats are not asked about
    # Where tracked pay links point (ends in "/"); None: the host's QuickPay link goes out as is.
    link_base_url: str | None
    link_ttl_seconds: int
    raw: Mapping[str, Any] = attrs.field(repr=False)


def ondemand_home(environ: Mapping[str, str]) -> Path:
    home = environ.get("ONDEMAND_HOME")
    if home:
        return Path(home)
    return Path.home() / ".local" / "share" / "ondemand"


def sqlite_url(path: Path) -> str:
    return "sqlite:///" + str(path.resolve())


def load_config(
    host_config: Mapping[str, Any] | None,
    environ: Mapping[str, str] = os.environ,
    source: str = HOST_SOURCE,
) -> Config:
    """Merge the host's settings over the environment's over the defaults, and validate them.

    ``source`` says, in a refusal, where to fix a bad setting."""
    merged: dict[str, Any] = {}
    home = ondemand_home(environ)
    merged["database_url"] = environ.get("ONDEMAND_DATABASE_URL") or sqlite_url(
        home / "ondemand.db"
    )
    merged["outbox_dir"] = environ.get("ONDEMAND_OUTBOX_DIR") or str(home / "outbox")
    merged.update(copy.deepcopy(PACING_DEFAULTS))
    merged.update(without_nulls(host_config or {}))
    if host_config and "recipient_limit" in host_config and host_config["recipient_limit"] is None:
        merged["recipient_limit"] = None  # null turns the limit off, rather than meaning unset
    return _config(merged, source)


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The settings of a JSON (``.json``) or TOML (``.toml``) configuration file, checked as
    ``load_config`` checks a host's: what ``pm_plugin_config(plugin_name='ondemand')`` may return.

    A file that is missing, unreadable, of another kind or invalid is a ``ConfigError`` naming
    the file and what to fix in it."""
    file = Path(path)
    settings = _parse(file, _file_text(file))
    if not isinstance(settings, dict):
        raise ConfigError(
            f"The On-Demand configuration file {file} must hold an object of settings "
            '(for example {"database_url": "sqlite:////var/lib/ondemand/ondemand.db"}).',
        )
    # Checked with the defaults filled in, as load_config would take it from a host.
    load_config(settings, environ={}, source=f"the configuration file {file}")
    return settings


def _file_text(file: Path) -> str:
    if file.suffix not in (".json", ".toml"):
        raise ConfigError(
            f"The On-Demand configuration file {file} must be JSON (ending in .json) or TOML "
            "(ending in .toml). Rename it, or name another file."
        )
    try:
        return file.read_text(encoding="utf-8")
    except FileNotFoundError:
        problem = "does not exist"
    except IsADirectoryError:
        problem = "is a folder"
    except (OSError, UnicodeDecodeError) as error:
        problem = f"cannot be read ({type(error).__name__}: {error})"
    raise ConfigError(
        f"The On-Demand configuration file {file} {problem}. Create it, or point --config or "
        f"{CONFIG_FILE_VARIABLE} at the right file.",
    )


def _parse(file: Path, text: str) -> object:
    try:
        if file.suffix == ".toml":
            return tomllib.loads(text)
        return json.loads(text)
    except tomllib.TOMLDecodeError as error:
        problem = f"is not valid TOML ({error})"
    except json.JSONDecodeError as error:
        problem = f"is not valid JSON ({error.msg} at line {error.lineno}, column {error.colno})"
    raise ConfigError(f"The On-Demand configuration file {file} {problem}. Fix the file.")


def without_nulls(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` without the keys set to ``null``, in the plugin's own sections as well.

    A third-party channel's section (a key the schema does not know) is its own business: it is
    passed on as given, unless it is ``null`` as a whole."""
    known = contracts.schema("plugin-config")["properties"]
    return {
        key: _drop_nulls(value) if key in known else value
        for key, value in settings.items()
        if value is not None
    }


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _drop_nulls(item) for key, item in value.items() if item is not None}
    return value


def _config(merged: dict[str, Any], source: str) -> Config:
    contracts.check(
        "plugin-config", merged, lambda path, problem: _config_error(path, problem, source)
    )
    try:
        return Config(
            database_url=merged["database_url"],
            outbox_dir=Path(merged["outbox_dir"]),
            channels=_channels(merged.get("channels", {})),
            send_window=_send_window(merged.get("send_window", DEFAULT_SEND_WINDOW)),
            deadline_seconds=_deadline(merged.get("deadline_seconds", DEFAULT_DEADLINE_SECONDS)),
            recipient_limit=_recipient_limit(merged["recipient_limit"]),
            repeat_window_seconds=merged["repeat_window_seconds"],
            link_base_url=merged.get("link_base_url"),
            link_ttl_seconds=merged.get("link_ttl_seconds", DEFAULT_LINK_TTL_SECONDS),
            raw=merged,
        )
    except ConfigError as error:
        raise ConfigError(f"{error.message} Fix {source}.", field=error.field) from None


def _config_error(path: str, problem: str, source: str) -> ConfigError:
    return ConfigError(
        f"The On-Demand plugin's configuration is invalid: {path} {problem}. Fix {source}.",
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


def _recipient_limit(limit: Mapping[str, Any] | None) -> RecipientLimit | None:
    if limit is None:
        return None
    if math.isnan(limit["hours"]):
        raise ConfigError(
            "The On-Demand recipient_limit.hours must be a number of hours, not NaN.",
            field="recipient_limit.hours",
        )
    return RecipientLimit(messages=limit["messages"], hours=float(limit["hours"]))


def _channels(configured: Mapping[str, str | list[str]]) -> dict[str, tuple[str, ...]]:
    channels: dict[str, tuple[str, ...]] = {}
    for mode in MODES:
        names = configured.get(mode, DEFAULT_CHANNEL)
        channels[mode] = (names,) if isinstance(names, str) else tuple(names)
    return channels


def _send_window(window: Mapping[str, str]) -> SendWindow | None:
    """The window; None for one that spans the whole day, which needs no check."""
    if dict(window) == ALL_DAY:
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
