"""The ``data_aware`` scheduler: each unit goes where the fewest of its input bytes must move.

For a pilot P, a unit's cost is the sum over its inputs D of 0 if some replica
of D is local to P (`is_local`), else ``D.size``. The unit goes to the pilot of
least cost; ties go to the pilot with the highest fraction of free capacity,
``(slots - load) / slots``, where load is its units that have not ended
(``PilotOffer.load``) plus the units this call placed on it, and a pilot of
unknown size counts as one slot; then to the pilot offered first. So with a
backlog a 3-slot pilot gets three units for each one a 1-slot pilot gets.
Only pilots that can hold the unit and carry its affinity labels (as the
``affinity`` scheduler reads them: `matches_affinity`) are considered. A unit
without inputs, or whose inputs cost the same everywhere (sizes unknown, 0),
goes to the pilot with the highest fraction of free capacity.

This is locality-aware placement as in Pilot-Data (Luckow, Santcroos, Zebrowski
and Jha, "Pilot-Data: an abstraction for distributed data", Journal of Parallel
and Distributed Computing 79-80, 2015): move the computation to the data.

Option ``binding``: ``"early"`` (the default) places every unit at once.
``"late"`` places a unit only into open slots (free slots less those of queued
units: `troy.plugins.schedulers.just_in_time`): among the candidates that have
room for it now, the cheapest, then by the same tie-breaks; a unit none has
room for waits. Late binding does not hold a unit back for a busy pilot where
its data is (that would be delay scheduling): it trades some locality for
starting at once, and decides with the pilots' load as it is when slots free.
Given as `SortedUnits`, once no slot is open the units not looked at are
left out (they wait).

`is_local` is the locality rule itself; the agent's staging uses it too, so
the scheduler and the transfer records can never disagree about what is local.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction
from types import MappingProxyType
from typing import ClassVar

from troy.plugins.schedulers.affinity import (
    BINDING,
    affinity_waiting_reason,
    matches_affinity,
)
from troy.plugins.schedulers.base import (
    DataInput,
    Option,
    PilotOffer,
    Replica,
    Scheduler,
    SortedUnits,
    UnitRequest,
)
from troy.plugins.schedulers.just_in_time import QueuedSlots, Room


def is_local(replica: Replica, pilot_datacenter: str | None, pilot_machine: str | None) -> bool:
    """True if a pilot with these labels reads ``replica`` without moving it.

    Local when both machine labels are set and equal; when neither the pilot
    nor the replica has a machine label, when both datacenter labels are set
    and equal. A machine label on only one side is never local: the other
    side's machine is unknown.
    """
    if replica.machine is not None or pilot_machine is not None:
        return replica.machine is not None and replica.machine == pilot_machine
    return replica.datacenter is not None and replica.datacenter == pilot_datacenter


class DataAwareScheduler(Scheduler):
    """Places each unit on the pilot that minimises the input bytes to move, then by free capacity.

    Early binding holds no state between calls: the load of earlier calls
    arrives as ``PilotOffer.load``. The seed is not used; placement is
    deterministic.
    """

    name: ClassVar[str] = "data_aware"
    capabilities: ClassVar[frozenset[str]] = frozenset({"affinity"})
    option_specs: ClassVar[Mapping[str, Option]] = MappingProxyType({"binding": BINDING})

    def __init__(self, seed: int | None = None, binding: str = "early") -> None:
        super().__init__(seed, binding=binding)
        self.late = self.options["binding"] == "late"
        self._queued = QueuedSlots()

    def place(
        self, units: Sequence[UnitRequest], pilots: Sequence[PilotOffer]
    ) -> Mapping[str, str | None]:
        """For every unit id given, the pilot where the fewest of its bytes move, or None."""
        if self.late:
            return _Placement(pilots).place_late(units, self._queued.room(pilots))
        return _Placement(pilots).place(units)

    def waiting_reason(self, unit: UnitRequest, pilots: Sequence[PilotOffer]) -> str:
        """Why ``unit`` waits: its labels, if no matching pilot can hold it, else the default."""
        reason = affinity_waiting_reason(unit, pilots)
        if reason is None and self.late and any(p.can_hold(unit.cores) for p in pilots):
            return f"waiting for {unit.cores} open slot(s) on a matching pilot (binding: late)"
        return reason or super().waiting_reason(unit, pilots)


class _Placement:
    """One ``place`` call: the pilots, their loads, and what was worked out so far.

    A unit's choice is the pilot of highest free fraction among its *tier*: the
    candidates (can hold it, labels match) of least cost. Tiers are few, so each
    keeps a heap of (-free fraction, index); fractions only shrink during a
    call, so an entry that is out of date only overstates a pilot and is
    corrected on the way, and each unit costs O(log pilots) once its tier is
    known. Late binding (`place_late`) keeps such a heap per (cores, labels) of
    the candidates with open slots, dropping those whose room is gone; a unit
    with inputs looks at the candidates with open slots one by one.
    """

    def __init__(self, pilots: Sequence[PilotOffer]) -> None:
        self.pilots = pilots
        #: Units this call placed on each pilot (by index), besides its offer's load.
        self.placed: dict[int, int] = {}
        self.candidates: dict[tuple[int, str | None, str | None], tuple[int, ...]] = {}
        #: The candidates of each key above, as a set.
        self.allowed: dict[tuple[int, ...], frozenset[int]] = {}
        self.local: dict[tuple[str | None, str | None], tuple[int, ...]] = {}
        self.heaps: dict[tuple[int, ...], list[tuple[Fraction, int]]] = {}
        self.open_heaps: dict[tuple[int, str | None, str | None], list[tuple[Fraction, int]]] = {}

    def free(self, index: int) -> Fraction:
        """The fraction of pilot ``index``'s capacity that is free: (slots - load) / slots."""
        offer = self.pilots[index]
        size = offer.slots or 1
        return Fraction(size - offer.load - self.placed.get(index, 0), size)

    def place(self, units: Sequence[UnitRequest]) -> dict[str, str | None]:
        """Where each unit goes, in order, each choice counting against the pilot's free slots."""
        placement: dict[str, str | None] = {}
        ids = [offer.id for offer in self.pilots]
        free = self.free
        for unit in units:
            candidates = self._candidates_of(unit)
            if not candidates:
                placement[unit.id] = None
                continue
            tier = self._cheapest(candidates, unit.inputs) if unit.inputs else candidates
            heap = self.heaps.get(tier)
            if heap is None:
                heap = self.heaps[tier] = [(-free(index), index) for index in tier]
                heapq.heapify(heap)
            while True:
                stale, index = heap[0]
                current = -free(index)
                if stale == current:
                    break
                heapq.heapreplace(heap, (current, index))
            self.placed[index] = self.placed.get(index, 0) + 1
            heapq.heapreplace(heap, (-free(index), index))
            placement[unit.id] = ids[index]
        return placement

    def place_late(self, units: Sequence[UnitRequest], room: Room) -> dict[str, str | None]:
        """Like `place`, but only into ``room``'s open slots: a unit none has room for waits."""
        placement: dict[str, str | None] = {}
        pilots = self.pilots
        lazy = isinstance(units, SortedUnits)
        for unit in units:
            if room.left <= 0:  # nothing more fits now: the others wait
                if lazy:
                    break  # left out: the caller need not produce them
                placement[unit.id] = None
                continue
            if unit.inputs:
                fitting = tuple(
                    index
                    for index in room.open_for(unit.cores)
                    if pilots[index].can_hold(unit.cores) and matches_affinity(unit, pilots[index])
                )
                if not fitting:
                    placement[unit.id] = None
                    continue
                self.allowed.setdefault(fitting, frozenset(fitting))
                fitting = self._cheapest(fitting, unit.inputs)
                index = min(fitting, key=lambda index: (-self.free(index), index))
            else:
                freest = self._freest_open(unit, room)
                if freest is None:
                    placement[unit.id] = None
                    continue
                index = freest
            room.take(index, unit.cores)
            self.placed[index] = self.placed.get(index, 0) + 1
            placement[unit.id] = self.pilots[index].id
        return placement

    def _freest_open(self, unit: UnitRequest, room: Room) -> int | None:
        """The candidate of ``unit`` with room for it and the highest free fraction (then index).

        One heap per (cores, labels) of the candidates that had room when first asked;
        room only shrinks during a call, so one that has none any more is dropped.
        """
        key = (unit.cores, unit.machine, unit.datacenter)
        heap = self.open_heaps.get(key)
        if heap is None:
            pilots, cores = self.pilots, unit.cores
            heap = self.open_heaps[key] = [
                (-self.free(index), index)
                for index in room.open_for(cores)
                if pilots[index].can_hold(cores) and matches_affinity(unit, pilots[index])
            ]
            heapq.heapify(heap)
        while heap:
            stale, index = heap[0]
            if not room.fits(index, unit.cores):
                heapq.heappop(heap)
                continue
            current = -self.free(index)
            if stale == current:
                return index
            heapq.heapreplace(heap, (current, index))
        return None

    def _candidates_of(self, unit: UnitRequest) -> tuple[int, ...]:
        """The candidates of ``unit``, worked out once per (cores, labels)."""
        key = (unit.cores, unit.machine, unit.datacenter)
        candidates = self.candidates.get(key)
        if candidates is None:
            candidates = self.candidates[key] = self._candidates(unit)
            self.allowed[candidates] = frozenset(candidates)
        return candidates

    def _candidates(self, unit: UnitRequest) -> tuple[int, ...]:
        """Indices of the pilots that can hold ``unit`` and carry its labels, in offer order."""
        return tuple(
            index
            for index, offer in enumerate(self.pilots)
            if offer.can_hold(unit.cores) and matches_affinity(unit, offer)
        )

    def _cheapest(
        self, candidates: tuple[int, ...], inputs: tuple[DataInput, ...]
    ) -> tuple[int, ...]:
        """The candidates where the fewest input bytes move (all of them if that is a tie).

        A pilot's cost is the total bytes less the bytes local to it, so only the
        pilots local to some input need looking at.
        """
        saved: dict[int, int] = {}
        local_to = self._local_to
        for data in inputs:
            size = data.size
            if size <= 0 or not data.replicas:
                continue
            if len(data.replicas) == 1:
                holders: Iterable[int] = local_to(data.replicas[0])
            else:
                # A pilot local to two copies of one input saves its bytes once.
                holders = {index for copy in data.replicas for index in local_to(copy)}
            for index in holders:
                saved[index] = saved.get(index, 0) + size
        allowed = self.allowed[candidates]
        most = 0
        cheapest: list[int] = []
        for index, amount in saved.items():
            if index not in allowed or amount < most:
                continue
            if amount > most:
                most = amount
                cheapest = [index]
            else:
                cheapest.append(index)
        if not cheapest:
            return candidates
        cheapest.sort()
        return tuple(cheapest)

    def _local_to(self, replica: Replica) -> tuple[int, ...]:
        """Indices of the pilots to which ``replica`` is local, by `is_local` (cached by labels)."""
        key = (replica.datacenter, replica.machine)
        local = self.local.get(key)
        if local is None:
            local = self.local[key] = tuple(
                index
                for index, offer in enumerate(self.pilots)
                if is_local(replica, offer.datacenter, offer.machine)
            )
        return local
