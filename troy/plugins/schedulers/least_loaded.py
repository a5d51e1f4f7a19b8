"""The ``least_loaded`` scheduler: each unit to the pilot with the least load per slot.

Join the Shortest Queue (JSQ: Winston, "Optimality of the shortest line
discipline", Journal of Applied Probability 14(1), 1977), with the queue
length divided by the server's capacity, the usual form for servers of
unequal size. A pilot's load is its
units that have not ended, ``PilotOffer.load`` (queued and running), plus the
units this call has already placed on it; its capacity is its slots (a pilot of
unknown size counts as one slot, the least a live pilot has).

Rule: each unit, in the order given, goes to the pilot that can hold it with
the lowest ``load / slots`` (compared exactly, as fractions); ties go to the
pilot offered first. So with a backlog a 3-slot pilot gets three units for
each one a 1-slot pilot gets. Units are placed at once (early binding); a
unit no pilot can hold waits. Holds no state between calls.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import ClassVar

from troy.plugins.schedulers.base import PilotOffer, Scheduler, UnitRequest


class LeastLoadedScheduler(Scheduler):
    """Places each unit on the fitting pilot with the fewest unfinished units per slot.

    The seed is not used; placement is deterministic.
    """

    name: ClassVar[str] = "least_loaded"

    def place(
        self, units: Sequence[UnitRequest], pilots: Sequence[PilotOffer]
    ) -> Mapping[str, str | None]:
        """For every unit id given, the least loaded pilot that can hold it, or None."""
        load = [offer.load for offer in pilots]
        slots = [offer.slots or 1 for offer in pilots]
        # One heap of (load/slots, index) per set of pilots that can hold a unit size; loads
        # only grow during a call, so an entry that is out of date is corrected when on top.
        heaps: dict[int, list[tuple[Fraction, int]]] = {}
        placement: dict[str, str | None] = {}
        for unit in units:
            heap = heaps.get(unit.cores)
            if heap is None:
                heap = heaps[unit.cores] = [
                    (Fraction(load[index], slots[index]), index)
                    for index, offer in enumerate(pilots)
                    if offer.can_hold(unit.cores)
                ]
                heapq.heapify(heap)
            if not heap:
                placement[unit.id] = None
                continue
            while True:
                key, index = heap[0]
                current = Fraction(load[index], slots[index])
                if key == current:
                    break
                heapq.heapreplace(heap, (current, index))
            load[index] += 1
            heapq.heapreplace(heap, (Fraction(load[index], slots[index]), index))
            placement[unit.id] = pilots[index].id
        return placement
