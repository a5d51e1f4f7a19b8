"""The saga backend's pure mappings: URL to scheme, pilot to SAGA job attributes, states back.

They need neither radical.saga nor a resource; what SAGA itself makes of
them is checked in tests/integration/test_saga_backend.py.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import pytest

from troy.model.description import PilotJobDescription
from troy.model.errors import BackendError, BadDescription
from troy.model.states import State
from troy.plugins.backends.base import PilotLaunch
from troy.plugins.backends.saga_mapping import (
    SCHEMES,
    check_description,
    files_url,
    job_attributes,
    job_state,
    saga_scheme,
)

AGENT = [sys.executable, "-m", "troy.agent", "--coordination", "file:///c", "--pilot", "p-1"]


def launch_of(
    description: dict[str, Any],
    rm: str = "slurm://localhost",
    environment: dict[str, str] | None = None,
) -> PilotLaunch:
    return PilotLaunch(
        "p-1", rm, PilotJobDescription(description), "/scratch/p-1", AGENT, environment or {}
    )


@pytest.mark.parametrize(
    "rm",
    [
        "ssh://host",
        "slurm://localhost",
        "SLURM+ssh://login.example.org",
        "pbs://x",
        "pbspro+ssh://x",
        "torque://x",
        "sge://x",
        "lsf+ssh://x",
        "fork://localhost",
    ],
)
def test_the_backends_schemes_are_taken(rm: str) -> None:
    assert saga_scheme(rm) == rm.split(":", 1)[0].lower()


def test_the_schemes_chosen_by_url_are_ssh_and_the_batch_systems() -> None:
    assert "ssh" in SCHEMES and "slurm+ssh" in SCHEMES
    assert "fork" not in SCHEMES  # by scheme alone fork:// is the local backend's


def test_unknown_scheme_is_refused_with_the_schemes_it_takes() -> None:
    with pytest.raises(BackendError, match=r"gopher.*slurm"):
        saga_scheme("gopher://host")


def test_batch_job_carries_the_pilot_resources() -> None:
    launch = launch_of(
        {
            "number_of_processes": 8,
            "processes_per_host": 4,
            "wall_time_limit": 2.5,
            "queue": "debug",
            "project": "chem42",
            "candidate_hosts": ["n1", "n2"],
            "total_physical_memory": 2048,
            "total_cpu_time": 30.5,
            "operating_system_type": "LINUX",
            "cpu_architecture": "x86_64",
        },
        environment={"GREETING": "hi"},
    )
    assert job_attributes(launch, ["-c", "echo it's"]) == {
        "name": "p-1",
        "executable": "/bin/sh",
        "arguments": ["-c", shlex.quote("echo it's")],
        "working_directory": "/scratch/p-1",
        "output": "agent.out",
        "error": "agent.err",
        "environment": {"GREETING": "hi"},
        "number_of_processes": 8,
        "total_cpu_count": 8,
        "processes_per_host": 4,
        "wall_time_limit": 3,  # whole minutes, rounded up
        "queue": "debug",
        "project": "chem42",
        "candidate_hosts": ["n1", "n2"],
        "total_physical_memory": 2048,
        "total_cpu_time": 30,
        "operating_system_type": "LINUX",
        "system_architecture": {"cpu": "x86_64"},
    }


def test_total_cpu_count_overrides_the_processes_count() -> None:
    launch = launch_of({"number_of_processes": 2, "total_cpu_count": 6})
    attributes = job_attributes(launch, [])
    assert (attributes["number_of_processes"], attributes["total_cpu_count"]) == (2, 6)
    assert job_attributes(launch_of({}), [])["number_of_processes"] == 1


@pytest.mark.parametrize("rm", ["ssh://host", "fork://localhost"])
def test_fork_and_ssh_jobs_are_one_process(rm: str) -> None:
    attributes = job_attributes(launch_of({"number_of_processes": 8, "queue": "q"}, rm), ["x"])
    assert set(attributes) == {
        "name", "executable", "arguments", "working_directory", "output", "error",
    }  # fmt: skip


def test_slurm_needs_a_queue() -> None:
    with pytest.raises(BackendError, match="queue"):
        check_description("slurm://localhost", PilotJobDescription({"number_of_processes": 2}))
    with pytest.raises(BackendError, match="queue"):
        check_description("slurm+ssh://login", PilotJobDescription({}))
    check_description("slurm://localhost", PilotJobDescription({"queue": "debug"}))
    check_description("pbs://host", PilotJobDescription({}))


def test_files_are_reached_by_sftp_for_ssh_forms_only() -> None:
    assert files_url("ssh://me@host:2222") == "sftp://me@host:2222"
    assert files_url("slurm+ssh://login") == "sftp://login"
    assert files_url("slurm://localhost") == "file://localhost"
    assert files_url("fork://localhost") == "file://localhost"


@pytest.mark.parametrize(
    ("saga_state", "state", "detail"),
    [
        ("New", State.Pending, ""),
        ("Pending", State.Pending, ""),
        ("Suspended", State.Pending, "suspended by the resource manager"),
        ("Running", State.Running, ""),
        ("Failed", State.Failed, "agent job failed"),
        ("Done", State.Failed, "agent job ended without the agent reporting its end"),
        ("Canceled", State.Canceled, "the resource manager canceled the agent job"),
        ("Unknown", State.Unknown, ""),
    ],
)
def test_every_saga_state_maps_to_a_pilot_state(saga_state: str, state: State, detail: str) -> None:
    assert job_state(saga_state) == (state, detail)


INJECTIONS = [
    "w$(touch PWNED)x",
    "w`touch PWNED`x",
    "w;touch PWNED",
    "w\ntouch PWNED",
    "w'x",
    'w"x',
]


@pytest.mark.parametrize("value", INJECTIONS)
def test_values_saga_puts_into_a_shell_unquoted_cannot_inject(value: str) -> None:
    """radical.saga runs ``mkdir -p %s && cd %s`` and writes ``#SBATCH -p %s``: before, a
    working_directory of ``w$(touch PWNED)x`` created the file (issue 17)."""
    for field in ("working_directory", "queue", "project"):
        description = PilotJobDescription({"queue": "debug", field: value})
        with pytest.raises(BadDescription, match=f"^{field}: the saga backend passes it"):
            check_description("slurm://localhost", description)
    with pytest.raises(BadDescription, match=r"^working_directory"):
        job_attributes(
            PilotLaunch("p-1", "fork://localhost", PilotJobDescription(), value, AGENT), []
        )
    with pytest.raises(BadDescription, match=r"^environment\.A"):
        job_attributes(launch_of({"queue": "q"}, environment={"A": value}), [])
    arguments = job_attributes(launch_of({"queue": "q"}), [value])["arguments"]
    assert shlex.split(" ".join(arguments)) == [value]  # arguments are quoted instead


def test_a_pilot_with_an_injecting_directory_is_refused_before_it_launches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from troy import PilotJobService

    monkeypatch.chdir(tmp_path)
    with PilotJobService(coordination=str(tmp_path / "c")) as service:
        with pytest.raises(BadDescription, match="working_directory: the saga backend"):
            service.create(
                "fork://localhost",
                {"working_directory": str(tmp_path / "w$(touch PWNED)x")},
                pj_type="saga",
            )
        assert service.list() == []
    assert not list(tmp_path.rglob("PWNED"))
