"""The ``ondemand`` command, run as the installed console script in a real subprocess: the add-on
switch with its audit trail (R1), templates (R7), history (R4), the plugin list, and refusals."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pluggy
import pytest
from conftest import CONTEXT, assert_valid, enable_addon, host_on, on_each_backend, send_to_mei

import ondemand_plugin
from ondemand_plugin import MANAGE_ACTION_ID, SEND_ACTION_ID
from ondemand_plugin.plugin import instance_of
from ondemand_plugin.stores import backend_for, open_store
from ondemand_plugin.stores.migrate import HEAD
from ondemand_plugin.testing import ReferenceHost, build_plugin_manager, store_of

ONDEMAND = Path(sys.executable).parent / "ondemand"
SWITCH_SECONDS = 5.0
Run = Callable[..., subprocess.CompletedProcess[str]]


def run_ondemand(
    *args: str, home: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {
        name: value
        for name, value in os.environ.items()
        if name not in ("ONDEMAND_DATABASE_URL", "ONDEMAND_OUTBOX_DIR", "ONDEMAND_CONFIG")
    }
    environ.update({"ONDEMAND_HOME": str(home), "HOME": str(home), **(env or {})})
    return subprocess.run(
        [str(ONDEMAND), *args], env=environ, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def backend() -> str:
    """SQLite; the tests of what the command shares with running hosts run on each backend."""
    return "sqlite"


@pytest.fixture
def ondemand_host(database_url: str, tmp_path: Path) -> ReferenceHost:
    """The running host, on the database the command is pointed at."""
    return host_on(database_url, tmp_path)


@pytest.fixture
def attempt(tmp_path: Path, database_url: str) -> Run:
    """``ondemand --database-url <the test database> ARGS``, whatever its exit status."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_ondemand("--database-url", database_url, *args, home=tmp_path / "home")

    return run


@pytest.fixture
def ondemand(attempt: Run) -> Run:
    """``ondemand --database-url <the test database> ARGS``; fails unless it exits with 0."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        result = attempt(*args)
        assert result.returncode == 0, result.stderr
        return result

    return run


def refused(result: subprocess.CompletedProcess[str], code: str) -> str:
    """The refusal's sentence, after checking it is shown as the CLI shows every refusal."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    match = re.fullmatch(r"error: (.+) \[([a-z_]+)\]\n", result.stderr)
    assert match, result.stderr
    assert match.group(2) == code
    return match.group(1)


def actions(pm: pluggy.PluginManager) -> list[dict[str, Any]]:
    answers = pm.hook.pm_dashboard_actions(
        dashboard="patient", subject={"type": "patient", "id": "p-lily"}, context=CONTEXT
    )
    return [action for answer in answers for action in answer]


# R1: the add-on switch and its audit trail


@on_each_backend
def test_addon_switches_keep_who_switched_it_when_and_why(ondemand: Run) -> None:
    ondemand("addon", "enable", "--practice", "demo", "--by", "Sam Rivera", "--reason", "Signed")
    ondemand("addon", "disable", "--practice", "demo", "--by", "Kim Lee")
    log = json.loads(ondemand("addon", "log", "--practice", "demo", "--json").stdout)
    assert [(c["enabled"], c["changed_by"], c["reason"]) for c in log] == [
        (True, "Sam Rivera", "Signed"),
        (False, "Kim Lee", None),
    ]
    times = [datetime.fromisoformat(change["changed_at"]) for change in log]
    assert all(moment.tzinfo is not None for moment in times) and times[0] <= times[1]
    text = ondemand("addon", "log", "--practice", "demo").stdout.splitlines()
    assert "ON " in text[0] and "Sam Rivera: Signed" in text[0]
    assert "OFF" in text[1] and "Kim Lee" in text[1]


def test_addon_status_says_whether_the_practice_has_it_and_its_last_switch(ondemand: Run) -> None:
    never = json.loads(ondemand("addon", "status", "--practice", "demo", "--json").stdout)
    assert never == {"practice_id": "demo", "enabled": False, "last_change": None}
    ondemand("addon", "enable", "--practice", "demo", "--by", "Sam Rivera")
    status = json.loads(ondemand("addon", "status", "--practice", "demo", "--json").stdout)
    assert status["enabled"] is True
    assert status["last_change"]["changed_by"] == "Sam Rivera"
    other = json.loads(ondemand("addon", "status", "--practice", "other", "--json").stdout)
    assert other["enabled"] is False
    assert ondemand("addon", "status", "--practice", "demo").stdout.startswith("ON for practice")


@on_each_backend
def test_an_addon_switch_reaches_a_running_host_within_5_seconds(
    ondemand_pm: pluggy.PluginManager, ondemand: Run
) -> None:
    assert actions(ondemand_pm) == []  # the running host has now cached "off"
    ondemand("addon", "enable", "--practice", "demo", "--by", "Sam Rivera")
    give_up_at = time.monotonic() + SWITCH_SECONDS
    while not actions(ondemand_pm) and time.monotonic() < give_up_at:
        time.sleep(0.05)
    assert [action["id"] for action in actions(ondemand_pm)] == [SEND_ACTION_ID]


