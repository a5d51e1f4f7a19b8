"""MPI units and launchers: how argv is wrapped, the slots a unit takes, a live MPI run."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

import troy
from troy import State, WorkUnitDescription
from troy.agent.launcher import allocation_facts, load_launcher, prepare
from troy.agent.resources import Allocation
from troy.model.cores import unit_cores
from troy.model.errors import BadDescription
from troy.plugins.launchers.base import LauncherMissing

ARGV = ["./solver", "--steps", "10"]
NONE = Allocation("none", (("me", 4),))
SLURM1 = Allocation("slurm", (("n1", 8),), "1")
SLURM2 = Allocation("slurm", (("n1", 8), ("n2", 8)), "2")
PBS2 = Allocation("pbs", (("a", 4), ("b", 4)), "3", "/var/spool/pbs/aux/3")
SGE2 = Allocation("sge", (("a", 4), ("b", 4)), "4", "/tmp/pe_hostfile")
LSF2 = Allocation("lsf", (("a", 4), ("b", 4)), "5", "/tmp/lsf_hostfile")
LSF_NO_FILE = Allocation("lsf", (("a", 4),), "6")


# -- spmd_variation -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("single", "single"), ("MPI", "mpi"), ("mpi", "mpi"), ("OpenMPI", "openmpi"),
        (" Single ", "single"),
    ],
)  # fmt: skip
def test_spmd_variation_is_stored_in_lowercase(given: str, stored: str) -> None:
    assert WorkUnitDescription(executable="x", spmd_variation=given).spmd_variation == stored


@pytest.mark.parametrize("bad", ["mpich", "", "multiple", 1, ["mpi"]])
def test_other_spmd_variations_are_refused_naming_field_and_choices(bad: Any) -> None:
    with pytest.raises(BadDescription) as error:
        WorkUnitDescription(executable="x", spmd_variation=bad)
    assert error.value.field == "spmd_variation"
    if isinstance(bad, str):
        assert "'single', 'mpi', 'openmpi'" in str(error.value)


# -- slots a unit takes: the description and the agent agree ----------------------------------
@pytest.mark.parametrize(
    ("values", "cores"),
    [
        ({}, 1),
        ({"number_of_processes": 4}, 4),
        ({"number_of_processes": 4, "threads_per_process": 2}, 4),  # single: as ever
        ({"spmd_variation": "mpi"}, 1),
        ({"spmd_variation": "mpi", "number_of_processes": 4}, 4),
        ({"spmd_variation": "mpi", "number_of_processes": 4, "threads_per_process": 3}, 12),
        ({"spmd_variation": "MPI", "number_of_processes": 2, "threads_per_process": 2}, 4),
        ({"spmd_variation": "openmpi", "threads_per_process": 5}, 5),
        ({"spmd_variation": "mpi", "number_of_processes": 4, "total_cpu_count": 6}, 6),
        ({"total_cpu_count": 3, "number_of_processes": 8}, 3),
    ],
)
def test_unit_cores(values: dict[str, Any], cores: int) -> None:
    # The raw dict (what the agent claims, possibly as a user wrote it) ...
    assert unit_cores(values) == cores
    # ... and the validated description (what placement uses).
    assert WorkUnitDescription(values, executable="x").cores == cores


# -- wrapping argv ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("description", "allocation", "argv"),
    [
        # single units run as they are, except on a SLURM allocation of several nodes
        ({}, NONE, ARGV),
        ({"spmd_variation": "single", "number_of_processes": 2}, SLURM1, ARGV),
        ({}, PBS2, ARGV),
        (
            {"number_of_processes": 3},
            SLURM2,
            ["srun", "--nodes=1", "--ntasks=1", "--cpus-per-task=3", "--exact", "--quiet", *ARGV],
        ),
        (
            {},
            SLURM2,
            ["srun", "--nodes=1", "--ntasks=1", "--cpus-per-task=1", "--exact", "--quiet", *ARGV],
        ),
        # MPI in SLURM: srun, even on one node
        (
            {"spmd_variation": "mpi"},
            SLURM1,
            [
                "srun", "--ntasks=1", "--cpus-per-task=1", "--exact", "--kill-on-bad-exit=1",
                "--quiet", *ARGV,
            ],
        ),
        (
            {
                "spmd_variation": "MPI",
                "number_of_processes": 8,
                "processes_per_host": 4,
                "threads_per_process": 2,
            },
            SLURM2,
            [
                "srun", "--ntasks=8", "--ntasks-per-node=4", "--cpus-per-task=2", "--exact",
                "--kill-on-bad-exit=1", "--quiet", *ARGV,
            ],
        ),
        # MPI elsewhere: OpenMPI's mpirun
        (
            {"spmd_variation": "mpi", "number_of_processes": 2},
            NONE,
            ["mpirun", "-n", "2", "--oversubscribe", "--bind-to", "none", *ARGV],
        ),
        (
            {"spmd_variation": "openmpi", "number_of_processes": 8, "processes_per_host": 4},
            PBS2,
            [
                "mpirun", "-n", "8", "--npernode", "4", "--hostfile", "/var/spool/pbs/aux/3",
                "--bind-to", "none", *ARGV,
            ],
        ),
        (  # OpenMPI reads SGE's PE_HOSTFILE itself; it is no --hostfile
            {"spmd_variation": "mpi", "number_of_processes": 8},
            SGE2,
            ["mpirun", "-n", "8", "--bind-to", "none", *ARGV],
        ),
        (
            {"spmd_variation": "mpi", "number_of_processes": 8},
            LSF2,
            ["mpirun", "-n", "8", "--hostfile", "/tmp/lsf_hostfile", "--bind-to", "none", *ARGV],
        ),
        (
            {"spmd_variation": "mpi", "number_of_processes": 4, "threads_per_process": 2},
            LSF_NO_FILE,
            ["mpirun", "-n", "4", "--bind-to", "none", *ARGV],
        ),
    ],
)  # fmt: skip
def test_wrap(description: dict[str, Any], allocation: Allocation, argv: list[str]) -> None:
    # The launcher of a pilot that names none: the allocation's default.
    launcher = load_launcher(None, allocation)
    facts = allocation_facts(allocation)
    wraps = launcher.applies(description, facts)
    assert wraps == (argv != ARGV)
    if wraps:
        assert launcher.name == argv[0]
        assert launcher.wrap(ARGV, description, unit_cores(description), facts) == argv


# -- prepare(): environment and launchers -------------------------------------------------------
BASE = {"PATH": os.defpath, "HOME": "/root"}


def test_a_plain_unit_inherits_the_agent_environment_as_it_is(tmp_path: Path) -> None:
    prepared = prepare("u1", {"executable": "/bin/true"}, str(tmp_path), BASE)
    assert prepared.environment is None
    assert prepared.argv == ["/bin/true"]


@pytest.mark.parametrize("variation", [None, "single", "mpi"])
def test_threads_per_process_sets_omp_num_threads(tmp_path: Path, variation: str | None) -> None:
    description = {"executable": "/bin/true", "threads_per_process": 4, "spmd_variation": variation}
    prepared = prepare("u1", description, str(tmp_path), {**BASE, "OMP_NUM_THREADS": "1"})
    assert prepared.environment is not None
    assert prepared.environment["OMP_NUM_THREADS"] == "4"
    assert prepared.environment["HOME"] == "/root"


def test_the_units_own_omp_num_threads_wins(tmp_path: Path) -> None:
    description = {
        "executable": "/bin/true",
        "threads_per_process": 4,
        "environment": {"OMP_NUM_THREADS": "3", "A": "$HOME"},
        "arguments": ["$OMP_NUM_THREADS"],
    }
    prepared = prepare("u1", description, str(tmp_path), BASE)
    assert prepared.environment == {**BASE, "OMP_NUM_THREADS": "3", "A": "$HOME"}
    assert prepared.argv == ["/bin/true", "3"]


def test_prepare_wraps_with_the_agents_allocation(tmp_path: Path) -> None:
    launchers = tmp_path / "bin"
    launchers.mkdir()
    for name in ("srun", "mpirun"):
        (launchers / name).write_text("#!/bin/sh\n")
        (launchers / name).chmod(0o755)
    base = {"PATH": str(launchers)}
    single = {"executable": "/bin/hostname", "number_of_processes": 2}
    parallel = {"executable": "/bin/hostname", "spmd_variation": "mpi", "number_of_processes": 2}
    assert prepare("u", single, str(tmp_path), base).argv == ["/bin/hostname"]
    assert prepare("u", single, str(tmp_path), base, SLURM1).argv == ["/bin/hostname"]
    assert prepare("u", single, str(tmp_path), base, SLURM2).argv[:3] == [
        "srun", "--nodes=1", "--ntasks=1",
    ]  # fmt: skip
    assert prepare("u", parallel, str(tmp_path), base).argv[:3] == ["mpirun", "-n", "2"]
    assert prepare("u", parallel, str(tmp_path), base, SLURM1).argv[:2] == ["srun", "--ntasks=2"]
    # The unit's PATH is searched, not the agent's.
    with pytest.raises(LauncherMissing):
        prepare("u", {**parallel, "environment": {"PATH": "/nowhere"}}, str(tmp_path), base)


def test_prepare_uses_the_launcher_it_is_given(tmp_path: Path) -> None:
    parallel = {"executable": "/bin/hostname", "spmd_variation": "mpi", "number_of_processes": 2}
    srun = load_launcher("srun")  # outside SLURM: the pilot chose it
    launchers = tmp_path / "bin"
    launchers.mkdir()
    (launchers / "srun").write_text("#!/bin/sh\n")
    (launchers / "srun").chmod(0o755)
    base = {"PATH": str(launchers)}
    outside = prepare("u", parallel, str(tmp_path), base, launcher=srun).argv
    assert outside[:2] == ["srun", "--ntasks=2"]
    none = load_launcher("none", SLURM2)
    assert prepare("u", parallel, str(tmp_path), base, SLURM2, launcher=none).argv == [
        "/bin/hostname"
    ]


@pytest.mark.parametrize(
    ("allocation", "launcher", "reason"),
    [(None, "mpirun", "OpenMPI's mpirun"), (SLURM1, "srun", "SLURM allocation")],
)
def test_a_missing_launcher_is_an_oserror_naming_it(
    tmp_path: Path, allocation: Allocation | None, launcher: str, reason: str
) -> None:
    description = {"executable": "/bin/true", "spmd_variation": "mpi"}
    with pytest.raises(OSError) as error:
        prepare("u", description, str(tmp_path), {"PATH": str(tmp_path)}, allocation)
    assert error.value.filename == launcher
    assert "not found on PATH" in str(error.value.strerror)
    assert reason in str(error.value.strerror)


# -- live: a two-rank MPI program as a unit on a local pilot ------------------------------------
HELLO = r"""
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
MPI_MISSING = "mpicc/mpirun are not installed (scripts/services.sh install brings OpenMPI)"


