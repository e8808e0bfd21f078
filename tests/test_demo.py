"""``ondemand demo``, run as the installed console script with nothing configured: it tells the
whole story of the README on the embedded default, and can be run again and again."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ONDEMAND = Path(sys.executable).parent / "ondemand"
MEI_LINK = "https://pay.example.com/q/demo/g-mei?amount=120.50"


def run_demo(home: Path, *, ondemand_home: Path | None) -> subprocess.CompletedProcess[str]:
    environ = {name: value for name, value in os.environ.items() if not name.startswith("ONDEMAND")}
    environ["HOME"] = str(home)
    if ondemand_home is not None:
        environ["ONDEMAND_HOME"] = str(ondemand_home)
    return subprocess.run(
        [str(ONDEMAND), "demo"], env=environ, capture_output=True, text=True, timeout=120
    )


def sections(output: str) -> dict[int, str]:
    """The story's numbered sections ("== 4. ..."), by number."""
    parts = re.split(r"^== (\d+)\. ", output, flags=re.MULTILINE)
    return {int(number): text for number, text in zip(parts[1::2], parts[2::2], strict=True)}


def test_the_demo_tells_the_whole_story(tmp_path: Path) -> None:
    result = run_demo(tmp_path, ondemand_home=tmp_path)
    assert result.returncode == 0, result.stderr
    output = result.stdout
    story = sections(output)
    assert sorted(story) == list(range(1, 9))
    assert len(output.splitlines()) <= 120
    assert "sends around the clock" in output.split("== 1.")[0]

    # R1: switched on by an account manager, with the audit line.
    assert "shows no On-Demand action" in story[1]
    assert re.search(r"UTC  ON  by Sam Rivera: ", story[1])

    # R2, R8: the action, and the dialog for a patient with two guarantors.
    assert "[Send Balance Notification] (enabled)" in story[2]
    assert re.search(r"Mei Chen +\$120\.50  can pay", story[2])
    assert re.search(r"Tom Chen +\$0\.00  no payment can be made", story[2])
    assert re.search(r"allowed  Mei Chen \(guarantor\) +text +\+15035550123", story[2])
    assert re.search(r"refused  Mei Chen \(guarantor\) +call", story[2])
    assert "opted out of call messages" in story[2]
    assert re.search(r"can be made\n    Tom Chen.s balance is \$0\.00: the notification", story[2])

    # R7: the starter templates, one per mode, shown through -MANAGE-.
    for starter in ("'Balance by text' (text)", "'Balance by e-mail' (e-mail)", "(call)"):
        assert starter in story[3]

    # A text bubble with the QuickPay link in one piece, and an e-mail, as received.
    bubble = [line for line in story[4].splitlines() if line.startswith("    | ")]
    assert any(MEI_LINK in line for line in bubble)
    assert "Subject: Your balance at Maple Street Pediatrics" in story[4]
    assert "To:      mei.chen@example.com" in story[4]

    # R4, R3: the history panel, and no change to the dunning count.
    assert "On-Demand Balance Notification (text)" in story[5]
    assert "On-Demand Balance Notification (e-mail)" in story[5]
    assert "dunning count: 1 before, 1 after" in story[5]

    # R5: zero balance, sent without a link.
    assert "No payment is due at this time." in story[6]
    assert "https://" not in story[6]
    assert "asked of the host for Tom: 0" in story[6]

    # R6: the refusal for Noah Park.
    assert "[Send Balance Notification] (disabled)" in story[7]
    assert "batched statement" in story[7]
    assert "[no_batched_statement]" in story[7]

    assert str(tmp_path / "demo" / "ondemand.db") in story[8]


def test_the_demo_messages_are_in_its_outbox_folder(tmp_path: Path) -> None:
    assert run_demo(tmp_path, ondemand_home=tmp_path).returncode == 0
    outbox = tmp_path / "demo" / "outbox" / "demo"
    messages = [json.loads(path.read_text("utf-8")) for path in outbox.glob("*.json")]
    assert sorted((message["mode"], message["to"]) for message in messages) == [
        ("email", "mei.chen@example.com"),
        ("email", "tom.chen@example.com"),
        ("text", "+15035550123"),
    ]
    assert (tmp_path / "demo" / "ondemand.db").is_file()


def test_the_demo_runs_again_from_a_fresh_folder(tmp_path: Path) -> None:
    first = run_demo(tmp_path, ondemand_home=tmp_path)
    second = run_demo(tmp_path, ondemand_home=tmp_path)
    assert first.returncode == 0 and second.returncode == 0, second.stderr
    # A fresh database each time: one switch in the audit trail, three messages in the outbox.
    assert len(re.findall(r"UTC  ON  by Sam Rivera", second.stdout)) == 1
    assert "(3 messages, one JSON file each)" in second.stdout
    assert len(list((tmp_path / "demo" / "outbox" / "demo").glob("*.json"))) == 3


def test_without_ondemand_home_the_demo_lives_under_the_users_share_folder(tmp_path: Path) -> None:
    result = run_demo(tmp_path, ondemand_home=None)
    assert result.returncode == 0, result.stderr
    folder = tmp_path / ".local" / "share" / "ondemand" / "demo"
    assert (folder / "ondemand.db").is_file()
    assert str(folder) in result.stdout