def test_a_switch_to_the_state_it_has_says_so_and_records_nothing(ondemand: Run) -> None:
    off = ondemand("addon", "disable", "--practice", "demo", "--by", "Kim Lee").stdout
    assert "already OFF for practice demo: nothing recorded" in off
    ondemand("addon", "enable", "--practice", "demo", "--by", "Sam Rivera", "--reason", "Signed")
    again = ondemand("addon", "enable", "--practice", "demo", "--by", "Kim Lee").stdout
    assert "already ON for practice demo since" in again and "(by Sam Rivera)" in again
    assert again.rstrip().endswith("nothing recorded.")
    log = json.loads(ondemand("addon", "log", "--practice", "demo", "--json").stdout)
    assert [change["changed_by"] for change in log] == ["Sam Rivera"]


def test_a_switch_without_a_name_is_refused_and_not_logged(ondemand: Run, attempt: Run) -> None:
    result = attempt("addon", "enable", "--practice", "demo", "--by", "  ")
    assert "--by NAME" in refused(result, "invalid_request")
    assert json.loads(ondemand("addon", "log", "--practice", "demo", "--json").stdout) == []


def test_the_database_is_the_option_else_the_environment_else_the_home_folder(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    enable = ("addon", "enable", "--practice", "demo", "--by", "Sam Rivera")
    status = ("addon", "status", "--practice", "demo", "--json")
    assert run_ondemand(*enable, home=home).returncode == 0
    assert (home / "ondemand.db").is_file()

    elsewhere = {"ONDEMAND_DATABASE_URL": "sqlite:///" + str(tmp_path / "env.db")}
    from_env = json.loads(run_ondemand(*status, home=home, env=elsewhere).stdout)
    assert from_env["enabled"] is False and (tmp_path / "env.db").is_file()

    home_url = "sqlite:///" + str(home / "ondemand.db")
    option = run_ondemand("--database-url", home_url, *status, home=home, env=elsewhere)
    assert json.loads(option.stdout)["enabled"] is True


def test_the_configuration_file_names_the_database_and_the_option_overrides_it(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    config = tmp_path / "ondemand.toml"
    config.write_text(f'database_url = "sqlite:///{tmp_path / "hosts.db"}"\n', encoding="utf-8")
    enable = ("addon", "enable", "--practice", "demo", "--by", "Sam Rivera")
    status = ("addon", "status", "--practice", "demo", "--json")
    elsewhere = {"ONDEMAND_DATABASE_URL": "sqlite:///" + str(tmp_path / "env.db")}

    assert run_ondemand("--config", str(config), *enable, home=home, env=elsewhere).returncode == 0
    assert (tmp_path / "hosts.db").is_file() and not (tmp_path / "env.db").exists()
    from_variable = run_ondemand(*status, home=home, env={"ONDEMAND_CONFIG": str(config)})
    assert json.loads(from_variable.stdout)["enabled"] is True
    overridden = run_ondemand(
        "--database-url", "sqlite:///" + str(tmp_path / "other.db"), "--config", str(config),
        *status, home=home,
    )  # fmt: skip
    assert json.loads(overridden.stdout)["enabled"] is False
    assert not (home / "ondemand.db").exists()


def test_templates_and_history_read_the_configuration_files_database(
    tmp_path: Path, ondemand_pm: pluggy.PluginManager, database_url: str
) -> None:
    config = tmp_path / "ondemand.json"
    config.write_text(json.dumps({"database_url": database_url}), encoding="utf-8")
    enable_addon(ondemand_pm)
    sent = send_to_mei(ondemand_pm)
    env = {"ONDEMAND_CONFIG": str(config)}
    home = tmp_path / "home"
    added = run_ondemand(
        "templates", "add", "--practice", "demo", "--label", "Hi", "--mode", "text",
        "--body", "Hi", "--json", home=home, env=env,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    listed = run_ondemand("templates", "list", "--practice", "demo", "--json", home=home, env=env)
    assert [template["label"] for template in json.loads(listed.stdout)] == ["Hi"]
    history = run_ondemand(
        "history", "--practice", "demo", "--guarantor", "g-mei", "--json", home=home, env=env
    )
    assert [entry["id"] for entry in json.loads(history.stdout)] == [sent["notification_id"]]
    assert not home.exists()


@pytest.mark.parametrize(
    "command",
    [
        ("addon", "status", "--practice", "demo"),
        ("templates", "list", "--practice", "demo"),
        ("history", "--practice", "demo", "--guarantor", "g-mei"),
        ("plugins",),
        ("recover",),
        ("demo",),
    ],
    ids=lambda command: command[0],
)
def test_every_command_refuses_a_bad_configuration_file_before_it_acts(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    config = tmp_path / "ondemand.json"
    config.write_text('{"deadline_seconds": "ten"}', encoding="utf-8")
    home = tmp_path / "home"
    sentence = refused(run_ondemand("--config", str(config), *command, home=home), "invalid_config")
    assert str(config) in sentence and "deadline_seconds" in sentence
    assert not home.exists()


# R7: templates


def template_json(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    template: dict[str, Any] = json.loads(result.stdout)
    assert_valid("template", template)
    return template


@on_each_backend
def test_templates_can_be_added_listed_shown_edited_copied_and_deleted(ondemand: Run) -> None:
    practice = ("--practice", "demo", "--json")
    added = template_json(
        ondemand(
            *("templates", "add", *practice, "--label", "Pay by e-mail", "--mode", "email"),
            *("--body", "Hi {{GuarantorFirstName}}: {{QuickPayLink}}", "--subject", "Balance"),
            *("--sender-email", "Billing@Maple.example.com"),
        )
    )
    assert (added["label"], added["mode"], added["active"]) == ("Pay by e-mail", "email", True)
    assert added["sender_email"] == "Billing@maple.example.com"  # normalised as when saved

    shown = template_json(ondemand("templates", "show", *practice, added["id"]))
    assert shown == added

    edited = template_json(
        ondemand("templates", "edit", *practice, added["id"], "--inactive", "--label", "Old")
    )
    assert (edited["label"], edited["active"], edited["body"]) == ("Old", False, added["body"])

    copied = template_json(ondemand("templates", "copy", *practice, added["id"]))
    assert copied["id"] != added["id"] and copied["label"] == "Copy of Old"

    listed = json.loads(ondemand("templates", "list", *practice).stdout)
    for template in listed:
        assert_valid("template", template)
    assert {template["id"] for template in listed} == {added["id"], copied["id"]}

    deleted = template_json(ondemand("templates", "delete", *practice, added["id"]))
    assert deleted["id"] == added["id"]
    remaining = json.loads(ondemand("templates", "list", *practice).stdout)
    assert [template["id"] for template in remaining] == [copied["id"]]


def test_templates_read_as_text_without_json(ondemand: Run) -> None:
    ondemand(
        *("templates", "add", "--practice", "demo", "--label", "Quick text", "--mode", "text"),
        *("--body", "Pay here: {{QuickPayLink}}", "--inactive"),
    )
    listing = ondemand("templates", "list", "--practice", "demo").stdout
    assert re.search(r"tpl_\w+\s+text\s+no\s+Quick text", listing), listing
    template_id = listing.split()[4]
    shown = ondemand("templates", "show", "--practice", "demo", template_id).stdout
    assert "label:        Quick text" in shown and "  Pay here: {{QuickPayLink}}" in shown


def test_a_template_with_an_unknown_field_is_refused_and_nothing_is_saved(
    ondemand: Run, attempt: Run
) -> None:
    added = attempt(
        *("templates", "add", "--practice", "demo", "--label", "Bad", "--mode", "text"),
        *("--body", "Hi {{Nickname}}"),
    )
    assert "{{Nickname}} is not a mappable field" in refused(added, "unknown_field")
    assert json.loads(ondemand("templates", "list", "--practice", "demo", "--json").stdout) == []

    good = template_json(
        ondemand(
            *("templates", "add", "--practice", "demo", "--json", "--label", "Good"),
            *("--mode", "text", "--body", "Hi {{GuarantorFirstName}}"),
        )
    )
    edited = attempt("templates", "edit", "--practice", "demo", good["id"], "--body", "{{Nope}}")
    refused(edited, "unknown_field")
    kept = template_json(ondemand("templates", "show", "--practice", "demo", "--json", good["id"]))
    assert kept == good


@on_each_backend
def test_templates_added_on_the_command_line_are_offered_in_the_dialog(
    ondemand_pm: pluggy.PluginManager, ondemand: Run
) -> None:
    enable_addon(ondemand_pm)
    added = template_json(
        ondemand(
            *("templates", "add", "--practice", "demo", "--json", "--label", "From the CLI"),
            *("--mode", "text", "--body", "{{QuickPayLink}}"),
        )
    )
    form = ondemand_pm.hook.pm_dashboard_action(
        action_id=SEND_ACTION_ID,
        step="open",
        subject={"type": "patient", "id": "p-lily"},
        payload={},
        context=CONTEXT,
    )
    assert form["templates"] == [{"id": added["id"], "label": "From the CLI", "mode": "text"}]


@on_each_backend
def test_templates_made_in_the_dialog_are_listed_on_the_command_line(
    ondemand_pm: pluggy.PluginManager, ondemand: Run
) -> None:
    enable_addon(ondemand_pm)
    made = ondemand_pm.hook.pm_dashboard_action(
        action_id=MANAGE_ACTION_ID,
        step="submit",
        subject={"type": "practice", "id": "demo"},
        payload={"op": "create", "template": {"label": "Made", "mode": "voice", "body": "Hi"}},
        context=CONTEXT,
    )["template"]
    listed = json.loads(ondemand("templates", "list", "--practice", "demo", "--json").stdout)
    assert listed == [made]
    assert json.loads(ondemand("templates", "list", "--practice", "other", "--json").stdout) == []


# R4: history


@on_each_backend
def test_history_lists_the_guarantors_notifications_newest_first(
    ondemand_pm: pluggy.PluginManager, ondemand: Run
) -> None:
    enable_addon(ondemand_pm)
    first, second = send_to_mei(ondemand_pm, mode="text"), send_to_mei(ondemand_pm, mode="email")
    history = ("history", "--practice", "demo", "--guarantor", "g-mei")

    entries = json.loads(ondemand(*history, "--json").stdout)
    for entry in entries:
        assert_valid("history-entry", entry)
    assert [entry["id"] for entry in entries] == [
        second["notification_id"],
        first["notification_id"],
    ]
    assert all(entry["counts_toward_dunning"] is False for entry in entries)

    newest = json.loads(ondemand(*history, "--json", "--limit", "1").stdout)
    assert [entry["id"] for entry in newest] == [second["notification_id"]]

    text = ondemand(*history).stdout
    assert text.index("On-Demand Balance Notification (e-mail)") < text.index(
        "On-Demand Balance Notification (text)"
    )
    assert "sent by Amy Front" in text
    assert json.loads(ondemand(*history[:-1], "g-tom", "--json").stdout) == []


@on_each_backend
def test_history_lists_a_patient_s_reply_among_the_notifications(
    ondemand_pm: pluggy.PluginManager, ondemand: Run
) -> None:
    enable_addon(ondemand_pm)
    sent = send_to_mei(ondemand_pm, mode="text")
    instance_of(ondemand_pm).events.reply(
        "outbox", "+15035550101", "+15035550123", "Can I pay on Friday?"
    )
    history = ("history", "--practice", "demo", "--guarantor", "g-mei")
    reply, notification = json.loads(ondemand(*history, "--json").stdout)
    assert_valid("history-reply", reply)
    assert (reply["text"], reply["in_reply_to"]["notification_id"]) == (
        "Can I pay on Friday?",
        sent["notification_id"],
    )
    assert notification["id"] == sent["notification_id"]
    text = ondemand(*history).stdout
    assert text.index("Patient reply") < text.index("On-Demand Balance Notification (text)")
    assert "\u201cCan I pay on Friday?\u201d" in text


def test_history_reads_past_the_first_page(
    ondemand_pm: pluggy.PluginManager, ondemand: Run
) -> None:
    enable_addon(ondemand_pm)
    sent = [send_to_mei(ondemand_pm, mode="text")["notification_id"] for _ in range(105)]
    history = ("history", "--practice", "demo", "--guarantor", "g-mei", "--json")
    entries = json.loads(ondemand(*history).stdout)
    assert [entry["id"] for entry in entries] == sent[::-1]
    assert len(json.loads(ondemand(*history, "--limit", "101").stdout)) == 101


# Plugins


def test_plugins_lists_each_plugin_with_its_version_hooks_and_channels(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = run_ondemand("plugins", "--json", home=home)
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    plugins = {plugin["name"]: plugin for plugin in listing["plugins"]}

    entry_point = plugins["ondemand"]
    assert entry_point["version"] == ondemand_plugin.__version__
    assert "pm_configure" in entry_point["hooks"]
    [feature] = [row for row in listing["plugins"] if "pm_dashboard_action" in row["hooks"]]
    assert {"pm_dashboard_actions", "pm_history_entries"} <= set(feature["hooks"])
    outbox = plugins["ondemand_plugin.channels.outbox"]
    assert outbox["hooks"] == ["ondemand_delivery_channels"]
    assert outbox["channels"] == ["outbox"]
    assert outbox["distribution"] == "ondemand-plugin"
    built_in_channels = {CHANNEL_PLUGINS[name] for name in UNCONFIGURED}
    assert {
        row["status"] for row in listing["plugins"] if row["name"] not in built_in_channels
    } == {"active"}
    assert {
        "name": "outbox",
        "plugin": "ondemand_plugin.channels.outbox",
        "distribution": "ondemand-plugin",
        "version": ondemand_plugin.__version__,
        "modes": ["email", "text", "voice"],
        "status": "active",
    } in listing["channels"]
    assert not home.exists()  # no database, no outbox folder

    text = run_ondemand("plugins", home=home).stdout
    assert f"ondemand {ondemand_plugin.__version__}" in text
    assert "channels: outbox" in text


def on_path(site: Path) -> dict[str, str]:
    """The environment that puts ``site`` on the path before what is on it already."""
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}


UNCONFIGURED = ("smtp", "twilio_sms", "twilio_voice", "webhook")
# The plugin module that offers each of them.
CHANNEL_PLUGINS = {
    "smtp": "ondemand_plugin.channels.smtp",
    "twilio_sms": "ondemand_plugin.channels.twilio.sms",
    "twilio_voice": "ondemand_plugin.channels.twilio.voice",
    "webhook": "ondemand_plugin.channels.webhook",
}


def test_plugins_says_which_channels_are_not_configured_and_the_key_that_enables_them(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    listing = json.loads(run_ondemand("plugins", "--json", home=home).stdout)
    plugins = {plugin["name"]: plugin for plugin in listing["plugins"]}
    channels = {channel["name"]: channel for channel in listing["channels"]}
    for name in UNCONFIGURED:
        status = f"not configured: add its settings under {name!r} in the configuration file"
        assert plugins[CHANNEL_PLUGINS[name]]["status"].startswith(status)
        assert channels[name]["status"].startswith(status)
    assert channels["twilio_sms"]["modes"] == ["text"]
    assert channels["outbox"]["status"] == "active"

    config = tmp_path / "ondemand.toml"
    config.write_text('[smtp]\nhost = "mail.example.com"\n', encoding="utf-8")
    configured = run_ondemand("--config", str(config), "plugins", "--json", home=home)
    listing = json.loads(configured.stdout)
    plugins = {plugin["name"]: plugin for plugin in listing["plugins"]}
    channels = {channel["name"]: channel for channel in listing["channels"]}
    assert plugins["ondemand_plugin.channels.smtp"]["status"] == "active"
    assert plugins["ondemand_plugin.channels.smtp"]["channels"] == ["smtp"]
    assert channels["smtp"]["status"] == "active"
    assert channels["webhook"]["status"].startswith("not configured")
    assert not home.exists()


PIGEON_PLUGIN = """
from hookspecs import DeliveryReceipt, hookimpl


class PigeonChannel:
    name = "pigeon"
    modes = frozenset({"text"})

    def deliver(self, message):
        return DeliveryReceipt(status="sent")


class BrokenChannel:
    name = "broken"


@hookimpl
def ondemand_delivery_channels(config):
    return [PigeonChannel(), BrokenChannel()]
"""


def test_plugins_lists_a_third_party_plugin_with_its_distribution_version(tmp_path: Path) -> None:
    site = tmp_path / "site"
    put_distribution(site, "pigeon_channel", "pigeon-channel", "9.9.1", PIGEON_PLUGIN, "pigeon")

    result = run_ondemand("plugins", "--json", home=tmp_path / "home", env=on_path(site))
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    plugins = {plugin["name"]: plugin for plugin in listing["plugins"]}
    assert plugins["pigeon"] == {
        "name": "pigeon",
        "distribution": "pigeon-channel",
        "version": "9.9.1",
        "hooks": ["ondemand_delivery_channels"],
        "channels": ["pigeon"],
        "status": "active",
    }
    channels = {channel["name"]: channel for channel in listing["channels"]}
    assert channels["pigeon"] == {
        "name": "pigeon",
        "plugin": "pigeon",
        "distribution": "pigeon-channel",
        "version": "9.9.1",
        "modes": ["text"],
        "status": "active",
    }
    assert channels["broken"]["status"].startswith("skipped: channel 'broken' must declare modes")
    assert "ondemand" in plugins
    # The broken channel is listed as skipped, and said once: the listing is the report.
    text = run_ondemand("plugins", home=tmp_path / "home", env=on_path(site))
    said = text.stdout + text.stderr
    assert said.count("channel 'broken' must declare modes") == 1, said
    assert "broken [-] from pigeon (pigeon-channel 9.9.1): skipped" in text.stdout


def test_other_commands_warn_of_a_broken_channel_naming_its_distribution(
    tmp_path: Path,
) -> None:
    site = tmp_path / "site"
    put_distribution(site, "pigeon_channel", "pigeon-channel", "9.9.1", PIGEON_PLUGIN, "pigeon")
    result = run_ondemand("recover", home=tmp_path / "home", env=on_path(site))
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("pigeon (provided by: pigeon-channel 9.9.1)") == 1
    assert "'broken'" in result.stderr


# Templates in a third party's store


JSON_FILE_STORE_PLUGIN = """
import json
import os
from pathlib import Path

import attrs

from hookspecs import Template, hookimpl


class JsonFileTemplateStore:
    def __init__(self, path):
        self.path = Path(path)

    def _all(self):
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def list_templates(self, practice_id):
        return [Template(**fields) for fields in self._all().get(practice_id, {}).values()]

    def get_template(self, practice_id, template_id):
        fields = self._all().get(practice_id, {}).get(template_id)
        return None if fields is None else Template(**fields)

    def save_template(self, practice_id, template):
        templates = self._all()
        templates.setdefault(practice_id, {})[template.id] = attrs.asdict(template)
        self.path.write_text(json.dumps(templates))

    def delete_template(self, practice_id, template_id):
        templates = self._all()
        deleted = templates.get(practice_id, {}).pop(template_id, None) is not None
        self.path.write_text(json.dumps(templates))
        return deleted

    def close(self):
        closed = self.path.with_suffix(".closed")
        closed.write_text(str(int(closed.read_text() if closed.exists() else 0) + 1))


@hookimpl
def ondemand_template_store(config):
    return JsonFileTemplateStore(os.environ["JSON_TEMPLATES_FILE"])
"""


def put_distribution(
    site: Path, module: str, name: str, version: str, source: str, entry_point: str | None = None
) -> None:
    """A distribution on the path, as pip would install it: a module, and its dist-info naming
    the module as the entry point ``entry_point`` (default: the module's name) in the group
    ``pm``."""
    dist_info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    dist_info.mkdir(parents=True)
    (site / f"{module}.py").write_text(source, encoding="utf-8")
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
    )
    (dist_info / "entry_points.txt").write_text(
        f"[pm]\n{entry_point or module} = {module}\n", "utf-8"
    )


def test_templates_and_the_starters_go_to_the_third_party_store_the_plugin_would_use(
    tmp_path: Path, database_url: str
) -> None:
    site = tmp_path / "site"
    put_distribution(site, "json_templates", "json-templates", "1.0.0", JSON_FILE_STORE_PLUGIN)
    templates_file = tmp_path / "templates.json"
    env = {**on_path(site), "JSON_TEMPLATES_FILE": str(templates_file)}

    def ondemand(*args: str) -> subprocess.CompletedProcess[str]:
        result = run_ondemand(
            "--database-url", database_url, *args, home=tmp_path / "home", env=env
        )
        assert result.returncode == 0, result.stderr
        return result

    added = template_json(
        ondemand(
            *("templates", "add", "--practice", "acme", "--label", "Hi", "--mode", "text"),
            *("--body", "Hi {{GuarantorFirstName}}", "--json"),
        )
    )
    assert list(json.loads(templates_file.read_text())["acme"]) == [added["id"]]
    listed = json.loads(ondemand("templates", "list", "--practice", "acme", "--json").stdout)
    assert listed == [added]
    # Each command closes the store once it is done with it.
    assert templates_file.with_suffix(".closed").read_text() == "2"

    ondemand("addon", "enable", "--practice", "demo", "--by", "Sam Rivera")
    starters = json.loads(templates_file.read_text())["demo"]
    assert sorted(template["mode"] for template in starters.values()) == [
        "email",
        "text",
        "voice",
    ]
    listed = json.loads(ondemand("templates", "list", "--practice", "demo", "--json").stdout)
    assert {template["id"] for template in listed} == set(starters)

    database = open_store(database_url)
    try:
        assert database.list_templates("acme") == []
        assert database.list_templates("demo") == []
    finally:
        database.close()


def test_a_template_store_that_fails_to_close_is_warned_of_after_the_command_did_its_work(
    tmp_path: Path, database_url: str
) -> None:
    site = tmp_path / "site"
    put_distribution(site, "json_templates", "json-templates", "1.0.0", JSON_FILE_STORE_PLUGIN)
    templates_file = tmp_path / "templates.json"
    templates_file.with_suffix(".closed").mkdir()  # so that its close() raises
    result = run_ondemand(
        "--database-url", database_url, "templates", "add", "--practice", "demo",
        "--label", "Hi", "--mode", "text", "--body", "Hi", "--json", home=tmp_path / "home",
        env={**on_path(site), "JSON_TEMPLATES_FILE": str(templates_file)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert list(json.loads(templates_file.read_text())["demo"]) == [template_json(result)["id"]]
    assert (
        "Template store json_templates (provided by: json-templates 1.0.0) did not close: "
        "IsADirectoryError" in result.stderr
    )


@pytest.mark.parametrize(
    "command",
    [
        ("templates", "list", "--practice", "demo"),
        ("templates", "add", "--practice", "demo", "--label", "Hi", "--mode", "text"),
        ("addon", "enable", "--practice", "demo", "--by", "Sam Rivera"),
    ],
    ids=["list", "add", "first-enable"],
)
def test_two_template_stores_without_template_store_are_refused_naming_them(
    tmp_path: Path, database_url: str, command: tuple[str, ...]
) -> None:
    site = tmp_path / "site"
    put_distribution(site, "json_templates", "json-templates", "1.0.0", JSON_FILE_STORE_PLUGIN)
    put_distribution(site, "cms_templates", "cms-templates", "2.3.0", JSON_FILE_STORE_PLUGIN)
    env = {**on_path(site), "JSON_TEMPLATES_FILE": str(tmp_path / "templates.json")}
    home = tmp_path / "home"
    args = ("--database-url", database_url, *command)
    if command[1] == "add":
        args += ("--body", "Hi")

    sentence = refused(run_ondemand(*args, home=home, env=env), "invalid_config")
    assert "Several plugins offer a template store" in sentence
    assert "json_templates (provided by: json-templates 1.0.0)" in sentence
    assert "cms_templates (provided by: cms-templates 2.3.0)" in sentence
    assert "template_store" in sentence
    assert not (tmp_path / "templates.json").exists()
    # Commands that use no template do not choose a store, so nothing refuses them.
    disabled = run_ondemand(
        "--database-url", database_url, "addon", "disable", "--practice", "demo",
        "--by", "Kim Lee", home=home, env=env,
    )  # fmt: skip
    assert "already OFF" in disabled.stdout, disabled.stderr
    status = run_ondemand(
        "--database-url", database_url, "addon", "status", "--practice", "demo", "--json",
        home=home, env=env,
    )  # fmt: skip
    assert json.loads(status.stdout)["enabled"] is False


def test_template_store_picks_one_of_two_stores_or_names_one_that_offers_none(
    tmp_path: Path, database_url: str
) -> None:
    site = tmp_path / "site"
    put_distribution(site, "json_templates", "json-templates", "1.0.0", JSON_FILE_STORE_PLUGIN)
    # A store without close(), which the command then does not try to close.
    without_close = JSON_FILE_STORE_PLUGIN.replace("def close(self)", "def closed(self)")
    put_distribution(site, "cms_templates", "cms-templates", "2.3.0", without_close)
    templates_file = tmp_path / "templates.json"
    env = {**on_path(site), "JSON_TEMPLATES_FILE": str(templates_file)}
    home = tmp_path / "home"
    config = tmp_path / "ondemand.json"

    def templates_with(store: str) -> subprocess.CompletedProcess[str]:
        config.write_text(
            json.dumps({"database_url": database_url, "template_store": store}), "utf-8"
        )
        return run_ondemand(
            "--config", str(config), "templates", "add", "--practice", "demo",
            "--label", "Hi", "--mode", "text", "--body", "Hi", "--json", home=home, env=env,
        )  # fmt: skip

    picked = templates_with("cms_templates")
    assert picked.returncode == 0, picked.stderr
    assert list(json.loads(templates_file.read_text())["demo"]) == [template_json(picked)["id"]]
    assert not templates_file.with_suffix(".closed").exists()

    sentence = refused(templates_with("pigeon"), "invalid_config")
    assert "template_store names 'pigeon'" in sentence
    assert "offered: cms_templates, json_templates" in sentence

    built_in = templates_with("ondemand")
    assert built_in.returncode == 0, built_in.stderr
    database = open_store(database_url)
    try:
        assert [t.id for t in database.list_templates("demo")] == [template_json(built_in)["id"]]
    finally:
        database.close()
    assert len(json.loads(templates_file.read_text())["demo"]) == 1


# Refusals and usage errors


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (
            ("--database-url", "postgres://db/ondemand", "addon", "status", "--practice", "demo"),
            "invalid_config",
        ),
        (("templates", "show", "--practice", "demo", "tpl_missing"), "template_not_found"),
        (("templates", "delete", "--practice", "demo", "tpl_missing"), "template_not_found"),
        (
            (
                "templates",
                "add",
                "--practice",
                "demo",
                "--label",
                "",
                "--mode",
                "text",
                "--body",
                "Hi",
            ),
            "invalid_request",
        ),
    ],
    ids=["unsupported-database", "show-missing", "delete-missing", "empty-label"],
)
def test_refusals_print_the_sentence_and_code_on_stderr_and_exit_2(
    tmp_path: Path, args: tuple[str, ...], code: str
) -> None:
    result = run_ondemand(*args, home=tmp_path / "home")
    sentence = refused(result, code)
    assert sentence.endswith(".") and "Traceback" not in result.stderr


def test_an_environment_database_url_the_plugin_cannot_use_is_refused(tmp_path: Path) -> None:
    result = run_ondemand(
        "addon",
        "status",
        "--practice",
        "demo",
        home=tmp_path / "home",
        env={"ONDEMAND_DATABASE_URL": "oracle://db"},
    )
    assert "ONDEMAND_" in refused(result, "invalid_config")


@pytest.mark.parametrize(
    "args",
    [
        ("templates", "add", "--practice", "demo", "--label", "X", "--mode", "fax", "--body", "Hi"),
        ("history", "--practice", "demo", "--guarantor", "g-mei", "--limit", "0"),
        ("addon", "enable", "--practice", "demo"),
        ("templates", "edit", "--practice", "demo", "tpl_x"),
    ],
    ids=["unknown-mode", "zero-limit", "missing-by", "nothing-to-change"],
)
def test_usage_errors_are_clicks_with_exit_code_2(tmp_path: Path, args: tuple[str, ...]) -> None:
    result = run_ondemand(*args, home=tmp_path / "home")
    assert result.returncode == 2
    assert "Usage: ondemand" in result.stderr and "Error:" in result.stderr


# ondemand db: the schema's revision, for operators who migrate ahead of a deploy


def test_db_upgrade_migrates_ahead_of_the_workers_and_current_says_where_it_is(
    tmp_path: Path,
) -> None:
    database_url = "sqlite:///" + str(tmp_path / "hosts.db")
    config = tmp_path / "ondemand.toml"
    config.write_text(f'database_url = "{database_url}"\n', encoding="utf-8")
    home = tmp_path / "home"

    before = run_ondemand("db", "current", home=home, env={"ONDEMAND_CONFIG": str(config)})
    assert before.returncode == 0, before.stderr
    assert "revision none (no schema yet" in before.stdout

    upgraded = run_ondemand("--config", str(config), "db", "upgrade", home=home)
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"at revision {HEAD}." in upgraded.stdout

    after = run_ondemand("--config", str(config), "db", "current", home=home)
    assert f"revision {HEAD} (this release's schema)" in after.stdout


def test_db_history_lists_the_revisions_this_release_knows(tmp_path: Path) -> None:
    listed = run_ondemand("db", "history", home=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[-1].startswith(f"{HEAD} (head)  ")


def set_revision(database_url: str, revision: str) -> None:
    engine = backend_for(database_url).engine()
    with engine.begin() as connection:
        connection.exec_driver_sql(f"UPDATE alembic_version SET version_num = '{revision}'")
    engine.dispose()


@on_each_backend
def test_db_current_and_upgrade_refuse_a_database_of_a_newer_release(
    database_url: str, attempt: Run, ondemand: Run
) -> None:
    ondemand("db", "upgrade")
    set_revision(database_url, "f00dfeed")
    try:
        sentence = refused(attempt("db", "current"), "invalid_config")
        assert "newer release" in sentence and "Upgrade the plugin" in sentence
        refused(attempt("db", "upgrade"), "invalid_config")
    finally:
        set_revision(database_url, HEAD)


# The monthly report


@on_each_backend
def test_report_counts_sent_delivered_opened_paid_collected_and_the_median_to_payment(
    database_url: str, tmp_path: Path, ondemand: Run, attempt: Run
) -> None:
    host = host_on(database_url, tmp_path / "linked")
    assert host.plugin_config is not None
    host.plugin_config["link_base_url"] = "https://pay.maple.example/plugins/"
    pm = build_plugin_manager(host)
    try:
        enable_addon(pm)
        sent = [send_to_mei(pm) for _ in range(3)]
        token = re.search(r"/pay/([\w-]+)", sent[0]["body"])[1]  # type: ignore[index]
        opened = pm.hook.pm_inbound_request(
            plugin_name="ondemand",
            method="GET",
            path=f"pay/{token}",
            url=f"https://pay.maple.example/plugins/ondemand/pay/{token}",
            headers={},
            form={},
            body="",
        )
        assert opened["status"] == 303
        for number, (result, minutes) in enumerate(zip(sent[:2], (4, 10), strict=True)):
            record = store_of(pm).notification_by_id("demo", result["notification_id"])
            assert record is not None
            paid_at = record.occurred_at + timedelta(minutes=minutes)
            pm.hook.pm_payment_posted(
                practice_id="demo",
                guarantor_id="g-mei",
                amount="45.10",
                paid_at=paid_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                reference=f"pops-{number}",
                notification_id=result["notification_id"],
            )
    finally:
        pm.hook.pm_unconfigure(plugin_manager=pm)
    month = f"{datetime.now(UTC):%Y-%m}"

    figures = json.loads(ondemand("report", "--practice", "demo", "--json").stdout)
    assert figures == {
        "practice_id": "demo",
        "month": month,
        "sent": 3,
        "delivered": 3,
        "links_opened": 1,
        "paid": 2,
        "amount_collected": "90.20",
        "median_minutes_to_payment": 7.0,
    }
    rows = ondemand("report", "--practice", "demo", "--month", month, "--csv").stdout
    assert rows.splitlines() == [
        "practice_id,month,sent,delivered,links_opened,paid,amount_collected,"
        "median_minutes_to_payment",
        f"demo,{month},3,3,1,2,90.20,7.0",
    ]
    text = ondemand("report", "--practice", "demo").stdout
    assert "Amount collected:  $90.20" in text and "7.0 minutes" in text
    empty = json.loads(
        ondemand("report", "--practice", "demo", "--month", "2020-01", "--json").stdout
    )
    assert (empty["sent"], empty["amount_collected"], empty["median_minutes_to_payment"]) == (
        0,
        "0.00",
        None,
    )
    refused(attempt("report", "--practice", "demo", "--month", "2026-13"), "invalid_request")