@pytest.fixture
def mpi_hello(tmp_path: Path) -> Path:
    """A compiled MPI hello world; skips (fails under TROY_REQUIRE_SERVICES=1) without OpenMPI."""
    if shutil.which("mpicc") is None or shutil.which("mpirun") is None:
        if os.environ.get("TROY_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{MPI_MISSING}; TROY_REQUIRE_SERVICES=1 forbids skipping")
        print(f"skipping: {MPI_MISSING}")
        pytest.skip(MPI_MISSING)
    source = tmp_path / "hello.c"
    source.write_text(HELLO)
    binary = tmp_path / "hello"
    subprocess.run(["mpicc", "-o", str(binary), str(source)], check=True, timeout=120)
    return binary


def test_mpi_unit_runs_its_ranks_through_mpirun(
    pilots: troy.PilotJobService,
    units: troy.WorkUnitService,
    tmp_path: Path,
    mpi_hello: Path,
) -> None:
    units.add(pilots)
    pilots.create(
        "fork://localhost",
        {"number_of_processes": 2, "working_directory": str(tmp_path / "pilot")},
    )
    as_root = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
    hello, no_launcher = units.submit(
        [
            {
                "executable": str(mpi_hello),
                "spmd_variation": "mpi",
                "number_of_processes": 2,
                "environment": as_root,
            },
            {
                "executable": str(mpi_hello),
                "spmd_variation": "MPI",
                "environment": {**as_root, "PATH": str(tmp_path / "empty")},
            },
        ]
    )
    assert hello.wait(timeout=60) == State.Done, hello.state_detail
    assert hello.sandbox is not None
    lines = Path(hello.sandbox, "stdout").read_text().splitlines()
    stderr = Path(hello.sandbox, "stderr").read_text()
    assert sorted(lines) == ["rank 0 of 2", "rank 1 of 2"], stderr
    assert no_launcher.wait(timeout=60) == State.Failed
    assert no_launcher.state_detail is not None
    assert no_launcher.state_detail.startswith("cannot start mpirun: not found on PATH")


def test_the_agent_starts_units_through_the_pilots_launcher(
    pilots: troy.PilotJobService, units: troy.WorkUnitService, tmp_path: Path
) -> None:
    # With the default launcher this MPI unit fails: no mpirun on its PATH (see above).
    units.add(pilots)
    pilots.create(
        "fork://localhost",
        {"number_of_processes": 2, "launcher": "none", "working_directory": str(tmp_path / "p")},
    )
    unit = units.submit(
        {
            "executable": "/bin/echo",
            "arguments": ["as it is"],
            "spmd_variation": "mpi",
            "number_of_processes": 2,
            "environment": {"PATH": str(tmp_path / "empty")},
        }
    )
    assert unit.wait(timeout=60) == State.Done, unit.state_detail
    assert unit.sandbox is not None
    assert Path(unit.sandbox, "stdout").read_text() == "as it is\n"
