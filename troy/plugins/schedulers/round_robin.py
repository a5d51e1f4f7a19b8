"""The ``round_robin`` scheduler: deal units to pilots in turn, like cards.

The default scheduler. It ignores load, affinity and data, and keeps its place
in the cycle between calls, so units placed one call at a time are spread
exactly as if they had been placed in one bulk call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from troy.plugins.schedulers.base import PilotOffer, Scheduler, UnitRequest


class RoundRobinScheduler(Scheduler):
    """Gives each unit the next pilot, in the order offered, that can hold it.

    Pilots that cannot hold a unit (final, or too few slots) are skipped for
    that unit only; the cycle then continues after the pilot chosen. A unit no
    pilot can hold is left waiting (None) and does not move the cycle. The
    place in the cycle is the last pilot chosen, so pilots may come and go
    between calls: the cycle resumes after that pilot or, if it is gone, at
    the next pilot after it that is still offered.
    """

    name: ClassVar[str] = "round_robin"

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(seed)
        # The pilots offered when a unit was last placed, and the index of the last one chosen.
        self._offered: tuple[str, ...] = ()
        self._last = -1

    def place(
        self, units: Sequence[UnitRequest], pilots: Sequence[PilotOffer]
    ) -> Mapping[str, str | None]:
        """For every unit id given, the next pilot in the cycle that can hold it, or None."""
        count = len(pilots)
        if count == 0:
            return dict.fromkeys((unit.id for unit in units), None)
        ids = tuple(pilot.id for pilot in pilots)
        cursor = self._start(ids)
        # For each core count seen: next_fit[i] is the first index at or after i (cyclically)
        # of a pilot that can hold it, or -1; so each unit costs O(1) after the first of its size.
        tables: dict[int, list[int]] = {}
        placement: dict[str, str | None] = {}
        last_chosen = -1
        for unit in units:
            next_fit = tables.get(unit.cores)
            if next_fit is None:
                next_fit = tables[unit.cores] = _next_fit(pilots, unit.cores)
            chosen = next_fit[cursor]
            if chosen < 0:
                placement[unit.id] = None
                continue
            placement[unit.id] = ids[chosen]
            last_chosen = chosen
            cursor = chosen + 1 if chosen + 1 < count else 0
        if last_chosen >= 0:
            self._offered = ids
            self._last = last_chosen
        return placement

    def _start(self, ids: tuple[str, ...]) -> int:
        """Index in ``ids`` of the pilot that would have come next after the last one chosen."""
        if self._last < 0:
            return 0
        if ids == self._offered:
            return (self._last + 1) % len(ids)
        position = {pilot_id: index for index, pilot_id in reversed(list(enumerate(ids)))}
        last_id = self._offered[self._last]
        if last_id in position:
            return (position[last_id] + 1) % len(ids)
        # The last pilot is gone: resume at the next one after it that is still offered.
        count = len(self._offered)
        for step in range(1, count):
            following = self._offered[(self._last + step) % count]
            if following in position:
                return position[following]
        return 0


def _next_fit(pilots: Sequence[PilotOffer], cores: int) -> list[int]:
    """For each index, the first index from it on (wrapping) of a pilot that can hold ``cores``."""
    count = len(pilots)
    fits = [pilot.can_hold(cores) for pilot in pilots]
    if not any(fits):
        return [-1] * count
    table = [0] * count
    # Walk backwards twice round the ring so that wrapping entries see the first fit.
    following = -1
    for index in range(2 * count - 1, -1, -1):
        position = index % count
        if fits[position]:
            following = position
        table[position] = following
    return table
