"""Configuration: the host's ``pm_plugin_config`` wins over the environment, which wins over
the defaults under ``$ONDEMAND_HOME``; an invalid configuration is ``invalid_config`` naming the
field."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pluggy
import pytest

from ondemand_plugin.config import Config, load_config
from ondemand_plugin.criteria import send_window_refusal
from ondemand_plugin.errors import OnDemandError
from ondemand_plugin.model import Practice
from ondemand_plugin.testing import build_plugin_manager, config_of, demo_host


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An environment with ONDEMAND_HOME under tmp_path and no other ONDEMAND_* setting."""
    for name in ("ONDEMAND_DATABASE_URL", "ONDEMAND_OUTBOX_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ONDEMAND_HOME", str(tmp_path / "home"))
    return monkeypatch


@pytest.fixture
def started() -> Iterator[list[pluggy.PluginManager]]:
    managers: list[pluggy.PluginManager] = []
    yield managers
    for pm in managers:
        pm.hook.pm_unconfigure(plugin_manager=pm)


def start(managers: list[pluggy.PluginManager], host_config: dict[str, Any] | None) -> Config:
    """The plugin as a host starts it; the configuration it runs with."""
    pm = build_plugin_manager(demo_host(host_config))
    managers.append(pm)
    return config_of(pm)


def sqlite_url(path: Path) -> str:
    return "sqlite:///" + str(path)


# Where each setting comes from


def test_without_host_config_or_environment_everything_lives_under_ondemand_home(
    env: pytest.MonkeyPatch, tmp_path: Path, started: list[pluggy.PluginManager]
) -> None:
    home = tmp_path / "home"
    config = start(started, None)
    assert config.database_url == sqlite_url(home / "ondemand.db")
    assert config.outbox_dir == home / "outbox"
    assert (home / "ondemand.db").is_file()


def test_without_ondemand_home_the_default_is_the_users_share_folder(
    env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env.delenv("ONDEMAND_HOME")
    env.setenv("HOME", str(tmp_path / "user"))
    config = load_config(None)
    folder = tmp_path / "user" / ".local" / "share" / "ondemand"
    assert config.database_url == sqlite_url(folder / "ondemand.db")
    assert config.outbox_dir == folder / "outbox"


def test_the_environment_wins_over_the_defaults(
    env: pytest.MonkeyPatch, tmp_path: Path, started: list[pluggy.PluginManager]
) -> None:
    env.setenv("ONDEMAND_DATABASE_URL", sqlite_url(tmp_path / "env.db"))
    env.setenv("ONDEMAND_OUTBOX_DIR", str(tmp_path / "env-outbox"))
    config = start(started, None)
    assert config.database_url == sqlite_url(tmp_path / "env.db")
    assert config.outbox_dir == tmp_path / "env-outbox"
    assert (tmp_path / "env.db").is_file()
    assert not (tmp_path / "home" / "ondemand.db").exists()


def test_the_host_config_wins_over_the_environment_key_by_key(
    env: pytest.MonkeyPatch, tmp_path: Path, started: list[pluggy.PluginManager]
) -> None:
    env.setenv("ONDEMAND_DATABASE_URL", sqlite_url(tmp_path / "env.db"))
    env.setenv("ONDEMAND_OUTBOX_DIR", str(tmp_path / "env-outbox"))
    config = start(started, {"database_url": sqlite_url(tmp_path / "host.db")})
    assert config.database_url == sqlite_url(tmp_path / "host.db")
    assert config.outbox_dir == tmp_path / "env-outbox"  # the host did not set it
    assert (tmp_path / "host.db").is_file()
    assert not (tmp_path / "env.db").exists()


def test_the_defaults_route_every_mode_to_the_outbox_within_daytime_hours(
    env: pytest.MonkeyPatch,
) -> None:
    config = load_config(None)
    assert dict(config.channels) == {
        "email": ("outbox",),
        "text": ("outbox",),
        "voice": ("outbox",),
    }
    assert config.send_window is not None
    assert (config.send_window.start, config.send_window.end) == (time(8), time(21))
    assert config.deadline_seconds == 10


def test_host_settings_are_taken_as_given(env: pytest.MonkeyPatch) -> None:
    config = load_config(
        {
            "channels": {"text": ["sms", "outbox"]},
            "send_window": {"start": "07:30", "end": "24:00"},
            "deadline_seconds": 2.5,
        }
    )
    assert config.channels["text"] == ("sms", "outbox")
    assert config.channels["email"] == ("outbox",)
    assert config.send_window is not None
    assert config.send_window.start == time(7, 30)
    assert config.send_window.contains(time(23, 59, 30))
    assert config.deadline_seconds == 2.5
    assert load_config({"send_window": None}).send_window is None


# Invalid configuration


@pytest.mark.parametrize(
    ("host_config", "field"),
    [
        ({"send_window": {"start": "21:00", "end": "08:00"}}, "send_window"),
        ({"send_window": {"start": "8am", "end": "21:00"}}, "send_window.start"),
        ({"send_window": {"start": "08:00"}}, "send_window"),
        ({"send_window": "always"}, "send_window"),
        ({"deadline_seconds": 0}, "deadline_seconds"),
        ({"deadline_seconds": -1}, "deadline_seconds"),
        ({"deadline_seconds": "10"}, "deadline_seconds"),
        ({"channels": {"fax": "outbox"}}, "channels"),
        ({"channels": {"text": []}}, "channels.text"),
        ({"database_url": "mysql://db.example.com/ondemand"}, "database_url"),
        ({"database_url": "postgresql:/db.example.com/ondemand"}, "database_url"),
    ],
)
def test_an_invalid_setting_is_invalid_config_naming_the_field(
    env: pytest.MonkeyPatch, host_config: dict[str, Any], field: str
) -> None:
    with pytest.raises(OnDemandError) as refusal:
        load_config(host_config)
    assert refusal.value.code == "invalid_config"
    assert refusal.value.field == field
    assert field.split(".")[0] in refusal.value.message


def test_an_invalid_environment_setting_is_invalid_config(env: pytest.MonkeyPatch) -> None:
    env.setenv("ONDEMAND_DATABASE_URL", "mysql://localhost/ondemand")
    with pytest.raises(OnDemandError) as refusal:
        load_config(None)
    assert (refusal.value.code, refusal.value.field) == ("invalid_config", "database_url")


def test_an_invalid_host_config_stops_the_plugin_at_configure_time(
    env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    host = demo_host({"deadline_seconds": 0, "database_url": sqlite_url(tmp_path / "x.db")})
    with pytest.raises(OnDemandError) as refusal:
        build_plugin_manager(host)
    assert (refusal.value.code, refusal.value.field) == ("invalid_config", "deadline_seconds")
    assert not (tmp_path / "x.db").exists()


def test_a_window_open_until_midnight_says_so_in_its_refusal() -> None:
    config = load_config({"send_window": {"start": "23:00", "end": "24:00"}}, environ={})
    practice = Practice("p", "P", "+15035550100", ZoneInfo("UTC"), None, None)
    refusal = send_window_refusal(
        config.send_window, practice, datetime(2026, 1, 1, 12, tzinfo=UTC)
    )
    assert refusal is not None and "between 23:00 and 24:00" in refusal.message
    ends_at_2359 = load_config({"send_window": {"start": "08:00", "end": "23:59"}}, environ={})
    refusal = send_window_refusal(
        ends_at_2359.send_window, practice, datetime(2026, 1, 1, 5, tzinfo=UTC)
    )
    assert refusal is not None and "between 08:00 and 23:59" in refusal.message
