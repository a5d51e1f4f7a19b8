"""The saga (BigJob-native) backend: offline what SAGA makes of it, then real resources.

The offline tests need radical.saga but no resource: the registry picks this
backend, SAGA takes the job descriptions troy maps (the mapping itself is
tested in test_saga_mapping.py), SAGA job states reach the pilot through the
batch template, and SAGA's file calls stage the wheel and read ``agent.err``
on this host.  Then the conformance suite runs once per resource URL; the
tests after it check what only this backend does: the agent inside a SLURM
job, MPI units, the bootstrap (a named Python, or troy shipped as a wheel into
a venv) and its failures.  sshd and SLURM are started by
``scripts/services.sh`` (see tests/services.py); without them these tests
skip, saying why.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from services import have_mpicc, slurm_url, ssh_url

from troy import PilotJobService, WorkUnitService
from troy.core.pilot_manager import backend_class
from troy.model.description import PilotJobDescription
from troy.model.errors import BackendError
from troy.model.states import State
from troy.plugins.backends import bootstrap
from troy.plugins.backends.base import PilotLaunch
from troy.plugins.backends.saga import SagaBackend
from troy.testing.backends import START_TIMEOUT, BackendSuite

pytest.importorskip("radical.saga", reason="radical.saga is not installed (pip install troy[saga])")

#: The agent's Python on the resources: this one (the test resources share this host).
AGENT_PYTHON = sys.executable

MPI_HELLO = r"""
#include <mpi.h>
#include <stdio.h>
int main(int argc, char **argv) {
    int rank, size;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    printf("rank %d of %d\n", rank, size);
    MPI_Finalize();
    return 0;
}
"""
#: OpenMPI refuses to run as root without these (the tests run as root here).
MPI_AS_ROOT = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}


class SagaSuite(BackendSuite):
    @pytest.fixture
    def backend_pj_type(self) -> str:
        return "bigjob"

    @pytest.fixture
    def pilot_description(self, tmp_path: Path) -> dict[str, Any]:
        return {
            "number_of_processes": 2,
            "working_directory": str(tmp_path / "pilot"),
            "agent_python": AGENT_PYTHON,
        }


class TestSagaFork(SagaSuite):
    @pytest.fixture
    def backend_rm(self) -> str:
        return "fork://localhost"


@pytest.mark.ssh
class TestSagaSsh(SagaSuite):
    @pytest.fixture
    def backend_rm(self) -> str:
        return ssh_url()


@pytest.mark.slurm
class TestSagaSlurm(SagaSuite):
    @pytest.fixture
    def backend_rm(self) -> str:
        return slurm_url()

    @pytest.fixture
    def pilot_description(self, tmp_path: Path) -> dict[str, Any]:
        return {
            "number_of_processes": 2,
            "working_directory": str(tmp_path / "pilot"),
            "agent_python": AGENT_PYTHON,
            "queue": "debug",
            "wall_time_limit": 10,
        }


# -- offline: SAGA without a resource --------------------------------------------------------
AGENT = [sys.executable, "-m", "troy.agent", "--coordination", "file:///c", "--pilot", "p-1"]


def launch_of(description: dict[str, Any], rm: str, directory: str = "/scratch/p-1") -> PilotLaunch:
    return PilotLaunch("p-1", rm, PilotJobDescription(description), directory, AGENT)


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


def test_the_backend_refuses_what_its_resource_cannot_take() -> None:
    with pytest.raises(BackendError, match=r"gopher.*slurm"):
        SagaBackend("gopher://host")
    with pytest.raises(BackendError, match="queue"):
        SagaBackend("slurm://localhost").check(PilotJobDescription({"number_of_processes": 2}))
    SagaBackend("slurm://localhost").check(PilotJobDescription({"queue": "debug"}))


def test_saga_takes_the_job_description_troy_maps() -> None:
    description = {
        "number_of_processes": 8,
        "processes_per_host": 4,
        "wall_time_limit": 2.5,
        "queue": "debug",
        "project": "chem42",
        "candidate_hosts": ["n1", "n2"],
        "total_physical_memory": 2048,
        "cpu_architecture": "x86_64",
    }
    backend = SagaBackend("slurm://localhost")
    jd = backend.job_description(launch_of(description, "slurm://localhost"), ["-c", "echo it's"])
    assert jd.executable == "/bin/sh"
    assert jd.arguments == ["-c", shlex.quote("echo it's")]
    assert jd.working_directory == "/scratch/p-1"
    assert (jd.output, jd.error) == ("agent.out", "agent.err")
    assert jd.name == "p-1"
    assert (jd.number_of_processes, jd.total_cpu_count, jd.processes_per_host) == (8, 8, 4)
    assert jd.wall_time_limit == 3
    assert (jd.queue, jd.project, jd.candidate_hosts) == ("debug", "chem42", ["n1", "n2"])
    assert jd.total_physical_memory == 2048
    assert jd.system_architecture == {"cpu": "x86_64"}
    ssh = SagaBackend("ssh://host").job_description(
        launch_of(description, "ssh://host"), ["-c", "true"]
    )
    assert not ssh.number_of_processes
    assert not ssh.queue


@pytest.fixture
def saga_says(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A SagaBackend for slurm://localhost whose job is in the SAGA state given."""

    def backend(saga_state: str) -> SagaBackend:
        made = SagaBackend("slurm://localhost")
        monkeypatch.setattr(made, "query", lambda handle, look_back: saga_state)
        return made

    SagaBackend._states.clear()
    yield backend
    SagaBackend._states.clear()


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
def test_live_states_map(saga_says: Any, saga_state: str, state: State) -> None:
    handle = {"job_id": "[slurm://localhost]-[6]", "submitted": time.time()}
    assert saga_says(saga_state).state(handle)[0] == state


