"""What a simulation is made of: the workload (pilots, stores, network, units) and records.

Plain frozen values, read from a workload file by `troy.sim.workload` and
played by `troy.sim.engine`.  Times are seconds on the simulation's virtual
clock, which starts at 0; sizes are bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

NO_HINTS: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class SimPilot:
    """One pilot of the workload (a ``count: n`` entry gives n of them, ``NAME.0`` ...)."""

    id: str
    slots: int
    datacenter: str | None = None
    machine: str | None = None
    #: Seconds from the start until its agent runs units (the batch queue and start-up).
    start_delay: float = 0.0
    #: How fast it runs units: a unit of runtime r takes r / speed seconds on it.
    speed: float = 1.0
    #: Seconds it runs once started (its wall time limit), or None for no limit.
    wall_time: float | None = None
    #: The pilot description's ``hints``, as the scheduler sees them.
    hints: Mapping[str, Any] = field(default_factory=lambda: NO_HINTS, compare=False)
    #: Where a real run starts it (``resource``, ``rm`` or ``service_url``), and its ``pj_type``.
    resource: str | None = field(default=None, compare=False)
    pj_type: str | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class SimStore:
    """A Pilot-Data store, placed by its labels: a pilot with the same machine label is local."""

    id: str
    datacenter: str | None = None
    machine: str | None = None


@dataclass(frozen=True, slots=True)
class SimInput:
    """A data unit a unit reads: where it is and how big."""

    #: Its name, unique in the workload (the scheduler sees it as the data unit URL).
    url: str
    store: str
    size: int


@dataclass(frozen=True, slots=True)
class Network:
    """Moving data between different machine labels takes latency + size / bandwidth."""

    bandwidth_mb_s: float = 100.0
    latency_s: float = 0.001

    def transfer_seconds(self, size: int) -> float:
        """Seconds to move ``size`` bytes between two machines (1 MB = 10**6 bytes)."""
        return self.latency_s + size / (self.bandwidth_mb_s * 1e6)


@dataclass(frozen=True, slots=True)
class Overheads:
    """The pilot system's own latencies, which a real run has and a model may leave out (0).

    ``troy compare --real`` does not play them: its agents and units have their
    own.  bench/validate_sim.py measures troy's on a machine (docs/research.md).
    """

    #: Seconds a pilot's agent takes to start after its ``start_delay`` (still Pending).
    pilot_start_s: float = 0.0
    #: Seconds from a unit taking its slots until it runs: the agent's claim, the
    #: sandbox, the process's start and its report (the slots are held meanwhile).
    unit_start_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Failure:
    """The pilot ``pilot`` fails at time ``at``: its units are lost and placed again."""

    pilot: str
    at: float


@dataclass(frozen=True, slots=True)
class SimUnit:
    """One unit of the workload."""

    id: str
    #: The workload entry's name (``u`` for the units of ``{name: u, count: 10}``).
    name: str
    #: Seconds it runs on a pilot of speed 1 (staging not included).
    runtime: float
    cores: int = 1
    #: When it is submitted (0 unless a trace says otherwise).
    submit: float = 0.0
    datacenter: str | None = None
    machine: str | None = None
    inputs: tuple[SimInput, ...] = ()
    #: Ids of the units it waits for (all must be Done; one that fails cancels it).
    after: tuple[str, ...] = ()
    hints: Mapping[str, Any] = field(default_factory=lambda: NO_HINTS, compare=False)
    wall_time_limit: float | None = None
    total_cpu_time: float | None = None
    #: How many more times it runs after it failed (failures are not simulated; kept for fidelity).
    retries: int = 0
    #: Unit-description attributes (``executable``, ``arguments`` ...) a real run uses instead
    #: of sleeping ``runtime``; None: a real run sleeps it.  Not simulated.
    command: Mapping[str, Any] | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Workload:
    """A whole workload file, validated and expanded (generators drawn, traces read)."""

    path: str
    seed: int
    pilots: tuple[SimPilot, ...]
    units: tuple[SimUnit, ...]
    stores: tuple[SimStore, ...] = ()
    network: Network = Network()
    failures: tuple[Failure, ...] = ()
    overheads: Overheads = Overheads()


@dataclass(frozen=True, slots=True)
class UnitRecord:
    """How one unit went in a run (simulated or real): a row of ``units.csv``."""

    id: str
    name: str
    #: The pilot it ran on last (None if it never ran).
    pilot: str | None
    cores: int
    submit: float
    #: When it last started and ended (None if it never did).
    start: float | None
    end: float | None
    #: Done, Failed or Canceled (units still waiting when the run ends: Failed).
    state: str
    #: Attempts lost with their pilot before the last one.
    tries: int = 0
    #: Bytes of its inputs, and of those it had to move from another machine.
    bytes_in: int = 0
    bytes_moved: int = 0

    @property
    def wait(self) -> float | None:
        """Seconds from submission to its (last) start."""
        return None if self.start is None else self.start - self.submit

    @property
    def run(self) -> float | None:
        """Seconds from its (last) start to its end."""
        return None if self.start is None or self.end is None else self.end - self.start
