"""The ``shortest_first`` scheduler: the shortest waiting unit starts next, placed just in time.

Shortest Job First (SJF) list scheduling: among the units ready to start, the
one of least estimated run time goes first, which minimises the mean waiting
time on one machine (Smith, "Various optimizers for single-stage production",
Naval Research Logistics Quarterly 3(1-2), 1956; Conway, Maxwell and Miller,
*Theory of Scheduling*, 1967, ch. 4).

Each call sorts the units it is offered by

1. the estimated run time `UnitRequest.estimate` (``hints.runtime``, else the
   wall time limit), units with an estimate before those without;
2. then ``total_cpu_time`` (given before not given);
3. then submission ``order``;

and walks them in that order, placing each on the pilot with the most open
slots (see `troy.plugins.schedulers.just_in_time`: free slots less those of
queued units) that fits it now, the first offered on ties. A unit that fits
nowhere now waits, and the walk goes on (a shorter unit too wide for the
open slots does not hold back a longer narrow one). Units are placed only
into open slots, so the decision is made as late as possible: a shorter unit
that arrives while the pilots are busy still overtakes the longer ones
waiting. The returned mapping is in the sorted order, so units one call
places on a pilot also start there shortest first. Given as `SortedUnits`,
the walk stops once no slot is open: the units not looked at are left out
(they wait).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from troy.plugins.schedulers.base import (
    PilotOffer,
    Scheduler,
    SortedUnits,
    UnitKey,
    UnitRequest,
    in_order,
)
from troy.plugins.schedulers.just_in_time import QueuedSlots

#: A sort key: (no estimate, estimate, no CPU time, CPU time, order).
ShortestKey = tuple[bool, float, bool, float, int]


def shortest_key(unit: UnitRequest) -> ShortestKey:
    """The key units are sorted by, shortest first (see the module docstring)."""
    estimate = unit.estimate()
    cpu = unit.total_cpu_time
    return (
        estimate is None,
        0.0 if estimate is None else estimate,
        cpu is None,
        0.0 if cpu is None else float(cpu),
        unit.order,
    )


class ShortestFirstScheduler(Scheduler):
    """Places the units that fit in open slots now, shortest estimated run time first.

    The seed is not used; placement is deterministic.
    """

    name: ClassVar[str] = "shortest_first"

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(seed)
        self._queued = QueuedSlots()

    def place(
        self, units: Sequence[UnitRequest], pilots: Sequence[PilotOffer]
    ) -> Mapping[str, str | None]:
        """Unit ids, shortest first, with a pilot where each starts now, or None (waits)."""
        room = self._queued.room(pilots)
        placement: dict[str, str | None] = {}
        lazy = isinstance(units, SortedUnits)
        for unit in in_order(units, shortest_key):
            if room.left <= 0:  # nothing more fits now: the others wait
                if lazy:
                    break  # left out: the caller need not produce them
                placement[unit.id] = None
                continue
            index = room.roomiest(unit.cores)
            if index is None:
                placement[unit.id] = None
                continue
            room.take(index, unit.cores)
            placement[unit.id] = pilots[index].id
        return placement

    def unit_order(self) -> UnitKey:
        """Units are looked at by `shortest_key`."""
        return shortest_key

    def waiting_reason(self, unit: UnitRequest, pilots: Sequence[PilotOffer]) -> str:
        """Why ``unit`` waits: no pilot can hold it, or none has open slots for it now."""
        if not any(pilot.can_hold(unit.cores) for pilot in pilots):
            return super().waiting_reason(unit, pilots)
        return f"waiting for {unit.cores} open slot(s): placed just in time, shortest first"