def test_cancel_at_the_wall_time_is_an_end_not_a_cancel(saga_says: Any) -> None:
    """SLURM reports a job killed at its time limit as canceled: troy tells them apart."""
    handle = {"job_id": "[slurm://localhost]-[7]", "submitted": time.time() - 61}
    handle["wall_time_limit"] = 1
    state, detail = saga_says("Canceled").state(handle)
    assert state == State.Done
    assert "wall time limit of 1 min reached" in detail
    SagaBackend._states.clear()
    handle["submitted"] = time.time() - 10
    assert saga_says("Canceled").state(handle) == (
        State.Canceled,
        "the resource manager canceled the agent job",
    )


def test_failed_job_reports_the_agents_stderr(saga_says: Any, tmp_path: Path) -> None:
    (tmp_path / "agent.err").write_text("Traceback ...\nImportError: no module named troy\n")
    handle = {"job_id": "[slurm://localhost]-[8]", "working_directory": str(tmp_path)}
    state, detail = saga_says("Failed").state(handle)
    assert state == State.Failed
    assert detail == "agent job failed: Traceback ...\nImportError: no module named troy"


def test_the_wheel_is_staged_once_through_saga(tmp_path: Path) -> None:
    wheel = bootstrap.troy_wheel()
    backend = SagaBackend("fork://localhost")
    where = backend.ship_wheel(launch_of({}, "fork://localhost", str(tmp_path)), wheel)
    assert where == f"{tmp_path}/.troy/{wheel.digest}/{wheel.path.name}"
    assert Path(where).read_bytes() == wheel.path.read_bytes()
    Path(where).write_bytes(b"left alone")
    backend.ship_wheel(launch_of({}, "fork://localhost", str(tmp_path)), wheel)
    assert Path(where).read_bytes() == b"left alone"


# -- helpers -----------------------------------------------------------------------------


def slurm_description(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "number_of_processes": 2,
        "working_directory": str(tmp_path / "pilot"),
        "agent_python": AGENT_PYTHON,
        "queue": "debug",
        "wall_time_limit": 10,
        **extra,
    }


def mpi_program(tmp_path: Path) -> Path:
    """A 2-rank MPI hello world, compiled here with mpicc."""
    mpicc = have_mpicc()
    source = tmp_path / "hello.c"
    source.write_text(MPI_HELLO)
    binary = tmp_path / "hello-mpi"
    subprocess.run([mpicc, "-o", str(binary), str(source)], check=True)
    return binary


def assert_both_ranks(unit: Any) -> None:
    assert unit.wait(timeout=START_TIMEOUT) == State.Done, unit.state_detail
    output = Path(unit.sandbox, "stdout").read_text()
    assert sorted(re.findall(r"rank \d of \d", output)) == ["rank 0 of 2", "rank 1 of 2"], output


# -- SLURM ---------------------------------------------------------------------------------
@pytest.mark.slurm
def test_agent_runs_inside_a_slurm_job(
    services: tuple[PilotJobService, WorkUnitService], tmp_path: Path
) -> None:
    pilots, units = services
    pilot = pilots.create(slurm_url(), slurm_description(tmp_path))
    assert pilot.pj_type == "saga"  # slurm:// picks the saga backend by scheme
    unit = units.submit({"executable": "/usr/bin/env"})
    assert unit.wait(timeout=START_TIMEOUT) == State.Done, unit.state_detail
    environment = dict(
        line.split("=", 1)
        for line in Path(unit.sandbox, "stdout").read_text().splitlines()
        if "=" in line
    )
    job_id = re.search(r"\[(\d+)\]$", pilot.handle["job_id"])
    assert job_id is not None, pilot.handle
    assert environment.get("SLURM_JOB_ID") == job_id.group(1)
    assert pilot.slots == 2  # sized from the allocation (SLURM_CPUS_ON_NODE)


@pytest.mark.slurm
def test_mpi_unit_in_a_slurm_pilot(
    services: tuple[PilotJobService, WorkUnitService], tmp_path: Path
) -> None:
    binary = mpi_program(tmp_path)
    pilots, units = services
    pilots.create(slurm_url(), slurm_description(tmp_path))
    unit = units.submit(
        {"executable": str(binary), "spmd_variation": "mpi", "number_of_processes": 2}
    )
    assert_both_ranks(unit)


