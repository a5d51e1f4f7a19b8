"""The bootstrap that starts an agent on a host troy has never seen: the wheel it ships and
the script it runs (troy.plugins.backends.bootstrap; the batch backends use it)."""

from __future__ import annotations

import base64
import importlib.metadata
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

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


# -- third-party plugin packages travel with the agent ------------------------------------------
def demo_distribution() -> importlib.metadata.Distribution:
    try:
        return importlib.metadata.distribution("troy-demo")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("examples/troy-demo is not installed (scripts/test.sh installs it)")


def test_the_packages_of_agent_side_plugins_are_shipped_and_no_others() -> None:
    demo_distribution()
    names = [d.metadata["Name"] for d in bootstrap.plugin_distributions()]
    assert "troy-demo" in names  # coordination, store, launcher and observer plugins
    assert "troy" not in names  # shipped as troy's own wheel
    assert "troy-lpt" not in names  # a scheduler only: the manager's side, not the agent's


def test_a_plugin_package_becomes_a_wheel_without_its_troy_requirement(tmp_path: Path) -> None:
    wheel = bootstrap.build_plugin_wheel(demo_distribution(), tmp_path)
    again = bootstrap.build_plugin_wheel(demo_distribution(), tmp_path / "again")
    assert wheel.path.read_bytes() == again.path.read_bytes()  # reproducible
    assert wheel.path.name == "troy_demo-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel.path) as archive:
        names = set(archive.namelist())
        metadata = archive.read("troy_demo-0.1.0.dist-info/METADATA").decode()
        entry_points = archive.read("troy_demo-0.1.0.dist-info/entry_points.txt").decode()
    assert {"troy_demo/launcher.py", "troy_demo/coordination.py", "troy_demo/py.typed"} <= names
    assert not any("__pycache__" in name for name in names)
    assert "mpiexec = troy_demo.launcher:MpiexecLauncher" in entry_points
    requirements = [line for line in metadata.splitlines() if line.startswith("Requires-Dist")]
    assert requirements == ['Requires-Dist: pytest>=8; extra == "test"']  # troy's is dropped


def test_the_venv_is_named_by_troy_and_the_plugins(tmp_path: Path) -> None:
    troy = bootstrap.Wheel(tmp_path / "t.whl", "aaaaaaaaaaaa")
    plugin = bootstrap.Wheel(tmp_path / "p.whl", "bbbbbbbbbbbb")
    assert bootstrap.venv_digest(troy) == "aaaaaaaaaaaa"
    named = bootstrap.venv_digest(troy, [plugin])
    assert named != "aaaaaaaaaaaa" and len(named) == 12
    assert bootstrap.venv_digest(troy, [bootstrap.Wheel(plugin.path, "cccccccccccc")]) != named
    with pytest.raises(bootstrap.ShipError, match="comma"):
        bootstrap.ship_arguments("/w", troy, "/w/t.whl", AGENT, [(plugin, "/w/a,b/p.whl")])
