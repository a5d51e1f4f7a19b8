"""What a simulation returns, its virtual clock, and its scheduler, made as troy makes one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from troy.plugins.registry import make_scheduler
from troy.sim.model import UnitRecord

__all__ = ["PilotUsage", "SimResult", "VirtualClock", "make_scheduler"]


class VirtualClock:
    """The simulation's time in seconds (from 0), read by schedulers built with ``clock=``."""

    __slots__ = ("now",)

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True, slots=True)
class PilotUsage:
    """How one pilot was used: slot-seconds taken by units, and seconds it was up."""

    id: str
    slots: int
    #: Sum over the units it ran (to their end or loss) of cores x seconds.
    busy: float
    #: From its start to its end, or to the makespan if that comes first (0 if it never started).
    up: float

    @property
    def utilisation(self) -> float:
        """busy / (slots x up); 0 for a pilot that was never up."""
        capacity = self.slots * self.up
        return self.busy / capacity if capacity > 0 else 0.0


@dataclass(frozen=True, slots=True)
class SimResult:
    """The outcome of one simulation."""

    #: One per unit, in the workload's order.
    records: tuple[UnitRecord, ...]
    #: The last end of a unit that ran (0 if none did).
    makespan: float
    #: One per pilot, in the workload's order.
    pilots: tuple[PilotUsage, ...]
    #: Calls of the scheduler's ``place``.
    calls: int
    #: Events processed: arrivals, unit ends, pilot starts and ends, timers.
    events: int
    #: Why each unit that did not end Done ended as it did (unit id -> detail).
    details: Mapping[str, str]

    @property
    def utilisation(self) -> float:
        """Busy slot-seconds over slot-seconds up, over all pilots."""
        capacity = sum(p.slots * p.up for p in self.pilots)
        return sum(p.busy for p in self.pilots) / capacity if capacity > 0 else 0.0
