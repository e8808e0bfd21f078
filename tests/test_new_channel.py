"""``ondemand new-channel``: the project it writes passes its own tests once installed into a
fresh virtual environment, and a bad name or a used folder is refused with nothing written."""

from __future__ import annotations

import os
import site
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ondemand_plugin.commands.cli import cli


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600)


def fresh_environment(folder: Path) -> Path:
    """A new virtual environment that sees this one's packages, as ``--system-site-packages``
    would if this one were the system's: the plugin, pytest and hatchling come from here, so
    nothing is downloaded. Answers its python."""
    result = run(sys.executable, "-m", "venv", "--without-pip", str(folder))
    assert result.returncode == 0, result.stderr
    python = folder / "bin" / "python"
    purelib = run(str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))")
    # This environment's whole path, not only its site-packages: a .pth file named there (an
    # editable install's) is not read again from a folder another .pth file adds.
    seen = [entry for entry in sys.path if entry and Path(entry).is_dir()]
    Path(purelib.stdout.strip(), "parent-environment.pth").write_text(
        "\n".join([*site.getsitepackages(), *seen]) + "\n", encoding="utf-8"
    )
    return python


def test_the_generated_channel_passes_its_own_tests_in_a_fresh_environment(
    tmp_path: Path,
) -> None:
    project = tmp_path / "ondemand-pigeon_post"
    result = CliRunner().invoke(cli, ["new-channel", "pigeon_post", "--dir", str(project)])
    assert result.exit_code == 0, result.output
    assert (project / "src/ondemand_pigeon_post/__init__.py").is_file()
    assert os.access(project / ".ci/run", os.X_OK)
    assert '[project.entry-points.pm]\npigeon_post = "ondemand_pigeon_post"' in (
        project / "pyproject.toml"
    ).read_text(encoding="utf-8")

    python = fresh_environment(tmp_path / "venv")
    installed = run(
        sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
        "--no-deps", "--no-build-isolation", "--no-index", str(project),
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    tests = run(str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=project)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert " passed" in tests.stdout and "skipped" not in tests.stdout, tests.stdout
    assert (
        "TestPigeonPostConformance"
        in run(
            str(python),
            "-m",
            "pytest",
            "-q",
            "--collect-only",
            "-p",
            "no:cacheprovider",
            cwd=project,
        ).stdout
    )
    for lint in (["check"], ["format", "--check"]):
        linted = run(sys.executable, "-m", "ruff", *lint, ".", cwd=project)
        assert linted.returncode == 0, linted.stdout + linted.stderr


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("Pigeon", "is not a lowercase Python identifier"),
        ("pigeon-post", "is not a lowercase Python identifier"),
        ("class", "is not a lowercase Python identifier"),
        ("twilio_sms", "is taken"),
        ("ondemand", "is taken"),
    ],
)
def test_a_bad_or_taken_name_is_refused_and_nothing_is_written(
    tmp_path: Path, name: str, why: str
) -> None:
    project = tmp_path / "project"
    result = CliRunner().invoke(cli, ["new-channel", name, "--dir", str(project)])
    assert result.exit_code == 2
    assert why in result.output
    assert result.output.rstrip().endswith("[invalid_request]")
    assert not project.exists()


def test_a_folder_that_is_not_empty_is_refused_and_left_alone(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    result = CliRunner().invoke(cli, ["new-channel", "pigeon", "--dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "is not an empty folder" in result.output and "[invalid_request]" in result.output
    assert [path.name for path in tmp_path.iterdir()] == ["notes.txt"]


def test_an_empty_folder_is_used(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["new-channel", "pigeon", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "README.md").read_text(encoding="utf-8").startswith("# ondemand-pigeon\n")


def test_without_dir_the_project_goes_to_ondemand_name_in_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["new-channel", "pigeon_post"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "ondemand-pigeon-post/src/ondemand_pigeon_post/__init__.py").is_file()
    assert "pip install -e '.[test]' && pytest" in result.output
