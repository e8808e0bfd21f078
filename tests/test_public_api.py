"""What hosts and plugin authors may rely on is marked: each public module lists its names in
``__all__``, kept complete here, and the rules see the stores only through their interface."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PUBLIC_MODULES = (
    "ondemand_plugin",
    "ondemand_plugin.admin",
    "ondemand_plugin.config",
    "ondemand_plugin.errors",
    "ondemand_plugin.extensions",
    "ondemand_plugin.signing",
    "ondemand_plugin.testing",
)


def defined_public_names(module_name: str) -> set[str]:
    """Functions, classes and upper-case constants the module itself defines, not imports."""
    module = importlib.import_module(module_name)
    assert module.__file__
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {target.id for target in node.targets if isinstance(target, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {name for name in names if not name.startswith("_")}


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_public_module_lists_what_it_defines_in_all(module_name: str) -> None:
    module = importlib.import_module(module_name)
    listed = set(module.__all__)
    assert len(listed) == len(module.__all__), f"{module_name}.__all__ names a name twice"
    for name in listed:
        assert hasattr(module, name), f"{module_name}.__all__ names {name}, which it lacks"
    unlisted = defined_public_names(module_name) - listed
    assert not unlisted, f"{module_name} defines {sorted(unlisted)} without listing them in __all__"


def test_the_check_catches_a_name_left_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "leaky.py").write_text(
        '__all__ = ["kept"]\n\ndef kept(): ...\n\ndef forgotten(): ...\n'
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert defined_public_names("leaky") - {"kept"} == {"forgotten"}


STORES = ROOT / "ondemand_plugin" / "stores"


def store_modules_imported(path: Path) -> list[str]:
    """The stores' own modules (not the package's interface) that a file imports."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("ondemand_plugin.stores.")]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith("ondemand_plugin.stores."):
                found.append(node.module)
            elif node.module == "ondemand_plugin.stores":
                found += [
                    f"{node.module}.{a.name}"
                    for a in node.names
                    if (STORES / f"{a.name}.py").is_file() or (STORES / a.name).is_dir()
                ]
    return found


def test_no_rule_imports_from_a_stores_module() -> None:
    rules = sorted((ROOT / "ondemand_plugin" / "rules").glob("*.py"))
    assert rules
    offending = {path.name: store_modules_imported(path) for path in rules}
    assert {name: found for name, found in offending.items() if found} == {}


@pytest.mark.parametrize(
    ("source", "offends"),
    [
        ("from ondemand_plugin.stores import Store\n", False),
        ("from ondemand_plugin.stores.base import Store\n", True),
        ("import ondemand_plugin.stores.base\n", True),
        ("from ondemand_plugin.stores import base\n", True),
    ],
)
def test_the_stores_check_tells_a_module_from_the_interface(
    source: str, offends: bool, tmp_path: Path
) -> None:
    rule = tmp_path / "rule.py"
    rule.write_text(source)
    assert bool(store_modules_imported(rule)) is offends
