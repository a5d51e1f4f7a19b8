"""How a unit's argv is wrapped in the allocation's launcher: srun or OpenMPI's mpirun.

Pure functions, argv in and argv out.  An MPI unit (``spmd_variation`` "mpi"
or "openmpi") runs through ``srun`` inside SLURM and ``mpirun`` elsewhere.
A single unit runs as it is, except in a SLURM allocation of several nodes,
where ``srun`` places it on a node with free cores.
"""

from __future__ import annotations

import errno
import shutil
from collections.abc import Mapping, Sequence
from typing import Any

from troy.agent.resources import Allocation
from troy.model.description import runs_mpi, unit_cores

#: Allocations whose host file has one host per slot, a form ``mpirun --hostfile`` reads.
#: (SGE's PE_HOSTFILE is not; OpenMPI's gridengine support reads it by itself.)
_MPIRUN_HOSTFILE_KINDS = frozenset({"pbs", "lsf"})


class LauncherMissing(FileNotFoundError):
    """The launcher a unit needs (srun, mpirun) is not on the unit's PATH."""

    def __init__(self, launcher: str, why: str) -> None:
        super().__init__(errno.ENOENT, f"not found on PATH; {why}", launcher)


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


def launcher(description: Mapping[str, Any], allocation: Allocation) -> str | None:
    """The launcher the unit ``description`` is started through in ``allocation``, if any."""
    if runs_mpi(description):
        return "srun" if allocation.kind == "slurm" else "mpirun"
    if allocation.kind == "slurm" and len(allocation.nodes) > 1:
        return "srun"
    return None


def wrap(
    argv: Sequence[str], description: Mapping[str, Any], allocation: Allocation, cores: int = 0
) -> list[str]:
    """``argv`` as the unit ``description`` must be started in ``allocation``.

    ``cores``: the slots the unit was given (a ranged unit's grant); 0 for its count.
    """
    name = launcher(description, allocation)
    if name is None:
        return list(argv)
    if not runs_mpi(description):
        return srun_single(argv, cores or unit_cores(description))
    processes = int(description.get("number_of_processes") or 1)
    per_host = description.get("processes_per_host")
    if name == "srun":
        return srun_mpi(argv, processes, per_host, description.get("threads_per_process"))
    hostfile = allocation.hostfile if allocation.kind in _MPIRUN_HOSTFILE_KINDS else None
    return mpirun(argv, processes, per_host, hostfile, oversubscribe=allocation.kind == "none")


def require(name: str, path: str | None) -> None:
    """Raise LauncherMissing unless the launcher ``name`` is on ``path`` (a PATH value)."""
    if shutil.which(name, path=path) is not None:
        return
    if name == "mpirun":
        why = "units with spmd_variation 'mpi' need OpenMPI's mpirun outside SLURM"
    else:
        why = f"units in a SLURM allocation are started through {name}"
    raise LauncherMissing(name, why)
