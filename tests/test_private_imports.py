"""No module imports a private module (``_name``) of another package: what a package keeps
private may change without notice, and the built-ins are written as a third party would."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TREES = ("ondemand_plugin", "hookspecs", "ondemand_sandbox", "plugins")


def module_name(path: Path, base: Path) -> str:
    parts = list(path.relative_to(base).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def python_files() -> list[tuple[Path, Path]]:
    """(file, the folder its top-level package sits in) for every module of the trees; a
    separately distributed plugin under plugins/ has its packages under its own folder or src/."""
    found = []
    for tree in TREES:
        top = ROOT / tree
        if not top.is_dir():
            continue
        for path in sorted(top.rglob("*.py")):
            if tree == "plugins":
                project = top / path.relative_to(top).parts[0]
                base = project / "src" if (project / "src").is_dir() else project
                if base not in path.parents:
                    continue
            else:
                base = ROOT
            found.append((path, base))
    return found


def is_private(name: str) -> bool:
    return any(part.startswith("_") and not part.startswith("__") for part in name.split("."))


def imported_modules(tree: ast.AST, package: str, base: Path) -> list[str]:
    """Every module an import statement names, relative imports resolved against ``package``;
    ``from a import _b`` counts ``a._b`` when it is a module."""
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(parent + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            names.append(source)
            for alias in node.names:
                candidate = f"{source}.{alias.name}"
                folder = base.joinpath(*candidate.split("."))
                if folder.with_suffix(".py").is_file() or (folder / "__init__.py").is_file():
                    names.append(candidate)
    return names


def owner(imported: str) -> str:
    """The package whose private module ``imported`` is: up to its first private part."""
    parts = imported.split(".")
    return ".".join(parts[: next(i for i, part in enumerate(parts) if is_private(part))])


def private_imports() -> list[str]:
    found = []
    for path, base in python_files():
        module = module_name(path, base)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for imported in imported_modules(tree, package, base):
            # A module may use its own package's private modules, no other's.
            if is_private(imported) and owner(imported) != package:
                found.append(f"{path.relative_to(ROOT)} imports {imported}")
    return found


def test_the_trees_are_found() -> None:
    modules = {module_name(path, base) for path, base in python_files()}
    assert {
        "ondemand_plugin.plugin",
        "hookspecs",
        "ondemand_plugin.channels.twilio.routes",
    } <= modules


def test_no_module_imports_a_private_module_of_another_package() -> None:
    assert private_imports() == []


@pytest.mark.parametrize(
    ("source", "package", "expected"),
    [
        ("from ondemand_plugin.channels import _http\n", "ondemand_plugin.channels.twilio", True),
        ("import hookspecs._markers\n", "ondemand_plugin", True),
        ("from hookspecs._markers import hookimpl\n", "hookspecs", False),
        ("from . import _markers\n", "hookspecs", False),
        ("from .._markers import hookimpl\n", "hookspecs.sub", True),
    ],
)
def test_the_check_tells_another_packages_private_module(
    source: str, package: str, expected: bool, tmp_path: Path
) -> None:
    for name in ("ondemand_plugin/channels/_http.py", "hookspecs/_markers.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    imported = imported_modules(ast.parse(source), package, tmp_path)
    owners = {owner(name) for name in imported if is_private(name)}
    assert bool(owners - {package}) is expected
