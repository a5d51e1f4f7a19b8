"""Rebalancing: moving units queued on a pilot (only for schedulers declaring ``"rebalance"``).

Such a scheduler is also offered units that are queued on a pilot and have not
started (`UnitRequest.queued_on`).  None or that same pilot leaves a unit
where it is; another offered pilot moves it (the manager withdraws it first).
Besides the contract, the suite holds rebalancing schedulers to two
conventions: a unit queued behind a busy pilot moves when another pilot sits
idle, and units do not move between pilots that are equally loaded (no moves
that gain nothing, which would make units ping-pong between calls).
"""

from __future__ import annotations

from dataclasses import replace

from troy.model.states import State
from troy.plugins.schedulers.base import PilotOffer, UnitRequest
from troy.testing.schedulers.base import (
    MakeScheduler,
    SchedulerFixtures,
    check_placement,
    pilot,
    placement_of,
    require_capability,
    units_of,
)


def queued_on(pilot_id: str, units: list[UnitRequest]) -> list[UnitRequest]:
    """The same units, as offered when they are queued on ``pilot_id`` and not started."""
    return [replace(unit, queued_on=pilot_id) for unit in units]


def busy(pilot_id: str, slots: int, queued: int) -> PilotOffer:
    """A pilot whose slots are all taken by one-slot units, with ``queued`` units waiting."""
    return PilotOffer(
        pilot_id, State.Running, slots=slots, queued=queued, running=slots, busy=slots
    )


class SchedulerRebalanceTests(SchedulerFixtures):
    """Queued units go only where they may, move to idle pilots, and stay when nothing gains."""

    def test_queued_units_go_only_where_they_may(self, make_scheduler: MakeScheduler) -> None:
        scheduler = make_scheduler(0)
        require_capability(scheduler, "rebalance")
        pilots = [
            busy("p1", 2, 4),
            pilot("small", 1),
            pilot("gone", 8, State.Failed),
            pilot("p2", 4),
        ]
        units = (
            queued_on("p1", units_of(2, cores=2, prefix="w"))
            + queued_on("p1", units_of(2))
            + units_of(3, prefix="new")
        )

        placement = placement_of(scheduler, units, pilots)

        check_placement(placement, units, pilots)

    def test_units_queued_behind_a_busy_pilot_move_to_an_idle_one(
        self, make_scheduler: MakeScheduler
    ) -> None:
        scheduler = make_scheduler(0)
        require_capability(scheduler, "rebalance")
        pilots = [busy("p1", 1, 6), pilot("idle", 4)]
        units = queued_on("p1", units_of(6))

        placement = placement_of(scheduler, units, pilots)

        check_placement(placement, units, pilots)
        assert "idle" in placement.values(), (
            "six units stayed queued behind pilot p1 (1 slot, busy) while pilot 'idle' "
            f"had 4 free slots: {dict(placement)}"
        )

    def test_with_one_pilot_queued_units_stay(self, make_scheduler: MakeScheduler) -> None:
        scheduler = make_scheduler(0)
        require_capability(scheduler, "rebalance")
        pilots = [busy("p1", 2, 5)]
        units = queued_on("p1", units_of(5))

        placement = placement_of(scheduler, units, pilots)

        check_placement(placement, units, pilots)
        assert set(placement.values()) <= {None, "p1"}

    def test_units_stay_between_equally_loaded_pilots(self, make_scheduler: MakeScheduler) -> None:
        scheduler = make_scheduler(0)
        require_capability(scheduler, "rebalance")
        pilots = [busy("p1", 2, 3), busy("p2", 2, 3)]
        units = queued_on("p1", units_of(3, prefix="a")) + queued_on("p2", units_of(3, prefix="b"))

        placement = placement_of(scheduler, units, pilots)

        check_placement(placement, units, pilots)
        moved = {
            unit.id: placement[unit.id]
            for unit in units
            if placement[unit.id] not in (None, unit.queued_on)
        }
        assert not moved, f"units moved between equally loaded pilots: {moved}"
