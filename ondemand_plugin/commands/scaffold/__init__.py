"""``ondemand new-channel NAME``: a starter project for a channel distributed on its own.

It writes a project that passes its own tests as generated: a pyproject with the entry point
in group ``pm``, the channel (JSON over HTTP with a bearer key, its errors mapped as the
contract asks), an inbound route checking an HMAC signature and telling the plugin's events,
tests that run the channel conformance kit against a loopback provider, a README and a
``.ci/run``. The author replaces the provider's details; the shape stays.
"""

from __future__ import annotations

import importlib.metadata
import keyword
import re
from importlib.resources import files
from pathlib import Path

import hookspecs
from ondemand_plugin.boundary import contracts
from ondemand_plugin.errors import ErrorCode, OnDemandError

# A channel's name is its configuration key, its entry point's name and part of its package's.
_NAME = re.compile(r"[a-z][a-z0-9_]*")
# Each template and where it goes in the project; ``<<package>>`` is replaced in paths too.
TEMPLATES = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "ci_run.tmpl": ".ci/run",
    "gitignore.tmpl": ".gitignore",
    "package_init.py.tmpl": "src/<<package>>/__init__.py",
    "py.typed.tmpl": "src/<<package>>/py.typed",
    "test_channel.py.tmpl": "tests/test_<<name>>_channel.py",
}


def taken_names() -> set[str]:
    """Names a new channel cannot have: the plugin's configuration keys (built-in channels
    among them) and the names of installed plugins' entry points."""
    keys = set(contracts.schema("plugin-config")["properties"])
    installed = {
        point.name for point in importlib.metadata.entry_points(group=hookspecs.PROJECT_NAME)
    }
    return keys | installed


def check_name(name: str) -> None:
    if not _NAME.fullmatch(name) or keyword.iskeyword(name):
        raise OnDemandError(
            f"The channel name {name!r} is not a lowercase Python identifier: use letters, "
            "digits and underscores, starting with a letter (for example 'pigeon_post').",
            code=ErrorCode.INVALID_REQUEST,
            field="name",
        )
    if name in taken_names():
        raise OnDemandError(
            f"The channel name {name!r} is taken by the plugin's configuration or an installed "
            "plugin: pick another name.",
            code=ErrorCode.INVALID_REQUEST,
            field="name",
        )


def new_channel(name: str, directory: Path) -> list[Path]:
    """Write the project of the channel ``name`` into ``directory`` (made if missing, else it
    must be empty); answers the files written. Nothing is written when ``name`` or
    ``directory`` is refused."""
    check_name(name)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise OnDemandError(
            f"{directory} already exists and is not an empty folder: give --dir a new or empty "
            "folder.",
            code=ErrorCode.INVALID_REQUEST,
            field="dir",
        )
    words = {
        "<<name>>": name,
        "<<Name>>": "".join(part.capitalize() for part in name.split("_")),
        "<<package>>": f"ondemand_{name}",
        "<<distribution>>": f"ondemand-{name.replace('_', '-')}",
    }
    folder = files(__name__) / "channel"
    written = []
    for template, target in TEMPLATES.items():
        path = directory / _fill(target, words)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_fill((folder / template).read_text(encoding="utf-8"), words), "utf-8")
        written.append(path)
    (directory / ".ci/run").chmod(0o755)
    return written


def _fill(text: str, words: dict[str, str]) -> str:
    for word, value in words.items():
        text = text.replace(word, value)
    return text
