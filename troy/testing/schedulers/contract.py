"""What every scheduler does with every call: an entry per unit, fit, determinism, spreading."""

from __future__ import annotations

from collections import Counter

import pytest

from troy.model.states import State
from troy.plugins.schedulers.base import UnitRequest
from troy.testing.schedulers.base import (
    MakeScheduler,
    SchedulerFixtures,
    check_placement,
    pilot,
    placement_of,
    units_of,
    waiting_without_room,
)


class SchedulerEntryTests(SchedulerFixtures):
    """``place`` answers for every unit it is given, and only for those."""

    def test_every_unit_gets_an_entry(self, make_scheduler: MakeScheduler) -> None:
        units = units_of(6) + units_of(3, cores=4, prefix="w") + units_of(2, cores=99, prefix="x")
        pilots = [pilot("p1", slots=4), pilot("p2", slots=2), pilot("p3", None, State.Pending)]

        placement = placement_of(make_scheduler(0), units, pilots)

        check_placement(placement, units, pilots)

    def test_no_units_gives_no_entries(self, make_scheduler: MakeScheduler) -> None:
        assert placement_of(make_scheduler(0), [], [pilot("p1")]) == {}


class SchedulerFitTests(SchedulerFixtures):
    """Units go only to pilots that can hold them; units no pilot can hold wait."""

    def test_only_pilots_that_can_hold_the_unit_are_chosen(
        self, make_scheduler: MakeScheduler
    ) -> None:
        pilots = [
            pilot("done", 64, State.Done),
            pilot("failed", 64, State.Failed),
            pilot("canceled", 64, State.Canceled),
            pilot("small", 2),
            pilot("big", 8),
            pilot("unknown", None, State.Pending),
        ]
        units = units_of(20, cores=4, prefix="quad") + units_of(20, cores=1, prefix="one")

        placement = placement_of(make_scheduler(0), units, pilots)

        check_placement(placement, units, pilots)
        chosen = set(placement.values())
        assert not chosen & {"done", "failed", "canceled"}, "a final pilot was chosen"
        assert all(placement[unit.id] != "small" for unit in units if unit.cores == 4)
        if "reserves" not in type(make_scheduler(0)).capabilities:
            left = waiting_without_room(placement, units, pilots)
            assert not left, f"units were left waiting while a pilot had room for them: {left}"

    def test_pilot_of_unknown_size_may_hold_a_unit(self, make_scheduler: MakeScheduler) -> None:
        pilots = [pilot("done", 64, State.Done), pilot("small", 1), pilot("unknown", None)]
        units = units_of(1, cores=4)

        assert placement_of(make_scheduler(0), units, pilots) == {"u0": "unknown"}

    def test_unit_bigger_than_every_pilot_waits(self, make_scheduler: MakeScheduler) -> None:
        pilots = [pilot("p1", 4), pilot("p2", 8), pilot("gone", 64, State.Failed)]
        units = [UnitRequest("huge", cores=16), UnitRequest("tiny", cores=1)]

        placement = placement_of(make_scheduler(0), units, pilots)

        check_placement(placement, units, pilots)
        assert placement["huge"] is None
        assert placement["tiny"] in {"p1", "p2"}

    def test_without_pilots_every_unit_waits(self, make_scheduler: MakeScheduler) -> None:
        units = units_of(5)
        final = [pilot("done", 8, State.Done), pilot("canceled", 8, State.Canceled)]

        assert placement_of(make_scheduler(0), units, []) == dict.fromkeys(
            ["u0", "u1", "u2", "u3", "u4"]
        )
        assert placement_of(make_scheduler(0), units, final) == dict.fromkeys(
            ["u0", "u1", "u2", "u3", "u4"]
        )


class SchedulerDeterminismTests(SchedulerFixtures):
    """The same seed, inputs and call history give the same placement."""

    @pytest.mark.parametrize("seed", [0, 7])
    def test_same_seed_and_inputs_give_the_same_placement(
        self, make_scheduler: MakeScheduler, seed: int | None
    ) -> None:
        pilots = [pilot("p1", 4), pilot("p2", 8), pilot("p3", None, State.Pending), pilot("p4", 2)]
        calls = [
            (units_of(17), pilots),
            (units_of(5, cores=4, prefix="w"), pilots[1:]),
            (units_of(9, cores=2, prefix="x"), pilots[::-1]),
        ]

        def history() -> list[dict[str, str | None]]:
            scheduler = make_scheduler(seed)
            return [placement_of(scheduler, units, offered) for units, offered in calls]

        first, second = history(), history()

        for (units, offered), placement in zip(calls, first, strict=True):
            check_placement(placement, units, offered)
        assert first == second


class SchedulerSpreadTests(SchedulerFixtures):
    """Load spreads over equal pilots (skipped for schedulers declaring ``"packing"``)."""

    def test_load_spreads_over_equal_pilots(self, make_scheduler: MakeScheduler) -> None:
        scheduler = make_scheduler(0)
        if "packing" in type(scheduler).capabilities:
            pytest.skip(f"{type(scheduler).__name__} declares 'packing': it fills pilots in turn")
        pilots = [pilot(f"p{index}", 100) for index in range(4)]
        units = units_of(100)

        placement = placement_of(scheduler, units, pilots)

        check_placement(placement, units, pilots)
        load = Counter(placement.values())
        assert None not in load, "units were left waiting on idle pilots"
        fair_share = len(units) / len(pilots)
        assert max(load.values()) <= 2 * fair_share, f"load not spread: {dict(load)}"
