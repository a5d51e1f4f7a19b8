"""Just-in-time placement: the slots in which a unit placed now would start at once.

Shared by the strategies that place units only into free capacity
(``shortest_first``, ``backfill``, and ``affinity`` and ``data_aware`` with
``binding: late``); each keeps one `QueuedSlots` between calls.

A pilot's *open* slots are ``PilotOffer.free`` (its slots less those of its
running units) less the slots of the units queued on it (placed, not started).
An offer gives only the *number* of queued units, so the scheduler remembers
the slots of the units it placed on each pilot: the ``queued`` units are taken
to be the last ``queued`` it placed there (agents start a pilot's units in the
order placed), and each queued unit it did not place (another process placed
it, say) counts as one slot, the least a unit takes. Units placed earlier in
the same call count with their exact slots. A pilot of unknown size
(``slots=None``) is open for exactly one unit, of any size, while nothing is
queued or running on it.

The open slots are kept between calls and worked out again only for the
pilots whose offer is not the same object as in the last call, or on which
the last call placed units; the pilots with open slots are kept as a set.
So a call costs in proportion to the pilots that changed and the pilots with
open slots, not to all pilots (a caller that keeps unchanged offers, as the
unit manager and the simulator do, gets this for free).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import compress
from operator import is_not

from troy.plugins.schedulers.base import PilotOffer


class QueuedSlots:
    """The slots of the units a scheduler placed on each pilot, newest last, kept between calls."""

    def __init__(self) -> None:
        self._placed: dict[str, list[int]] = {}
        #: The offers the open slots below were worked out from, by offer index.
        self._offers: list[PilotOffer | None] = []
        self.open: list[int | None] = []
        self.left = 0
        #: Indices of the pilots with open slots (or idle and of unknown size).
        self.with_room: set[int] = set()
        #: Indices whose record a call changed (worked out again at the next call).
        self.touched: set[int] = set()
        #: Indices worked out again by the last `room` (all of them if the pilots changed).
        self.changed: set[int] | range = range(0)

    def room(self, pilots: Sequence[PilotOffer]) -> Room:
        """The open slots of ``pilots`` at the start of a call; forgets units that started.

        Pilots not offered this time keep their record: a call may offer only some.
        """
        count = len(pilots)
        if count != len(self._offers):
            self._offers = [None] * count
            self.open = [0] * count
            self.left = 0
            self.with_room = set()
            changed: set[int] | range = range(count)
        else:
            changed = set(compress(range(count), map(is_not, pilots, self._offers)))
            changed.update(self.touched)
        self.touched = set()
        self.changed = changed
        placed = self._placed
        for index in changed:
            offer = pilots[index]
            mine = placed.get(offer.id)
            if mine is not None and len(mine) > offer.queued:
                # The units still queued are the last ``queued`` placed; the others started.
                placed[offer.id] = mine[len(mine) - offer.queued :] if offer.queued else []
            self._set(index, _open_slots(offer, placed))
            self._offers[index] = offer
        return Room(pilots, self)

    def _set(self, index: int, slots: int | None) -> None:
        old = self.open[index]
        self.left += (1 if slots is None else slots) - (1 if old is None else old)
        self.open[index] = slots
        if slots is None or slots > 0:
            self.with_room.add(index)
        else:
            self.with_room.discard(index)

    def take(self, pilot: PilotOffer, index: int, cores: int) -> None:
        """Record a unit of ``cores`` slots placed on ``pilot`` (offer ``index``)."""
        slots = self.open[index]
        self._set(index, 0 if slots is None else slots - cores)
        self._placed.setdefault(pilot.id, []).append(cores)
        self.touched.add(index)


def _open_slots(offer: PilotOffer, placed: dict[str, list[int]]) -> int | None:
    """Open slots of ``offer``; None for an idle pilot of unknown size (room for one unit)."""
    if offer.state.is_final:
        return 0
    if offer.slots is None:
        return None if offer.queued == 0 and offer.running == 0 else 0
    mine = placed.get(offer.id, [])
    queued = sum(mine) + max(0, offer.queued - len(mine))
    return max(0, (offer.free or 0) - queued)


class Room:
    """The open slots of one call's pilots (by offer index), shrinking as units are placed."""

    def __init__(self, pilots: Sequence[PilotOffer], queued: QueuedSlots) -> None:
        self.pilots = pilots
        self._queued = queued
        #: Open slots per pilot; None for an idle pilot of unknown size (room for one unit).
        self.open: list[int | None] = queued.open

    @property
    def left(self) -> int:
        """Units that could still be placed at most: open slots, and one per idle unknown pilot."""
        return self._queued.left

    @property
    def changed(self) -> set[int] | range:
        """Indices of the pilots whose offer or record changed since the last call."""
        return self._queued.changed

    def with_room(self) -> list[int]:
        """Indices of the pilots with open slots (or idle, of unknown size), in offer order."""
        return sorted(self._queued.with_room)

    def open_for(self, cores: int) -> list[int]:
        """Indices, in offer order, of the pilots where a unit of ``cores`` slots fits now."""
        indices = self.with_room() if cores > 0 else range(len(self.pilots))
        return [index for index in indices if self.fits(index, cores)]

    def fits(self, index: int, cores: int) -> bool:
        """True if a unit of ``cores`` slots placed on pilot ``index`` now starts at once."""
        slots = self.open[index]
        if slots is None:
            return self.pilots[index].can_hold(cores)
        return slots >= cores

    def slots(self, index: int, cores: int) -> int:
        """Open slots of pilot ``index`` for ranking (an idle pilot of unknown size: ``cores``)."""
        slots = self.open[index]
        return cores if slots is None else slots

    def take(self, index: int, cores: int) -> None:
        """Place a unit of ``cores`` slots on pilot ``index`` (it must fit)."""
        self._queued.take(self.pilots[index], index, cores)

    def roomiest(self, cores: int, among: Sequence[int] | None = None) -> int | None:
        """The pilot (index) with the most open slots that fits ``cores`` (first offered on ties).

        Only pilots in ``among`` (indices, in offer order) if given; None if none fits.
        """
        if self.left <= 0:
            return None
        candidates: Iterable[int] = among if among is not None else self._queued.with_room
        if among is None and cores <= 0:
            candidates = range(len(self.pilots))
        # Only pilots with room fit a unit of a slot or more; whatever the order of the
        # candidates, ties go to the lowest index.
        best: int | None = None
        most = -1
        for index in candidates:
            if self.fits(index, cores):
                slots = self.slots(index, cores)
                if slots > most or (slots == most and best is not None and index < best):
                    best, most = index, slots
        return best
