"""``hookspecs.CONTRACT_VERSION`` is the changelog's latest version and the schemas' major version,
and the changelog names every hook."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pluggy

import hookspecs
from ondemand_plugin.boundary import contracts

ROOT = Path(__file__).resolve().parent.parent
CHANGELOG = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")


def released_versions() -> list[str]:
    """The changelog's versions, newest first, without ``[Unreleased]``."""
    return re.findall(r"^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}$", CHANGELOG, re.MULTILINE)


def test_the_contract_version_is_semantic_versioning() -> None:
    assert SEMVER.match(hookspecs.CONTRACT_VERSION), hookspecs.CONTRACT_VERSION


def test_the_contract_version_is_the_changelogs_latest() -> None:
    assert released_versions()[0] == hookspecs.CONTRACT_VERSION


def test_the_changelog_keeps_an_unreleased_section_above_the_releases() -> None:
    assert CHANGELOG.index("## [Unreleased]") < CHANGELOG.index(f"## [{released_versions()[0]}]")


def test_the_changelogs_versions_go_down() -> None:
    versions = [tuple(map(int, version.split("."))) for version in released_versions()]
    assert versions == sorted(versions, reverse=True)
    assert len(set(versions)) == len(versions)


def test_every_schemas_id_carries_the_contracts_major_version() -> None:
    major = hookspecs.CONTRACT_VERSION.split(".")[0]
    assert contracts.BASE_URI.endswith(f"/v{major}/")
    for entry in contracts.contracts_dir().iterdir():
        if entry.name.endswith(".json"):
            schema = json.loads(entry.read_text(encoding="utf-8"))
            assert schema["$id"] == contracts.BASE_URI + entry.name, entry.name


def test_the_changelog_names_every_hook() -> None:
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    hookspecs.add_hookspecs(pm)
    hooks = [name for name, caller in vars(pm.hook).items() if caller.has_spec()]
    assert hooks
    unrecorded = [name for name in hooks if f"`{name}" not in CHANGELOG]
    assert unrecorded == [], "add each new hook to CHANGELOG.md"


def test_the_readmes_compatibility_policy_gives_the_current_version() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    policy = readme.split("## Compatibility policy", 1)[1].split("\n## ", 1)[0]
    assert f'`hookspecs.CONTRACT_VERSION` (now `"{hookspecs.CONTRACT_VERSION}"`)' in policy
    assert "warn_on_impl" in policy
