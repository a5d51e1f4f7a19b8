"""The bootstrap that starts an agent on a host troy has never seen: the wheel it ships and
the script it runs (troy.plugins.backends.bootstrap; the batch backends use it)."""

from __future__ import annotations

import base64
import subprocess
import sys
import zipfile
from pathlib import Path

from troy.plugins.backends import bootstrap

AGENT = [sys.executable, "-m", "troy.agent", "--coordination", "file:///c", "--pilot", "p-1"]


def test_the_wheel_holds_troy_and_its_entry_points(tmp_path: Path) -> None:
    wheel = bootstrap.build_wheel(tmp_path)
    again = bootstrap.build_wheel(tmp_path / "again")
    assert wheel.path.read_bytes() == again.path.read_bytes()  # reproducible
    with zipfile.ZipFile(wheel.path) as archive:
        names = set(archive.namelist())
        info = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "saga = troy.plugins.backends.saga:SagaBackend" in archive.read(info).decode()
    assert "troy/agent/agent.py" in names
    assert not any("__pycache__" in name for name in names)


def test_the_wheels_metadata_is_found_in_a_fresh_venv(tmp_path: Path) -> None:
    """Installed (here: unpacked, as pip does, without fetching the dependencies), the
    wheel is a distribution named troy with its plugins' entry points."""
    wheel = bootstrap.build_wheel(tmp_path)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    with zipfile.ZipFile(wheel.path) as archive:
        archive.extractall(site)
    run = subprocess.run(
        [
            str(venv / "bin/python"),
            "-c",
            "import importlib.metadata as m;"
            "print(m.version('troy'), [e.name for e in m.entry_points(group='troy.backends')])",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert "saga" in run.stdout and "local" in run.stdout


def test_bootstrap_script_travels_intact() -> None:
    arguments = bootstrap.use_arguments("/opt/py/bin/python3", AGENT)
    encoded = arguments[1].split()[2]
    assert base64.b64decode(encoded).decode() == bootstrap.BOOTSTRAP_SCRIPT
    assert arguments[2:5] == ["troy-bootstrap", "use", "/opt/py/bin/python3"]
    assert arguments[5:] == AGENT[1:]


def test_bootstrap_use_mode_reports_a_missing_python(tmp_path: Path) -> None:
    run = subprocess.run(
        ["/bin/sh", "-c", bootstrap.BOOTSTRAP_SCRIPT, "b", "use", "/no/python", "-m", "x"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert run.returncode != 0
    assert "troy bootstrap: no Python at '/no/python'" in run.stderr
