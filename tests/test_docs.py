"""The README documents the whole public contract: every hook, with its signature and an example."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import hookspecs
from hookspecs import dashboard, lifecycle, ondemand, platform, web
from ondemand_plugin.errors import ErrorCode
from ondemand_plugin.plugin import STEPS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
HOOKS = [
    (name, function)
    for module in (lifecycle, dashboard, platform, ondemand, web)
    for name, function in inspect.getmembers(module, inspect.isfunction)
    if name.startswith(("pm_", "ondemand_")) and function.__module__ == module.__name__
]


def hook_section(name: str) -> str:
    match = re.search(rf"^### `{name}\(.*?(?=^### |^## )", README, re.MULTILINE | re.DOTALL)
    assert match, f"README.md has no '### `{name}(...)`' section"
    return match.group(0)


def test_the_hook_list_is_not_empty() -> None:
    assert len(HOOKS) >= 13


@pytest.mark.parametrize(("name", "function"), HOOKS, ids=[name for name, _ in HOOKS])
def test_every_hook_has_a_readme_section_with_its_parameters_and_an_example(
    name: str, function: object
) -> None:
    section = hook_section(name)
    for parameter in inspect.signature(function).parameters:  # type: ignore[arg-type]
        assert parameter in section, f"{name}: parameter {parameter!r} is not described"
    assert "```python" in section, f"{name}: no example"


@pytest.mark.parametrize(
    ("action_id", "step"), [(action, step) for action, steps in STEPS.items() for step in steps]
)
def test_every_step_of_every_action_is_documented_with_an_example(
    action_id: str, step: str
) -> None:
    section = hook_section("pm_dashboard_action")
    assert f'step="{step}"' in section, f"{action_id}: step {step!r} is not described"
    calls = re.findall(r'action_id="([\w.]+)", step="(\w+)"', section)
    assert (action_id, step) in calls, f"{action_id}: no example of step {step!r}"


@pytest.mark.parametrize(("name", "function"), HOOKS, ids=[name for name, _ in HOOKS])
def test_every_hookspec_has_an_example_in_its_docstring(name: str, function: object) -> None:
    assert "Example::" in (inspect.getdoc(function) or ""), name


def test_readme_shows_the_host_wiring_exactly() -> None:
    for line in (
        "pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)",
        "hookspecs.add_hookspecs(pm)",
        "pm.register(MyHostAdapter())",
        "pm.load_setuptools_entrypoints(hookspecs.PROJECT_NAME)",
        'pm.hook.pm_configure.call_historic(kwargs={"plugin_manager": pm})',
        "pm.hook.pm_unconfigure(plugin_manager=pm)",
    ):
        assert line in README


def test_readme_error_table_is_the_error_code_enumeration() -> None:
    table = README.split("## Error codes", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", table, re.MULTILINE))
    assert documented == {code.value for code in ErrorCode}


def test_no_refusal_spells_its_code_as_a_string() -> None:
    # Codes come from ErrorCode alone, so the enumeration (and the README's table) is complete.
    source = "\n".join(
        path.read_text(encoding="utf-8")
        for path in (Path(hookspecs.__file__).parent.parent / "ondemand_plugin").rglob("*.py")
    )
    assert re.findall(r'\bcode\s*=\s*"[a-z_]+"', source) == []


def test_readme_opens_with_exactly_two_commands() -> None:
    first_block = re.search(r"```sh\n(.*?)```", README, re.DOTALL)
    assert first_block
    commands = [line for line in first_block.group(1).splitlines() if line.strip()]
    assert len(commands) == 2
    assert commands[0].endswith("pip install '.[sandbox]' && ondemand sandbox")
    assert commands[1].endswith("pip install -e '.[test]' && pytest")


def test_readme_keeps_the_terminal_demo_and_shows_a_committed_screenshot() -> None:
    assert "`ondemand demo`" in README
    images = re.findall(r"!\[[^\]]+\]\(([^)]+)\)", README)
    assert images, "README.md shows no screenshot"
    for image in images:
        assert (ROOT / image).is_file(), f"README.md shows {image}, which is not in the repository"
