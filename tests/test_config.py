"""Configuration: the host's ``pm_plugin_config`` wins over the environment, which wins over
the defaults under ``$ONDEMAND_HOME``; an invalid configuration is ``invalid_config`` naming the
field."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pluggy
import pytest

from ondemand_plugin.boundary import contracts
from ondemand_plugin.boundary.config import Config, load_config, read_config_file
from ondemand_plugin.boundary.model import Practice
from ondemand_plugin.errors import OnDemandError
from ondemand_plugin.rules.criteria import send_window_refusal
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
    assert load_config({"send_window": {"start": "00:00", "end": "24:00"}}).send_window is None


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
        ({"database_url": "oracle://db.example.com/ondemand"}, "database_url"),
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
    env.setenv("ONDEMAND_DATABASE_URL", "oracle://localhost/ondemand")
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


# null means unset


def test_null_for_a_setting_of_the_plugin_means_unset(env: pytest.MonkeyPatch) -> None:
    defaults = load_config(None)
    config = load_config(
        {
            "database_url": None,
            "send_window": None,
            "deadline_seconds": None,
            "channels": {"text": None, "email": "outbox"},
            "smtp": None,
            "twilio_sms": {
                "account_sid": "AC" + "0" * 32,
                "auth_token": "token",
                "from": None,
                "timeout_seconds": None,
            },
        }
    )
    assert (config.database_url, config.send_window, config.deadline_seconds) == (
        defaults.database_url,
        defaults.send_window,
        defaults.deadline_seconds,
    )
    assert config.channels == defaults.channels
    assert "smtp" not in config.raw
    assert config.raw["twilio_sms"] == {"account_sid": "AC" + "0" * 32, "auth_token": "token"}


def test_a_third_party_channels_section_is_passed_on_as_given(env: pytest.MonkeyPatch) -> None:
    config = load_config({"pigeon": {"loft": None}, "raven": None})
    assert config.raw["pigeon"] == {"loft": None}
    assert "raven" not in config.raw


def test_a_required_setting_given_as_null_is_missing(env: pytest.MonkeyPatch) -> None:
    with pytest.raises(OnDemandError) as refusal:
        load_config({"smtp": {"host": None}})
    assert refusal.value.field == "smtp"
    assert "'host' is a required property" in refusal.value.message


# A refused pattern says the expected form


def test_a_refused_pattern_says_the_expected_form(env: pytest.MonkeyPatch) -> None:
    with pytest.raises(OnDemandError) as refusal:
        load_config({"twilio_sms": {"account_sid": "AC123", "auth_token": "token"}})
    assert "twilio_sms.account_sid must be AC followed by 32 letters or digits" in (
        refusal.value.message
    )
    assert "AC123" not in refusal.value.message


def patterns_without_expected_form(node: object, where: str) -> Iterator[str]:
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from patterns_without_expected_form(item, f"{where}/{index}")
    elif isinstance(node, dict):
        if "pattern" in node and not isinstance(node.get("x-expected"), str):
            yield where
        for key, value in node.items():
            if key != "pattern":
                yield from patterns_without_expected_form(value, f"{where}/{key}")


def test_every_pattern_in_the_contracts_says_the_form_it_expects() -> None:
    missing = [
        where
        for name in contracts.schema_names()
        for where in patterns_without_expected_form(
            json.loads((contracts.contracts_dir() / f"{name}.json").read_text("utf-8")), name
        )
    ]
    assert missing == []


# The configuration file


CONFIG_SETTINGS: dict[str, Any] = {
    "database_url": "sqlite:////var/lib/ondemand/ondemand.db",
    "channels": {"text": ["twilio_sms", "outbox"]},
    "send_window": {"start": "07:00", "end": "20:00"},
    "twilio_sms": {"account_sid": "AC" + "a1" * 16, "auth_token": "token", "from": "+15035550100"},
}
CONFIG_TOML = (
    """\
database_url = "sqlite:////var/lib/ondemand/ondemand.db"
send_window = { start = "07:00", end = "20:00" }

[channels]
text = ["twilio_sms", "outbox"]

[twilio_sms]
account_sid = "AC"""
    + "a1" * 16
    + """"
auth_token = "token"
from = "+15035550100"
"""
)


def test_a_configuration_file_is_read_alike_from_json_and_toml(tmp_path: Path) -> None:
    (tmp_path / "ondemand.json").write_text(json.dumps(CONFIG_SETTINGS), encoding="utf-8")
    (tmp_path / "ondemand.toml").write_text(CONFIG_TOML, encoding="utf-8")
    assert read_config_file(tmp_path / "ondemand.json") == CONFIG_SETTINGS
    assert read_config_file(str(tmp_path / "ondemand.toml")) == CONFIG_SETTINGS


def test_a_host_answering_the_configuration_file_runs_with_its_settings(
    env: pytest.MonkeyPatch, tmp_path: Path, started: list[pluggy.PluginManager]
) -> None:
    settings = {"database_url": sqlite_url(tmp_path / "file.db"), "deadline_seconds": 4}
    (tmp_path / "ondemand.json").write_text(json.dumps(settings), encoding="utf-8")
    config = start(started, read_config_file(tmp_path / "ondemand.json"))
    assert (config.database_url, config.deadline_seconds) == (
        settings["database_url"],
        4,
    )


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        ("missing.json", None, "does not exist"),
        ("ondemand.yaml", "database_url: x", "must be JSON (ending in .json) or TOML"),
        ("ondemand.json", '{"channels": ', "is not valid JSON"),
        ("ondemand.toml", "channels = [", "is not valid TOML"),
        ("ondemand.json", '["outbox"]', "must hold an object of settings"),
        ("ondemand.json", '{"deadline_seconds": 0}', "deadline_seconds must be more than 0"),
        ("ondemand.json", '{"send_window": {"start": "21:00", "end": "08:00"}}', "end after"),
        ("ondemand.toml", 'database_url = "oracle://db"', "database_url must be a URL starting"),
    ],
    ids=["missing", "extension", "json", "toml", "not-an-object", "schema", "window", "pattern"],
)
def test_a_bad_configuration_file_is_refused_naming_the_file_and_the_fix(
    tmp_path: Path, name: str, text: str | None, problem: str
) -> None:
    path = tmp_path / name
    if text is not None:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(OnDemandError) as refusal:
        read_config_file(path)
    assert refusal.value.code == "invalid_config"
    assert str(path) in refusal.value.message
    assert problem in refusal.value.message
    assert refusal.value.message.endswith(".")
