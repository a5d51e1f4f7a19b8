"""The ``mpirun`` launcher: MPI units through OpenMPI's mpirun (the default outside SLURM)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from troy.model.cores import runs_mpi
from troy.plugins.launchers.base import AllocationFacts, Launcher

#: Allocations whose host file has one host per slot, a form ``mpirun --hostfile`` reads.
#: (SGE's PE_HOSTFILE is not; OpenMPI's gridengine support reads it by itself.)
HOSTFILE_KINDS = frozenset({"pbs", "lsf"})


def mpirun(
    argv: Sequence[str],
    processes: int,
    per_host: int | None = None,
    hostfile: str | None = None,
    oversubscribe: bool = False,
) -> list[str]:
    """``argv`` started by OpenMPI's ``mpirun`` as ``processes`` ranks.

    Ranks are not bound to cores: the agent runs several units on a node and
    each mpirun, knowing nothing of the others, would bind its ranks to the
    same first cores.  ``oversubscribe`` lets mpirun start more ranks than it
    counts cores (outside an allocation the pilot's slot count is the user's word).
    """
    wrapped = ["mpirun", "-n", str(processes)]
    if per_host:
        wrapped += ["--npernode", str(per_host)]
    if hostfile:
        wrapped += ["--hostfile", hostfile]
    if oversubscribe:
        wrapped.append("--oversubscribe")
    return [*wrapped, "--bind-to", "none", *argv]


class MpirunLauncher(Launcher):
    """MPI units through ``mpirun``; single units run as they are, on the agent's node."""

    name: ClassVar[str] = "mpirun"
    capabilities: ClassVar[frozenset[str]] = frozenset({"mpi"})
    program: ClassVar[str | None] = "mpirun"
    purpose: ClassVar[str] = "units with spmd_variation 'mpi' are started through OpenMPI's mpirun"

    def applies(self, unit: Mapping[str, Any], allocation: AllocationFacts) -> bool:
        """MPI units only."""
        return runs_mpi(unit)

    def wrap(
        self,
        argv: Sequence[str],
        unit: Mapping[str, Any],
        cores: int,
        allocation: AllocationFacts,
    ) -> list[str]:
        """The unit's ``number_of_processes`` ranks; the host file where mpirun reads one."""
        return mpirun(
            argv,
            int(unit.get("number_of_processes") or 1),
            unit.get("processes_per_host"),
            allocation.hostfile if allocation.kind in HOSTFILE_KINDS else None,
            oversubscribe=allocation.kind == "none",
        )