@pytest.mark.slurm
def test_slurm_pilot_without_a_queue_is_refused_before_anything_is_recorded(
    services: tuple[PilotJobService, WorkUnitService], tmp_path: Path
) -> None:
    pilots, _ = services
    description = slurm_description(tmp_path)
    del description["queue"]
    with pytest.raises(BackendError, match="queue"):
        pilots.create("slurm://localhost", description)
    assert pilots.list() == []


# -- SSH -----------------------------------------------------------------------------------
@pytest.mark.ssh
def test_mpi_unit_in_an_ssh_pilot(
    services: tuple[PilotJobService, WorkUnitService], tmp_path: Path
) -> None:
    binary = mpi_program(tmp_path)
    pilots, units = services
    pilots.create(
        ssh_url(),
        {
            "number_of_processes": 2,
            "working_directory": str(tmp_path / "pilot"),
            "agent_python": AGENT_PYTHON,
            "environment": MPI_AS_ROOT,
        },
    )
    unit = units.submit(
        {"executable": str(binary), "spmd_variation": "mpi", "number_of_processes": 2}
    )
    assert_both_ranks(unit)


@pytest.mark.ssh
def test_shipped_troy_is_installed_once_per_working_directory(
    services: tuple[PilotJobService, WorkUnitService], tmp_path: Path
) -> None:
    """Without agent_python the backend copies a wheel of this troy and the bootstrap
    makes a venv from it; a second pilot in the same directory reuses that venv."""
    pilots, units = services
    description = {"number_of_processes": 1, "working_directory": str(tmp_path / "pilot")}
    first = pilots.create(ssh_url(), description)
    unit = units.submit({"executable": "/bin/sh", "arguments": ["-c", "command -v python"]})
    # pip installs troy's dependencies into the new venv: allow for it.
    assert unit.wait(timeout=START_TIMEOUT * 3) == State.Done, unit.state_detail
    ready = list((tmp_path / "pilot" / ".troy").glob("venv-*/.troy-ready"))
    assert len(ready) == 1, list((tmp_path / "pilot").rglob("*"))
    made = ready[0].stat().st_mtime_ns
    first.cancel()

    second = pilots.create(ssh_url(), description)
    started = time.monotonic()
    unit = units.submit({"executable": "/bin/true"})
    assert unit.wait(timeout=START_TIMEOUT) == State.Done, unit.state_detail
    assert unit.pilot == second.id
    assert ready[0].stat().st_mtime_ns == made  # not installed again
    assert time.monotonic() - started < 30


@pytest.mark.ssh
def test_shipped_agents_get_the_third_party_plugins_they_load(
    services: tuple[PilotJobService, WorkUnitService], tmp_path: Path
) -> None:
    """troy-demo's `mpiexec` launcher, installed only here, is loaded by an agent that
    was started through ssh in ship mode: its package travelled with troy's wheel."""
    pytest.importorskip("troy_demo", reason="examples/troy-demo is not installed here")
    pilots, units = services
    description = {
        "number_of_processes": 1,
        "working_directory": str(tmp_path / "pilot"),
        "launcher": "mpiexec",
    }
    pilot = pilots.create(ssh_url(), description)
    unit = units.submit({"executable": "/bin/true"})
    assert unit.wait(timeout=START_TIMEOUT * 3) == State.Done, (unit.state_detail, pilot.state)
    [venv] = [path for path in (tmp_path / "pilot" / ".troy").glob("venv-*") if path.is_dir()]
    assert list(venv.glob("lib/python3*/site-packages/troy_demo/launcher.py"))
    shipped = sorted(p.name for p in (tmp_path / "pilot" / ".troy").glob("*/*.whl"))
    assert "troy_demo-0.1.0-py3-none-any.whl" in shipped


# -- bootstrap failures ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "where",
    [
        "fork",
        pytest.param("ssh", marks=pytest.mark.ssh),
        pytest.param("slurm", marks=pytest.mark.slurm),
    ],
)
def test_bad_agent_python_fails_the_pilot_with_the_reason(
    where: str, services: tuple[PilotJobService, WorkUnitService], tmp_path: Path
) -> None:
    rm = {"fork": lambda: "fork://localhost", "ssh": ssh_url, "slurm": slurm_url}[where]()
    pilots, _ = services
    started = time.monotonic()
    pilot = pilots.create(rm, slurm_description(tmp_path, agent_python="/no/such/python"), "bigjob")
    assert pilot.wait(timeout=30) == State.Failed
    assert "no Python at '/no/such/python'" in pilot.state_detail
    assert time.monotonic() - started < 15  # seconds, not a heartbeat timeout


def test_python_without_troy_fails_the_pilot_with_the_reason(
    services: tuple[PilotJobService, WorkUnitService], tmp_path: Path
) -> None:
    pilots, _ = services
    bare = "/usr/bin/python3"
    if not os.access(bare, os.X_OK):
        pytest.skip(f"{bare} is not here to stand for a Python without troy")
    description = {"working_directory": str(tmp_path / "pilot"), "agent_python": bare}
    pilot = pilots.create("fork://localhost", description, "bigjob")
    assert pilot.wait(timeout=30) == State.Failed
    assert "has no troy" in pilot.state_detail
