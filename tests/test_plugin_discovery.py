"""Third-party plugins found as a host finds them, through ``pm`` entry points of installed
distributions (a small ``*.dist-info`` folder on the path, no pip install). A broken one is named
with its distribution and skipped; ``ONDEMAND_STRICT_PLUGINS=1`` makes it an error."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pluggy
import pytest
from conftest import CONTEXT, enable_addon, send_to_mei
from test_cli import run_ondemand

import hookspecs
from ondemand_plugin import SEND_ACTION_ID
from ondemand_plugin.errors import OnDemandError
from ondemand_plugin.extensions import load_plugins
from ondemand_plugin.testing import build_plugin_manager, demo_host
from ondemand_plugin.testing.pytest_plugin import ondemand_test_config

PIGEON = """
from hookspecs import DeliveryReceipt, hookimpl

SENT = []


class PigeonChannel:
    name = "pigeon"
    modes = frozenset({"text"})

    def deliver(self, message):
        SENT.append(message.to)
        return DeliveryReceipt(status="sent", provider_message_id=f"pigeon-{len(SENT)}")


@hookimpl
def ondemand_delivery_channels(config):
    return [PigeonChannel()]
"""

BROKEN = {
    "its import fails": (
        "import pigeon_gateway_sdk  # not installed\n",
        "importing it failed: ModuleNotFoundError: No module named 'pigeon_gateway_sdk'",
    ),
    "its hook raises": (
        "from hookspecs import hookimpl\n\n"
        "@hookimpl\ndef ondemand_delivery_channels(config):\n"
        "    raise KeyError('loft')\n",
        "its ondemand_delivery_channels hook raised KeyError",
    ),
    "its answer does not validate": (
        "from hookspecs import hookimpl\n\n"
        "class Crow:\n    name = 'crow'\n    modes = frozenset({'fax'})\n"
        "    def deliver(self, message): ...\n\n"
        "@hookimpl\ndef ondemand_delivery_channels(config):\n    return [Crow()]\n",
        "channel 'crow' must declare modes",
    ),
    "its channel takes a name already taken": (
        "from hookspecs import hookimpl\n\n"
        "class Outbox:\n    name = 'outbox'\n    modes = frozenset({'text'})\n"
        "    def deliver(self, message): ...\n\n"
        "@hookimpl\ndef ondemand_delivery_channels(config):\n    return [Outbox()]\n",
        "its channel 'outbox' is already provided by",
    ),
}

Install = Callable[[str, str, str], Path]


@pytest.fixture
def site(tmp_path: Path) -> Path:
    folder = tmp_path / "site"
    folder.mkdir()
    return folder


@pytest.fixture
def install(site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Install]:
    """``install(distribution, version, module_source)``: a distribution with one module and
    one ``pm`` entry point named after it, put on ``sys.path`` as pip would leave it."""
    monkeypatch.delenv("ONDEMAND_STRICT_PLUGINS", raising=False)
    modules: list[str] = []

    def make(distribution: str, version: str, source: str) -> Path:
        module = distribution.replace("-", "_")
        entry_point = distribution.removesuffix("-channel")
        dist_info = site / f"{module}-{version}.dist-info"
        dist_info.mkdir()
        (site / f"{module}.py").write_text(source, encoding="utf-8")
        (dist_info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n", "utf-8"
        )
        (dist_info / "entry_points.txt").write_text(f"[pm]\n{entry_point} = {module}\n", "utf-8")
        modules.append(module)
        return site

    monkeypatch.syspath_prepend(str(site))
    yield make
    for module in modules:  # the next test installs its own, under the same name
        sys.modules.pop(module, None)


@pytest.fixture
def host_config(tmp_path: Path) -> dict[str, object]:
    return ondemand_test_config(tmp_path)


@pytest.fixture
def managers() -> Iterator[list[pluggy.PluginManager]]:
    made: list[pluggy.PluginManager] = []
    yield made
    for pm in made:
        pm.hook.pm_unconfigure(plugin_manager=pm)


def build(config: dict[str, object], managers: list[pluggy.PluginManager]) -> pluggy.PluginManager:
    pm = build_plugin_manager(demo_host(config))
    managers.append(pm)
    enable_addon(pm)
    return pm


def test_a_channel_from_an_installed_distribution_is_found_and_carries_its_mode(
    install: Install, host_config: dict[str, object], managers: list[pluggy.PluginManager]
) -> None:
    install("pigeon-channel", "9.9.1", PIGEON)
    pm = build({**host_config, "channels": {"text": "pigeon"}}, managers)
    [(plugin, dist)] = [(p, d) for p, d in pm.list_plugin_distinfo() if pm.get_name(p) == "pigeon"]
    assert (dist.project_name, dist.version) == ("pigeon-channel", "9.9.1")

    result = send_to_mei(pm)
    assert result["status"] == "sent"
    assert plugin.SENT == ["+15035550123"]


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_plugin_is_named_with_its_distribution_and_skipped(
    install: Install,
    host_config: dict[str, object],
    managers: list[pluggy.PluginManager],
    caplog: pytest.LogCaptureFixture,
    case: str,
) -> None:
    source, problem = BROKEN[case]
    install("pigeon-channel", "9.9.1", PIGEON)
    install("crow-channel", "0.3.0", source)
    with caplog.at_level(logging.WARNING):
        pm = build({**host_config, "channels": {"text": "pigeon"}}, managers)
    assert "On-Demand plugin crow (provided by: crow-channel 0.3.0): " in caplog.text
    assert problem in caplog.text
    assert "it is skipped" in caplog.text
    # The host keeps working, with the other plugins.
    assert send_to_mei(pm)["status"] == "sent"
    assert send_to_mei(pm, mode="email", body="{{BalanceDue}}")["status"] == "sent"


@pytest.mark.parametrize("case", list(BROKEN))
def test_strict_plugins_make_each_broken_plugin_an_error(
    install: Install,
    host_config: dict[str, object],
    managers: list[pluggy.PluginManager],
    monkeypatch: pytest.MonkeyPatch,
    case: str,
) -> None:
    source, problem = BROKEN[case]
    install("crow-channel", "0.3.0", source)
    monkeypatch.setenv("ONDEMAND_STRICT_PLUGINS", "1")
    with pytest.raises(OnDemandError) as refused:
        build(host_config, managers)
    assert refused.value.code == "plugin_error"
    assert "crow (provided by: crow-channel 0.3.0)" in refused.value.message
    assert problem in refused.value.message
    assert "ONDEMAND_STRICT_PLUGINS" in refused.value.message


def test_load_plugins_survives_the_import_failure_that_stops_pluggy(install: Install) -> None:
    install("crow-channel", "0.3.0", BROKEN["its import fails"][0])
    install("pigeon-channel", "9.9.1", PIGEON)

    bare = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    hookspecs.add_hookspecs(bare)
    with pytest.raises(ModuleNotFoundError):
        bare.load_setuptools_entrypoints(hookspecs.PROJECT_NAME)

    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    hookspecs.add_hookspecs(pm)
    [skipped] = load_plugins(pm)
    assert (skipped.name, skipped.distribution, skipped.version) == (
        "crow",
        "crow-channel",
        "0.3.0",
    )
    assert skipped.problem.startswith("importing it failed: ModuleNotFoundError")
    assert pm.has_plugin("pigeon") and pm.has_plugin("ondemand")
    assert not pm.has_plugin("crow")
    assert load_plugins(pm) == [skipped]  # asked again, the same answer; nothing loaded twice


def test_plugins_command_lists_each_channel_with_its_distribution_and_status(
    install: Install, site: Path, tmp_path: Path
) -> None:
    install("pigeon-channel", "9.9.1", PIGEON)
    install("crow-channel", "0.3.0", BROKEN["its channel takes a name already taken"][0])
    install("owl-channel", "1.0.0", BROKEN["its import fails"][0])
    install("wren-channel", "2.1.0", BROKEN["its hook raises"][0])

    result = run_ondemand(
        "plugins", "--json", home=tmp_path / "home", env={"PYTHONPATH": str(site)}
    )
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    channels = {(row["name"], row["plugin"]): row for row in listing["channels"]}
    assert channels[("pigeon", "pigeon")] == {
        "name": "pigeon",
        "plugin": "pigeon",
        "distribution": "pigeon-channel",
        "version": "9.9.1",
        "modes": ["text"],
        "status": "active",
    }
    taken = channels[("outbox", "crow")]
    assert (taken["distribution"], taken["version"], taken["modes"]) == (
        "crow-channel",
        "0.3.0",
        ["text"],
    )
    assert taken["status"].startswith("skipped: its channel 'outbox' is already provided by ")
    assert channels[("outbox", "ondemand_plugin.channels.outbox")]["status"] == "active"

    plugins = {row["name"]: row for row in listing["plugins"]}
    assert plugins["owl"]["distribution"] == "owl-channel"
    assert plugins["owl"]["status"].startswith("skipped: importing it failed: ModuleNotFoundError")
    assert plugins["wren"]["version"] == "2.1.0"
    assert plugins["wren"]["status"].startswith(
        "skipped: its ondemand_delivery_channels hook raised KeyError"
    )
    assert plugins["pigeon"]["status"] == "active"
    # Each problem is said once, in the listing, not again as a warning beside it.
    assert "owl" not in result.stderr and "wren" not in result.stderr

    shown = run_ondemand("plugins", home=tmp_path / "home", env={"PYTHONPATH": str(site)})
    text = shown.stdout
    assert "pigeon [text] from pigeon (pigeon-channel 9.9.1): active" in text
    assert "owl 1.0.0 (owl-channel): skipped: importing it failed" in text
    assert (text + shown.stderr).count("importing it failed") == 1


def test_the_test_kits_manager_refuses_a_misspelled_hook_naming_its_distribution(
    install: Install, host_config: dict[str, object], managers: list[pluggy.PluginManager]
) -> None:
    install(
        "crow-channel",
        "0.3.0",
        PIGEON.replace("ondemand_delivery_channels", "ondemand_delivery_channel"),
    )
    with pytest.raises(OnDemandError) as refused:
        build(host_config, managers)
    assert refused.value.code == "plugin_error"
    assert "crow (provided by: crow-channel 0.3.0)" in refused.value.message
    assert "did you mean ondemand_delivery_channels?" in refused.value.message


BROKEN_STORE = """
from hookspecs import hookimpl

