"""The ``none`` launcher: every unit runs as it is, MPI units too (as MPI singletons)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from troy.plugins.launchers.base import AllocationFacts, Launcher


class DirectLauncher(Launcher):
    """Starts every unit's argv directly, on the agent's node.

    For pilots whose units start their own ranks (a script that calls
    ``mpiexec`` itself), or where no launcher exists.
    """

    name: ClassVar[str] = "none"

    def applies(self, unit: Mapping[str, Any], allocation: AllocationFacts) -> bool:
        """Never: no unit is wrapped."""
        return False

    def wrap(
        self,
        argv: Sequence[str],
        unit: Mapping[str, Any],
        cores: int,
        allocation: AllocationFacts,
    ) -> list[str]:
        """``argv`` as it is (a copy)."""
        return list(argv)
