"""The scheduler suite's new tests can fail: each catches a scheduler broken in its way.

The tests are called directly (as pytest would, with the fixtures' values) on
schedulers that are wrong on purpose; none is registered.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar

import pytest

from troy.plugins.schedulers.base import Option, PilotOffer, Scheduler, UnitRequest, number
from troy.testing.schedulers import (
    SchedulerInputTests,
    SchedulerOptionTests,
    SchedulerOrderTests,
    SchedulerProgressTests,
    SchedulerRebalanceTests,
)

Place = Mapping[str, str | None]


class FirstFit(Scheduler):
    """Each unit to the first pilot that can hold it: correct, for the control cases."""

    name: ClassVar[str] = "first_fit"

    def place(self, units: Sequence[UnitRequest], pilots: Sequence[PilotOffer]) -> Place:
        return {
            unit.id: next((p.id for p in pilots if p.can_hold(unit.cores)), None) for unit in units
        }


class NeverPlaces(FirstFit):
    def place(self, units: Sequence[UnitRequest], pilots: Sequence[PilotOffer]) -> Place:
        return dict.fromkeys((unit.id for unit in units), None)


class WaitsForBusyPilots(FirstFit):
    """Just in time, wrongly: places only on pilots that have something running."""

    def place(self, units: Sequence[UnitRequest], pilots: Sequence[PilotOffer]) -> Place:
        return super().place(units, [p for p in pilots if p.running > 0])


class ShufflesEachInstance(FirstFit):
    """Reverses its order every other instance: the same inputs, another start order."""

    instances = itertools.count()

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(seed)
        self.reverse = next(self.instances) % 2 == 1

    def place(self, units: Sequence[UnitRequest], pilots: Sequence[PilotOffer]) -> Place:
        placed = super().place(units, pilots)
        return dict(reversed(placed.items())) if self.reverse else placed


class AvoidsData(FirstFit):
    def place(self, units: Sequence[UnitRequest], pilots: Sequence[PilotOffer]) -> Place:
        placed = super().place(units, pilots)
        return {u.id: None if u.inputs else placed[u.id] for u in units}


class BadDefault(FirstFit):
    option_specs: ClassVar[Mapping[str, Option]] = {"factor": Option(-1, "a factor", number(0))}


class NeverMoves(FirstFit):
    capabilities: ClassVar[frozenset[str]] = frozenset({"rebalance"})

    def place(self, units: Sequence[UnitRequest], pilots: Sequence[PilotOffer]) -> Place:
        placed = super().place(units, pilots)
        return {u.id: u.queued_on or placed[u.id] for u in units}


class PingPong(FirstFit):
    capabilities: ClassVar[frozenset[str]] = frozenset({"rebalance"})

    def place(self, units: Sequence[UnitRequest], pilots: Sequence[PilotOffer]) -> Place:
        other = {p.id: q.id for p in pilots for q in pilots if p.id != q.id}
        return {u.id: other.get(u.queued_on or "", pilots[0].id) for u in units}


class Rebalancer(FirstFit):
    """Moves a queued unit to the pilot with the most free, unclaimed slots, if any."""

    capabilities: ClassVar[frozenset[str]] = frozenset({"rebalance"})

    def place(self, units: Sequence[UnitRequest], pilots: Sequence[PilotOffer]) -> Place:
        room = {p.id: (p.free or 0) - p.queued for p in pilots}
        placed: dict[str, str | None] = {}
        for unit in units:
            best = max(room, key=lambda pid: room[pid], default=None)
            if unit.queued_on is None:
                placed[unit.id] = super().place([unit], pilots)[unit.id]
            elif best is not None and room[best] > 0 and best != unit.queued_on:
                placed[unit.id] = best
                room[best] -= 1
            else:
                placed[unit.id] = None
        return placed


MIXINS = {
    mixin.__name__: mixin
    for mixin in (
        SchedulerProgressTests,
        SchedulerOrderTests,
        SchedulerInputTests,
        SchedulerRebalanceTests,
    )
}
#: (a suite test, a scheduler it must fail)
CASES = [
    (SchedulerProgressTests.test_every_unit_starts_when_slots_free_up, NeverPlaces),
    (SchedulerProgressTests.test_every_unit_starts_when_slots_free_up, WaitsForBusyPilots),
    (SchedulerProgressTests.test_a_busy_pilot_does_not_block_an_idle_one, NeverPlaces),
    (
        SchedulerOrderTests.test_order_on_each_pilot_is_the_same_for_the_same_inputs,
        ShufflesEachInstance,
    ),
    (SchedulerInputTests.test_units_with_inputs_are_placed, AvoidsData),
    (
        SchedulerRebalanceTests.test_units_queued_behind_a_busy_pilot_move_to_an_idle_one,
        NeverMoves,
    ),
    (SchedulerRebalanceTests.test_units_stay_between_equally_loaded_pilots, PingPong),
]


@pytest.mark.parametrize(("test", "scheduler"), CASES, ids=lambda c: getattr(c, "__name__", c))
def test_the_suite_catches_a_broken_scheduler(
    test: Callable[..., None], scheduler: type[Scheduler]
) -> None:
    suite = MIXINS[test.__qualname__.split(".")[0]]()
    with pytest.raises(AssertionError):
        test(suite, make_scheduler=lambda seed=0: scheduler(seed=seed))
    # ... and passes a correct one.
    correct = Rebalancer if "rebalance" in scheduler.capabilities else FirstFit
    test(suite, make_scheduler=lambda seed=0: correct(seed=seed))


def test_a_default_that_fails_its_own_check_is_caught() -> None:
    with pytest.raises(Exception, match="expected at least 0"):
        SchedulerOptionTests().test_every_default_passes_its_own_check(BadDefault)
    SchedulerOptionTests().test_every_default_passes_its_own_check(FirstFit)
