"""The ondemand-telnyx distribution: its entry point, its typing marker, and nothing it needs
from the plugin beyond the distribution that carries ``hookspecs`` and the test kit."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


def test_the_wheel_has_the_pm_entry_point_and_its_own_dependencies(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(PROJECT),
        ],
        check=True,
        capture_output=True,
    )
    [wheel] = tmp_path.glob("ondemand_telnyx-*.whl")
    archive = zipfile.ZipFile(wheel)
    names = archive.namelist()
    assert "ondemand_telnyx/py.typed" in names
    [entry_points] = [name for name in names if name.endswith(".dist-info/entry_points.txt")]
    assert "[pm]\ntelnyx = ondemand_telnyx" in archive.read(entry_points).decode()
    [metadata] = [name for name in names if name.endswith(".dist-info/METADATA")]
    requires = {
        line.split(":", 1)[1].split(";")[0].strip().split(">")[0]
        for line in archive.read(metadata).decode().splitlines()
        if line.startswith("Requires-Dist:")
    }
    assert requires == {"ondemand-plugin", "attrs", "httpx", "cryptography", "pytest"}
