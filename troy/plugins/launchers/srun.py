"""The ``srun`` launcher: units as SLURM job steps (the default inside SLURM)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from troy.model.cores import runs_mpi
from troy.plugins.launchers.base import AllocationFacts, Launcher


def srun_mpi(
    argv: Sequence[str],
    processes: int,
    per_host: int | None = None,
    threads: int | None = None,
) -> list[str]:
    """``argv`` as an MPI job step of ``processes`` tasks of ``threads`` cores each (default 1).

    The cores per task are always given: srun would otherwise take them from
    the job's environment (``SRUN_CPUS_PER_TASK`` in newer SLURM), where
    the agent's slot count does not expect them.
    """
    wrapped = ["srun", f"--ntasks={processes}"]
    if per_host:
        wrapped.append(f"--ntasks-per-node={per_host}")
    wrapped.append(f"--cpus-per-task={threads or 1}")
    return [*wrapped, "--exact", "--kill-on-bad-exit=1", "--quiet", *argv]


def srun_single(argv: Sequence[str], cores: int) -> list[str]:
    """``argv`` as a one-task job step on whichever node has ``cores`` free."""
    return [
        "srun", "--nodes=1", "--ntasks=1", f"--cpus-per-task={cores}", "--exact", "--quiet",
        *argv,
    ]  # fmt: skip


class SrunLauncher(Launcher):
    """MPI units as job steps of their ranks; single units too where the job has several nodes.

    On one node single units run as they are (much faster than a job step);
    on several, srun places each on a node with free cores.
    """

    name: ClassVar[str] = "srun"
    capabilities: ClassVar[frozenset[str]] = frozenset({"mpi"})
    program: ClassVar[str | None] = "srun"
    purpose: ClassVar[str] = "units in a SLURM allocation are started through srun"

    def applies(self, unit: Mapping[str, Any], allocation: AllocationFacts) -> bool:
        """MPI units always; single units in an allocation of several nodes."""
        return runs_mpi(unit) or len(allocation.nodes) > 1

    def wrap(
        self,
        argv: Sequence[str],
        unit: Mapping[str, Any],
        cores: int,
        allocation: AllocationFacts,
    ) -> list[str]:
        """An MPI unit's ranks as tasks; a single unit as one task of ``cores`` cores."""
        if not runs_mpi(unit):
            return srun_single(argv, cores)
        return srun_mpi(
            argv,
            int(unit.get("number_of_processes") or 1),
            unit.get("processes_per_host"),
            unit.get("threads_per_process"),
        )
