"""The `fewest_units` scheduler: each unit goes to the pilot with the fewest units on it."""

from collections.abc import Mapping, Sequence
from typing import ClassVar

from troy.plugins.schedulers.base import PilotOffer, Scheduler, UnitRequest


class FewestUnitsScheduler(Scheduler):
    """Places each unit on the pilot that can hold it and has the fewest units queued."""

    name: ClassVar[str] = "fewest_units"

    def place(
        self, units: Sequence[UnitRequest], pilots: Sequence[PilotOffer]
    ) -> Mapping[str, str | None]:
        load = {pilot.id: pilot.load for pilot in pilots}
        placement: dict[str, str | None] = {}
        for unit in units:
            fitting = [pilot for pilot in pilots if pilot.can_hold(unit.cores)]
            if not fitting:
                placement[unit.id] = None
                continue
            # Ties go to the pilot offered first: deterministic without using the seed.
            chosen = min(fitting, key=lambda pilot: load[pilot.id])
            placement[unit.id] = chosen.id
            load[chosen.id] += 1
        return placement