# The CMS answers until the test takes it down: a first switch on saves the starter templates.
DOWN = False
SAVED = {}


class CmsStore:
    def list_templates(self, practice_id):
        self.answer()
        return [t for (p, _), t in SAVED.items() if p == practice_id]

    def get_template(self, practice_id, template_id):
        self.answer()
        return SAVED.get((practice_id, template_id))

    def save_template(self, practice_id, template):
        self.answer()
        SAVED[(practice_id, template.id)] = template

    def delete_template(self, practice_id, template_id):
        self.answer()
        SAVED.pop((practice_id, template_id), None)

    def answer(self):
        if DOWN:
            raise TimeoutError("the CMS did not answer")


@hookimpl
def ondemand_template_store(config):
    return CmsStore()
"""


def test_a_failing_template_store_is_named_with_its_distribution_in_the_dialog(
    install: Install,
    host_config: dict[str, object],
    managers: list[pluggy.PluginManager],
    caplog: pytest.LogCaptureFixture,
) -> None:
    install("acme-cms", "2.4.0", BROKEN_STORE)
    pm = build(host_config, managers)
    sys.modules["acme_cms"].DOWN = True
    with caplog.at_level(logging.WARNING):
        form = pm.hook.pm_dashboard_action(
            action_id=SEND_ACTION_ID,
            step="open",
            subject={"type": "patient", "id": "p-lily"},
            payload={},
            context=CONTEXT,
        )
    assert form["can_send"] is True
    assert "acme-cms (provided by: acme-cms 2.4.0)" in " ".join(form["notices"])
    assert "acme-cms (provided by: acme-cms 2.4.0): its template store failed" in caplog.text
    assert send_to_mei(pm)["status"] == "sent"
