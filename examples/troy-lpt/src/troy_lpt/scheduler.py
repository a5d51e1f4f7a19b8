"""``longest_first``: longest processing time first (LPT; R. L. Graham, 1969).

Units are placed longest first (`UnitRequest.estimate`: ``hints.runtime``, else
the wall time limit; ``default_runtime`` seconds without either), each on the
pilot that can hold it with the least expected work per slot. On each pilot the
longest units start first, so a long unit does not end a run alone.
"""

from collections.abc import Mapping, Sequence
from typing import ClassVar

from troy.plugins.schedulers.base import Option, PilotOffer, Scheduler, UnitRequest, number


class LongestFirstScheduler(Scheduler):
    """Longest units first, each to the pilot with the least expected work per slot."""

    name: ClassVar[str] = "longest_first"
    option_specs: ClassVar[Mapping[str, Option]] = {
        "default_runtime": Option(60.0, "seconds assumed for a unit without estimate", number(0)),
    }

    def place(
        self, units: Sequence[UnitRequest], pilots: Sequence[PilotOffer]
    ) -> Mapping[str, str | None]:
        default = self.options["default_runtime"]

        def runtime(unit: UnitRequest) -> float:
            estimate = unit.estimate()
            return default if estimate is None else estimate

        # What the pilots hold already counts as units of the default length.
        work = {pilot.id: pilot.load * default for pilot in pilots}
        placement: dict[str, str | None] = {}
        for unit in sorted(units, key=lambda unit: (-runtime(unit), unit.order)):
            fitting = [pilot for pilot in pilots if pilot.can_hold(unit.cores)]
            if not fitting:
                placement[unit.id] = None
                continue
            # Ties go to the pilot offered first: deterministic without the seed.
            chosen = min(fitting, key=lambda pilot: work[pilot.id] / (pilot.slots or 1))
            placement[unit.id] = chosen.id
            work[chosen.id] += runtime(unit) * unit.cores
        return placement
