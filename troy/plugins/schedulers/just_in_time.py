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
"""

from __future__ import annotations

from collections.abc import Sequence

from troy.plugins.schedulers.base import PilotOffer


class QueuedSlots:
    """The slots of the units a scheduler placed on each pilot, newest last, kept between calls."""

    def __init__(self) -> None:
        self._placed: dict[str, list[int]] = {}

    def room(self, pilots: Sequence[PilotOffer]) -> Room:
        """The open slots of ``pilots`` at the start of a call; forgets units that started.

        Pilots not offered this time keep their record: a call may offer only some.
        """
        placed = self._placed
        for offer in pilots:
            mine = placed.get(offer.id)
            if mine is not None and len(mine) > offer.queued:
                # The units still queued are the last ``queued`` placed; the others started.
                placed[offer.id] = mine[len(mine) - offer.queued :] if offer.queued else []
        return Room(pilots, placed)


class Room:
    """The open slots of one call's pilots (by offer index), shrinking as units are placed."""

    def __init__(self, pilots: Sequence[PilotOffer], placed: dict[str, list[int]]) -> None:
        self.pilots = pilots
        self._placed = placed
        #: Open slots per pilot; None for an idle pilot of unknown size (room for one unit).
        self.open: list[int | None] = []
        for offer in pilots:
            if offer.state.is_final:
                self.open.append(0)
            elif offer.slots is None:
                idle = offer.queued == 0 and offer.running == 0
                self.open.append(None if idle else 0)
            else:
                mine = placed.get(offer.id, [])
                queued = sum(mine) + max(0, offer.queued - len(mine))
                self.open.append(max(0, (offer.free or 0) - queued))
        #: Units that could still be placed at most: open slots, and one per idle unknown pilot.
        self.left = sum(1 if slots is None else slots for slots in self.open)

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
        slots = self.open[index]
        if slots is None:
            self.open[index] = 0
            self.left -= 1
        else:
            self.open[index] = slots - cores
            self.left -= cores
        self._placed.setdefault(self.pilots[index].id, []).append(cores)

    def roomiest(self, cores: int, among: Sequence[int] | None = None) -> int | None:
        """The pilot (index) with the most open slots that fits ``cores`` (first offered on ties).

        Only pilots in ``among`` (indices, in offer order) if given; None if none fits.
        """
        if self.left <= 0:
            return None
        best: int | None = None
        most = -1
        for index in range(len(self.pilots)) if among is None else among:
            if self.fits(index, cores):
                slots = self.slots(index, cores)
                if slots > most:
                    best, most = index, slots
        return best
