"""The saga backend's mappings, without a resource: description to SAGA job, states back.

These need radical.saga (its job description class) but no server; the live
tests are in test_saga_backend.py.
"""

from __future__ import annotations

import base64
import shlex
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from troy.core.pilot_manager import backend_class
from troy.model.description import PilotJobDescription
from troy.model.errors import BackendError
from troy.model.states import State
from troy.plugins.backends import bootstrap
from troy.plugins.backends.base import PilotLaunch
from troy.plugins.backends.saga import SagaBackend, files_url

pytest.importorskip("radical.saga", reason="radical.saga is not installed (pip install troy[saga])")

AGENT = [sys.executable, "-m", "troy.agent", "--coordination", "file:///c", "--pilot", "p-1"]


def launch_of(description: dict[str, Any], rm: str = "slurm://localhost") -> PilotLaunch:
    return PilotLaunch("p-1", rm, PilotJobDescription(description), "/scratch/p-1", AGENT)


@pytest.mark.parametrize(
    "rm",
    [
        "ssh://host",
        "slurm://localhost",
        "slurm+ssh://login.example.org",
        "pbs://x",
        "pbspro+ssh://x",
        "torque://x",
        "sge://x",
        "lsf+ssh://x",
    ],
)
def test_scheme_picks_the_saga_backend(rm: str) -> None:
    assert backend_class(rm, None) is SagaBackend


@pytest.mark.parametrize("pj_type", ["bigjob", "saga", "BIGJOB", 1])
def test_bigjob_names_pick_the_saga_backend(pj_type: Any) -> None:
    assert backend_class("fork://localhost", pj_type) is SagaBackend


def test_unknown_scheme_is_refused_with_the_schemes_it_takes() -> None:
    with pytest.raises(BackendError, match=r"gopher.*slurm"):
        SagaBackend("gopher://host")


def test_batch_description_carries_the_pilot_resources() -> None:
    backend = SagaBackend("slurm://localhost")
    launch = launch_of(
        {
            "number_of_processes": 8,
            "processes_per_host": 4,
            "wall_time_limit": 2.5,
            "queue": "debug",
            "project": "chem42",
            "candidate_hosts": ["n1", "n2"],
            "total_physical_memory": 2048,
            "cpu_architecture": "x86_64",
        }
    )
    jd = backend.job_description(launch, ["-c", "echo it's"])
    assert jd.executable == "/bin/sh"
    assert jd.arguments == ["-c", shlex.quote("echo it's")]
    assert jd.working_directory == "/scratch/p-1"
    assert (jd.output, jd.error) == ("agent.out", "agent.err")
    assert jd.name == "p-1"
    assert jd.number_of_processes == 8
    assert jd.total_cpu_count == 8
    assert jd.processes_per_host == 4
    assert jd.wall_time_limit == 3  # whole minutes, rounded up
    assert jd.queue == "debug"
    assert jd.project == "chem42"
    assert jd.candidate_hosts == ["n1", "n2"]
    assert jd.total_physical_memory == 2048
    assert jd.system_architecture == {"cpu": "x86_64"}


def test_fork_and_ssh_jobs_are_one_process() -> None:
    jd = SagaBackend("ssh://host").job_description(
        launch_of({"number_of_processes": 8, "queue": "q"}, "ssh://host"), ["-c", "true"]
    )
    assert not jd.number_of_processes
    assert not jd.queue


def test_slurm_needs_a_queue() -> None:
    with pytest.raises(BackendError, match="queue"):
        SagaBackend("slurm://localhost").check(PilotJobDescription({"number_of_processes": 2}))
    SagaBackend("slurm://localhost").check(PilotJobDescription({"queue": "debug"}))
    SagaBackend("pbs://host").check(PilotJobDescription({}))


def test_files_are_reached_by_sftp_for_ssh_forms_only() -> None:
    assert files_url("ssh://me@host:2222") == "sftp://me@host:2222"
    assert files_url("slurm+ssh://login") == "sftp://login"
    assert files_url("slurm://localhost") == "file://localhost"
    assert files_url("fork://localhost") == "file://localhost"


def _state_after(saga_state: str, handle: dict[str, Any]) -> tuple[State, str]:
    backend = SagaBackend("slurm://localhost")
    backend._states[handle["job_id"]] = (time.monotonic(), saga_state, None)
    try:
        return backend.state(handle)
    finally:
        backend._states.pop(handle["job_id"], None)


@pytest.mark.parametrize(
    ("saga_state", "state"),
    [
        ("New", State.Pending),
        ("Pending", State.Pending),
        ("Suspended", State.Pending),
        ("Running", State.Running),
        ("Unknown", State.Unknown),
    ],
)
def test_live_states_map(saga_state: str, state: State) -> None:
    handle = {"job_id": f"[slurm://localhost]-[{saga_state}]", "submitted": time.time()}
    assert _state_after(saga_state, handle)[0] == state


def test_cancel_at_the_wall_time_is_an_end_not_a_cancel() -> None:
    """SLURM reports a job killed at its time limit as canceled: troy tells them apart."""
    handle = {
        "job_id": "[slurm://localhost]-[7]",
        "submitted": time.time() - 61,
        "wall_time_limit": 1,
    }
    state, detail = _state_after("Canceled", handle)
    assert state == State.Done
    assert "wall time limit of 1 min reached" in detail
    handle["submitted"] = time.time() - 10
    assert _state_after("Canceled", handle) == (
        State.Canceled,
        "the resource manager canceled the agent job",
    )


def test_failed_job_reports_the_agents_stderr(tmp_path: Path) -> None:
    (tmp_path / "agent.err").write_text("Traceback ...\nImportError: no module named troy\n")
    handle = {"job_id": "[slurm://localhost]-[8]", "working_directory": str(tmp_path)}
    state, detail = _state_after("Failed", handle)
    assert state == State.Failed
    assert detail.endswith("ImportError: no module named troy")


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
    backend = SagaBackend("fork://localhost")
    arguments = backend._bootstrap_arguments(
        launch_of({"agent_python": "/opt/py/bin/python3"}, "fork://localhost")
    )
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
