"""The ``backfill`` scheduler: EASY backfilling, placed just in time.

EASY backfilling (the Extensible Argonne Scheduling sYstem: Lifka, "The ANL/IBM
SP scheduling system", JSSPP 1995, LNCS 949; analysed by Mu'alem and
Feitelson, "Utilization, predictability, workloads, and user runtime
estimates in scheduling the IBM SP2 with backfilling", IEEE TPDS 12(6), 2001).

Each call walks the units in submission ``order`` (first come, first served)
and places each on the fitting pilot with the most open slots (free slots less
those of queued units, see `troy.plugins.schedulers.just_in_time`; the first
offered on ties), until the first unit that fits nowhere now: the *head*. The
head gets a reservation: the pilot and the earliest time ("shadow time") at
which enough of its slots are expected to be free, the earliest pilot first,
then the first offered. Every later unit may start now, in a pilot's open
slots, only if it does not delay the head: on another pilot; or on the
reserved pilot if it is expected to end by the shadow time (now + its
`UnitRequest.estimate` <= shadow time); or if it uses only the *extra* slots,
those the head leaves free at the shadow time. A unit without an estimate
counts as never ending, so it is never backfilled past a reservation except
into extra slots. There is only one reservation (that of the head), as in
EASY; other units that do not fit wait.

What is approximated. A scheduler sees counts (running units, busy slots),
not which units run, so this one keeps its own record of the units it placed:
pilot, slots and expected end (the time placed, by ``clock``, plus the
estimate; a unit is assumed to start when placed, which just-in-time
placement makes nearly true). When a pilot has fewer slots taken than its
record explains (units ended early), the records of the earliest expected ends
are dropped first. Slots taken that the record does not explain (units
placed by another process, or without an estimate, or running past their
estimate) are assumed to free up now: the reservation can then only come
sooner, never later, so the head is never delayed by this guess, at the cost
of backfilling less. A pilot of unknown size gets no reservation; a unit for
which no pilot can give one (none can hold it, or none has a known size) holds
back nothing, and the next unit that fits nowhere is tried as the head.

After a call that made a reservation in the future, `next_call` asks to be
called again at the shadow time, so the head is placed then even if no unit
ends and no pilot changes.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import ClassVar

from troy.plugins.schedulers.base import (
    PilotOffer,
    Scheduler,
    SortedUnits,
    UnitKey,
    UnitRequest,
    in_order,
)
from troy.plugins.schedulers.just_in_time import QueuedSlots, Room

INFINITY = float("inf")


@dataclass(frozen=True, slots=True)
class Reservation:
    """Where and when the head unit is expected to start, and the slots it leaves over."""

    unit: str
    pilot: int
    at: float
    extra: int


def submission_order(unit: UnitRequest) -> int:
    """The key backfill walks the units by: first come, first served."""
    return unit.order


class BackfillScheduler(Scheduler):
    """First come, first served, with EASY backfilling behind the first unit that must wait.

    ``clock`` (seconds, monotonic) is for tests and simulators; troy runs it
    with `time.monotonic`.

    What a call works out is kept for the next one, per pilot: the expected ends
    of its recorded units, worked out again only when its offer or record
    changed or one of them is due; and, per unit size, a heap of the pilots by
    when a unit of that size could start there (the reservation is its top).
    """

    name: ClassVar[str] = "backfill"
    #: It keeps a pilot's room free for the head's reservation (see the suite's conventions).
    capabilities: ClassVar[frozenset[str]] = frozenset({"reserves"})

    def __init__(
        self, seed: int | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(seed)
        self.clock = clock
        self._queued = QueuedSlots()
        #: pilot id -> [(expected end, slots)] of the units placed on it, as recorded.
        self._ends: dict[str, list[tuple[float, int]]] = {}
        #: The reservation of the last call, if any.
        self.reservation: Reservation | None = None
        self._wake: float | None = None
        # By offer index, kept between calls: the expected ends as worked out (trimmed,
        # sorted, then those placed appended), a version per pilot, a heap of when the
        # first expected end of each is due, and per unit size a heap of the pilots by
        # (when such a unit could start there, -inf for now; index; version).
        self._expected: list[list[tuple[float, int]]] = []
        self._version: list[int] = []
        self._due: list[tuple[float, int, int]] = []
        self._starts: dict[int, list[tuple[float, int, int]]] = {}

    def place(
        self, units: Sequence[UnitRequest], pilots: Sequence[PilotOffer]
    ) -> Mapping[str, str | None]:
        """Unit ids, in submission order, with a pilot where each starts now, or None (waits)."""
        now = self.clock()
        room = self._queued.room(pilots)
        ends = self._expected_ends(pilots, room, now)
        chosen: dict[str, str | None] = {}
        reservation: Reservation | None = None
        lazy = isinstance(units, SortedUnits)
        for unit in in_order(units, submission_order):
            if lazy and reservation is not None and room.left <= 0:
                break  # nothing more fits now: the others wait (left out)
            estimate = unit.estimate()
            if reservation is None:
                index = room.roomiest(unit.cores)
                if index is None:
                    reservation = self._reserve(unit, pilots, now)
                    chosen[unit.id] = None
                    continue
            else:
                index = self._backfill(unit, estimate, room, reservation, now)
                if index is None:
                    chosen[unit.id] = None
                    continue
                if index == reservation.pilot and not _ends_by(now, estimate, reservation.at):
                    reservation = _use_extra(reservation, unit.cores)
            room.take(index, unit.cores)
            end = INFINITY if estimate is None else now + estimate
            ends[index].append((end, unit.cores))
            self._bump(index, pilots[index], now)
            chosen[unit.id] = pilots[index].id
        self.reservation = reservation
        self._wake = reservation.at if reservation is not None else None
        # In submission order: units one call places on a pilot start there in that order.
        return chosen

    def next_call(self) -> float | None:
        """Seconds until the reservation's shadow time, if that is still to come."""
        if self._wake is None or self._wake == INFINITY:
            return None
        delay = self._wake - self.clock()
        return delay if delay > 0 else None

    def unit_order(self) -> UnitKey:
        """Units are looked at by `submission_order`."""
        return submission_order

    def waiting_reason(self, unit: UnitRequest, pilots: Sequence[PilotOffer]) -> str:
        """Why ``unit`` waits: no pilot can hold it, it holds the reservation, or is behind it."""
        if not any(pilot.can_hold(unit.cores) for pilot in pilots):
            return super().waiting_reason(unit, pilots)
        held = self.reservation
        if held is not None and held.unit == unit.id:
            when = "" if held.at == INFINITY else f" in {max(0.0, held.at - self.clock()):.0f} s"
            return f"waiting for {unit.cores} slot(s): first in line, reserved{when}"
        return f"waiting for {unit.cores} open slot(s) that do not delay the first in line"

    # -- the record and the reservation --------------------------------------------------
    def _expected_ends(
        self, pilots: Sequence[PilotOffer], room: Room, now: float
    ) -> list[list[tuple[float, int]]]:
        """Per pilot, the (expected end, slots) of recorded units still expected to run.

        Trimmed to the slots the pilot has taken (see the module docstring); worked
        out again for the pilots whose offer or record changed or whose first
        expected end has come, the others are as the last call left them.
        """
        count = len(pilots)
        if count != len(self._expected):
            self._expected = [[] for _ in range(count)]
            self._version = [0] * count
            self._due = []
            self._starts = {}
        again = set(room.changed)
        due, version = self._due, self._version
        while due and due[0][0] <= now:
            _, index, mark = heapq.heappop(due)
            if mark == version[index]:
                again.add(index)
        for index in again:
            offer = pilots[index]
            recorded = sorted(e for e in self._ends.get(offer.id, []) if e[0] > now)
            if offer.slots is not None:
                taken = offer.slots - (room.open[index] or 0)
                explained = sum(slots for _, slots in recorded)
                while recorded and explained > taken:
                    explained -= recorded.pop(0)[1]  # ended early: most likely the first
            # Pilots not offered this time keep their record: a call may offer only some.
            self._ends[offer.id] = self._expected[index] = recorded
            self._bump(index, offer, now)
        return self._expected

    def _bump(self, index: int, offer: PilotOffer, now: float) -> None:
        """Pilot ``index``'s expected ends changed: new version, due time and start times."""
        self._version[index] += 1
        mark = self._version[index]
        recorded = self._expected[index]
        if recorded:
            heapq.heappush(self._due, (min(recorded)[0], index, mark))
        for cores, heap in self._starts.items():
            start = _start(offer, recorded, cores, now)
            if start is not None:
                heapq.heappush(heap, (start[0], index, mark))

    def _reserve(
        self, unit: UnitRequest, pilots: Sequence[PilotOffer], now: float
    ) -> Reservation | None:
        """The head's reservation: the pilot where ``unit`` can start first, and when."""
        cores = unit.cores
        heap = self._starts.get(cores)
        if heap is None:
            heap = self._starts[cores] = []
            for index, offer in enumerate(pilots):
                start = _start(offer, self._expected[index], cores, now)
                if start is not None:
                    heap.append((start[0], index, self._version[index]))
            heapq.heapify(heap)
        version = self._version
        while heap and heap[0][2] != version[heap[0][1]]:
            heapq.heappop(heap)  # the pilot's expected ends changed since
        if not heap:
            return None
        at, index, _ = heap[0]
        start = _start(pilots[index], self._expected[index], cores, now)
        assert start is not None
        return Reservation(unit.id, index, now if at == -INFINITY else at, start[1])

    @staticmethod
    def _backfill(
        unit: UnitRequest,
        estimate: float | None,
        room: Room,
        reservation: Reservation,
        now: float,
    ) -> int | None:
        """The pilot of most open slots where ``unit`` starts now and does not delay the head."""
        best: int | None = None
        most = -1
        for index in room.with_room() if unit.cores > 0 else range(len(room.pilots)):
            if not room.fits(index, unit.cores):
                continue
            if (
                index == reservation.pilot
                and not _ends_by(now, estimate, reservation.at)
                and unit.cores > reservation.extra
            ):
                continue
            slots = room.slots(index, unit.cores)
            if slots > most:
                best, most = index, slots
        return best


def _start(
    offer: PilotOffer, recorded: list[tuple[float, int]], cores: int, now: float
) -> tuple[float, int] | None:
    """When a unit of ``cores`` could start on ``offer`` (-inf: now), and the slots left over.

    None if the pilot is of unknown size or cannot hold it. Taken slots that the
    record does not explain are assumed to free up now.
    """
    if offer.slots is None or not offer.can_hold(cores):
        return None
    available = offer.slots - sum(slots for _, slots in recorded)
    at = -INFINITY
    for end, slots in sorted(recorded):
        if available >= cores:
            break
        available += slots
        at = end
    if available < cores:
        return None
    # Now stays now as time passes; a later time is an expected end, due before it passes.
    return -INFINITY if at <= now else at, available - cores


def _ends_by(now: float, estimate: float | None, at: float) -> bool:
    """True if a unit started now with ``estimate`` is expected to end by time ``at``."""
    return estimate is not None and now + estimate <= at


def _use_extra(reservation: Reservation, cores: int) -> Reservation:
    """The reservation after a unit that runs past it took ``cores`` of its extra slots."""
    return replace(reservation, extra=reservation.extra - cores)
