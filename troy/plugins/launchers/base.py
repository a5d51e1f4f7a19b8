"""The launcher contract: how a unit's argv is wrapped for parallel launch (srun, mpirun, ...).

A launcher is pure: argv in, argv out, from the unit's values, the cores the
agent gave it and plain facts about the batch allocation.  It starts nothing
and reads nothing, so every launcher can be checked offline.  The only I/O is
`available`, which looks the launcher's program up on a PATH.

Each agent uses one launcher for all its units: the one the pilot
description's ``launcher`` names, else the allocation's default (``srun``
inside SLURM, ``mpirun`` elsewhere).  For each unit the agent asks
`applies`; if it does, `require` on the unit's PATH, then `wrap`.
"""

from __future__ import annotations

import errno
import shutil
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

from troy.plugins import options
from troy.plugins.options import Option

#: The version of this contract, MAJOR.MINOR; a plugin says which it was written for in
#: ``contract_version``.  A new MAJOR breaks older plugins; a new MINOR only adds, with defaults.
CONTRACT_VERSION = "1.1"
#: What each version changed (the registry quotes it when a plugin's version does not fit).
CONTRACT_CHANGES: dict[str, str] = {
    "1.0": "versioned from here on: applies, wrap; available and require with defaults",
    "1.1": "option_specs and check_options (default: none)",
}


class LauncherMissing(FileNotFoundError):
    """The launcher a unit needs (srun, mpirun, ...) is not on the unit's PATH.

    An OSError, as a missing executable is: the agent fails the unit with
    ``cannot start <program>: not found on PATH; <why>``.
    """

    def __init__(self, program: str, why: str) -> None:
        super().__init__(errno.ENOENT, f"not found on PATH; {why}", program)


@dataclass(frozen=True, slots=True)
class AllocationFacts:
    """What a launcher may know of the batch allocation the agent runs in: plain values."""

    #: "slurm", "pbs", "sge", "lsf", "condor", or "none" outside any allocation.
    kind: str
    #: (host, cores on it), in the batch system's order; the first is where the agent runs.
    nodes: tuple[tuple[str, int], ...]
    #: The batch system's host file (PBS_NODEFILE, PE_HOSTFILE, LSB_DJOB_HOSTFILE), if any.
    hostfile: str | None = None


class Launcher(ABC):
    """Wraps a unit's argv in the command that starts it on the allocation's cores.

    Instances are made with no arguments, one per agent, and may be used
    from several threads at once: keep no state that changes.
    """

    #: Entry-point name; what the pilot description's ``launcher`` names.
    name: ClassVar[str]
    #: What it can do: "mpi" if it starts the ranks of MPI units (the suite then checks that).
    capabilities: ClassVar[frozenset[str]] = frozenset()
    #: The contract version it was written for (MAJOR.MINOR).
    contract_version: ClassVar[str] = CONTRACT_VERSION
    #: The program a wrapped argv starts with, looked up on the unit's PATH;
    #: None for a launcher that never wraps.
    program: ClassVar[str | None] = None
    #: Why units need ``program``, for the LauncherMissing message.
    purpose: ClassVar[str] = ""
    #: The options it takes: name -> Option.  No built-in launcher takes any, and there is
    #: no place to give them yet (a launcher is made without arguments).
    option_specs: ClassVar[Mapping[str, Option]] = MappingProxyType({})

    @classmethod
    def check_options(cls, given: Mapping[str, Any]) -> dict[str, Any]:
        """The options as used, defaults filled in; BadDescription names a wrong one."""
        return options.check_options("launcher", cls.name, cls.option_specs, given)

    @abstractmethod
    def applies(self, unit: Mapping[str, Any], allocation: AllocationFacts) -> bool:
        """Whether this unit must be started through the launcher in ``allocation``.

        ``unit`` is the unit's description as a dict (as the agent claimed it:
        values validated, but ``spmd_variation`` in any case; use
        `troy.model.cores.runs_mpi`).  False: the unit runs as it is,
        and neither `require` nor `wrap` is called for it.
        """

    @abstractmethod
    def wrap(
        self,
        argv: Sequence[str],
        unit: Mapping[str, Any],
        cores: int,
        allocation: AllocationFacts,
    ) -> list[str]:
        """``argv`` as the command that starts the unit; called only where `applies` is true.

        ``argv`` is the unit's executable and arguments, variables already
        expanded.  ``cores`` (≥ 1) is how many slots the agent gave the unit
        (for a ranged unit, its grant).  Return a new list of strings that
        starts with ``program`` and ends with ``argv`` unchanged.  Modify
        neither ``argv`` nor ``unit``; the same inputs give the same result.
        """

    def available(self, path: str | None) -> bool:
        """Whether ``program`` is on ``path`` (a PATH value; None: the agent's PATH).

        A launcher without a program is always available.
        """
        return self.program is None or shutil.which(self.program, path=path) is not None

    def require(self, path: str | None) -> None:
        """Raise LauncherMissing, naming ``program`` and ``purpose``, unless `available`."""
        if not self.available(path):
            raise LauncherMissing(self.program or self.name, self.purpose)
