"""The distribution: what a host gets from ``pip install``."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import zipfile
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from ondemand_plugin.boundary import contracts
from ondemand_plugin.stores import migrate

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            out,
            ROOT,
        ],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("ondemand_plugin-*.whl")
    return built


def test_wheel_ships_both_packages_and_every_schema(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    schemas = sorted(path.name for path in (ROOT / "contracts").glob("*.json"))
    assert schemas
    for schema in schemas:
        assert f"ondemand_plugin/contracts/{schema}" in names
    assert "hookspecs/__init__.py" in names
    assert "ondemand_plugin/plugin.py" in names
    assert "ondemand_plugin/py.typed" in names and "hookspecs/py.typed" in names


def test_wheel_ships_the_sandbox_with_its_pages_and_assets(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    package = ROOT / "ondemand_sandbox"
    files = [
        path.relative_to(ROOT).as_posix()
        for path in package.rglob("*")
        if path.is_file() and path.suffix in {".py", ".html", ".css", ".js", ".typed"}
    ]
    assert any(name.endswith(".html") for name in files) and any(n.endswith(".js") for n in files)
    for name in files:
        assert name in names


def test_the_sandbox_extra_names_its_web_stack() -> None:
    from importlib.metadata import requires

    extras = [
        r for r in requires("ondemand-plugin") or [] if "extra == 'sandbox'" in r.replace('"', "'")
    ]
    for package in ("starlette", "jinja2", "uvicorn"):
        assert any(r.startswith(package) for r in extras), package


def test_installed_copy_loads_its_schemas_from_the_wheel(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--target", target, wheel],
        check=True,
        capture_output=True,
    )
    probe = (
        "import ondemand_plugin.boundary.contracts as c; "
        "print(c.contracts_dir()); "
        "print(len(c.schema_names())); "
        "c.validator('send-result')"
    )
    # -I: the source tree must not be on the path, only the installed copy.
    done = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(target)!r}); {probe}"],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    folder, count = done.stdout.split()
    assert Path(folder) == target / "ondemand_plugin" / "contracts"
    assert int(count) == len(contracts.schema_names())


def test_entry_points_name_the_plugin_and_the_pytest_kit() -> None:
    (plugin,) = [ep for ep in entry_points(group="pm") if ep.name == "ondemand"]
    assert plugin.value == "ondemand_plugin.plugin"
    (kit,) = [ep for ep in entry_points(group="pytest11") if ep.name == "ondemand"]
    assert kit.value == "ondemand_plugin.testing.pytest_plugin"
    (script,) = [ep for ep in entry_points(group="console_scripts") if ep.name == "ondemand"]
    assert script.value == "ondemand_plugin.commands.cli:main"


def test_every_schema_is_valid_2020_12_with_an_id() -> None:
    from jsonschema import Draft202012Validator

    for name in contracts.schema_names():
        raw = contracts._registry().contents(contracts.BASE_URI + name + ".json")
        Draft202012Validator.check_schema(raw)
        assert raw["$id"] == contracts.BASE_URI + name + ".json"


def test_wheel_ships_the_new_channel_templates(wheel: Path) -> None:
    from ondemand_plugin.commands.scaffold import TEMPLATES

    names = zipfile.ZipFile(wheel).namelist()
    for template in TEMPLATES:
        assert f"ondemand_plugin/commands/scaffold/channel/{template}" in names, template


def test_wheel_ships_the_schema_migrations(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    folder = ROOT / "ondemand_plugin" / "stores" / "migrations"
    files = [
        path.relative_to(ROOT).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and path.suffix in {".py", ".mako"}
    ]
    assert "ondemand_plugin/stores/migrations/env.py" in files
    assert any("/versions/0001_" in name for name in files)
    for name in files:
        assert name in names


def test_an_installed_copy_migrates_a_new_database_from_its_own_revisions(
    wheel: Path, tmp_path: Path
) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--target", target, wheel],
        check=True,
        capture_output=True,
    )
    database = tmp_path / "ondemand.db"
    probe = (
        "from ondemand_plugin.stores import migrate, open_store; "
        f"open_store('sqlite:///{database}').close(); "
        "print(migrate.__file__)"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(target)!r}); {probe}"],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert Path(done.stdout.strip()).is_relative_to(target)
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (migrate.HEAD,)
        ]
