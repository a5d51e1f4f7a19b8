"""The `mpiexec` launcher: MPI units through MPICH's ``mpiexec`` (Hydra), not OpenMPI's mpirun."""

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from troy.model.cores import runs_mpi
from troy.plugins.launchers.base import AllocationFacts, Launcher


class MpiexecLauncher(Launcher):
    """``mpiexec -n N [-ppn P] <argv>`` for MPI units; single units run as they are.

    Chosen per pilot: ``{"launcher": "mpiexec"}`` in the pilot description.
    """

    name: ClassVar[str] = "mpiexec"
    capabilities: ClassVar[frozenset[str]] = frozenset({"mpi"})
    program: ClassVar[str | None] = "mpiexec"
    purpose: ClassVar[str] = "this pilot starts units with spmd_variation 'mpi' through mpiexec"

    def applies(self, unit: Mapping[str, Any], allocation: AllocationFacts) -> bool:
        return runs_mpi(unit)

    def wrap(
        self,
        argv: Sequence[str],
        unit: Mapping[str, Any],
        cores: int,
        allocation: AllocationFacts,
    ) -> list[str]:
        wrapped = ["mpiexec", "-n", str(int(unit.get("number_of_processes") or 1))]
        if unit.get("processes_per_host"):
            wrapped += ["-ppn", str(unit["processes_per_host"])]
        return [*wrapped, *argv]
