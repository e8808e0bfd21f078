"""``ondemand sandbox``: serves the sandbox, and says what to install when its extra is missing."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from starlette.testclient import TestClient
from test_cli import run_ondemand

from ondemand_plugin.commands.cli import cli
from ondemand_sandbox import build_app, config_path

# The plugin's starter templates, which the demo practice gets with its add-on.
STARTER_LABELS = {"Balance by text", "Balance by e-mail", "Balance by phone call"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_it_prints_the_address_and_serves_the_demo_practice(tmp_path: Path) -> None:
    port = free_port()
    home = tmp_path / "home"
    server = subprocess.Popen(
        [sys.executable, "-m", "ondemand_plugin", "sandbox", "--port", str(port), "--home", home],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        first_line = server.stdout.readline()
        assert f"open http://127.0.0.1:{port}/ in your browser" in first_line
        assert "with the ondemand command" in server.stdout.readline()
        pointer = server.stdout.readline().strip()
        assert pointer == f"export ONDEMAND_CONFIG={(home / 'ondemand.json').resolve()}"
        page = ""
        for _attempt in range(120):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    page = response.read().decode()
                break
            except OSError:
                if server.poll() is not None:
                    raise AssertionError(server.stderr.read() if server.stderr else "") from None
                time.sleep(0.25)
        assert "Maple Street Pediatrics" in page
        assert (home / "sandbox.db").is_file() and (home / "ondemand.db").is_file()
        # The line it printed points the command at the sandbox's own database.
        status = run_ondemand(
            "addon", "status", "--practice", "demo", "--json",
            home=tmp_path / "user", env={"ONDEMAND_CONFIG": pointer.partition("=")[2]},
        )  # fmt: skip
        assert json.loads(status.stdout)["enabled"] is True, status.stderr
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_without_its_extra_it_says_what_to_install() -> None:
    # A None entry in sys.modules makes the import fail, as when the extra is not installed.
    probe = (
        "import sys; sys.modules['starlette'] = None; "
        "from ondemand_plugin.commands.cli import main; sys.argv = ['ondemand', 'sandbox']; main()"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 1
    assert "starlette is missing" in done.stderr
    assert "pip install 'ondemand-plugin[sandbox]'" in done.stderr


def test_its_help_names_its_options() -> None:
    result = CliRunner().invoke(cli, ["sandbox", "--help"])
    assert result.exit_code == 0
    for option in ("--host", "--port", "--home"):
        assert option in result.output


def test_the_command_works_on_the_sandbox_after_a_walk_through_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    client = TestClient(build_app(home, "http://testserver"))
    with client:
        # A visitor walks through the sandbox: its first start switched the add-on on.
        page = client.get("/practices/demo/patients/p-lily").text
        assert "Send Balance Notification" in page
    config = config_path(home)
    assert config.is_file() and oct(config.stat().st_mode & 0o777) == "0o600"

    def ondemand(*args: str, **env: str) -> Any:
        result = run_ondemand(*args, "--json", home=tmp_path / "user", env=env)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    status = ondemand("--config", str(config), "addon", "status", "--practice", "demo")
    assert status["enabled"] is True
    templates = ondemand("templates", "list", "--practice", "demo", ONDEMAND_CONFIG=str(config))
    assert {template["label"] for template in templates} == STARTER_LABELS
    assert not (tmp_path / "user").exists()
