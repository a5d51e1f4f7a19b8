"""The scheduler conformance suite: what every ``troy.schedulers`` plugin must do.

Run it against a scheduler with one subclass that names it::

    import pytest
    from troy.testing.schedulers import SchedulerSuite

    class TestMyScheduler(SchedulerSuite):
        @pytest.fixture
        def scheduler_name(self):
            return "my_scheduler"

The scheduler is loaded through the registry by its entry-point name, exactly
as ``WorkUnitService(scheduler=...)`` loads it. Besides the contract in
`troy.plugins.schedulers.base`, the suite holds schedulers to two conventions:

- *Progress*: a unit without affinity or input data is not left waiting while
  some offered pilot can hold it and has nothing queued. A pilot whose size is
  unknown (``slots=None``) counts as one that may hold any unit.
- *Spreading*: with equal, idle pilots, no pilot gets more than twice its fair
  share of one-core units. A scheduler that fills pilots one after another on
  purpose declares the capability ``"packing"`` in its ``capabilities``, and
  the spreading test is skipped for it.

A scheduler that honours the units' affinity labels declares ``"affinity"``
and is held to the affinity tests (skipped without it): a unit naming a
machine goes only to a pilot with that ``machine`` label (and that
``datacenter`` label, if it names one too), a unit naming only a datacenter
only to a pilot in it, and a unit no matching pilot can hold waits, with a
`waiting_reason` that names the label it waits for.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence

import pytest

from troy.model.states import State
from troy.plugins import registry
from troy.plugins.schedulers.base import PilotOffer, Scheduler, UnitRequest

#: Makes a fresh scheduler instance with the given seed.
MakeScheduler = Callable[[int | None], Scheduler]


def units_of(count: int, cores: int = 1, prefix: str = "u") -> list[UnitRequest]:
    """``count`` units of ``cores`` cores each, with ids ``<prefix>0``, ``<prefix>1``, ..."""
    return [UnitRequest(f"{prefix}{index}", cores=cores) for index in range(count)]


def pilot(pilot_id: str, slots: int | None = 8, state: State = State.Running) -> PilotOffer:
    """A pilot offer with nothing queued."""
    return PilotOffer(pilot_id, state, slots=slots)


def labelled(
    pilot_id: str, datacenter: str | None, machine: str | None, slots: int | None = 8
) -> PilotOffer:
    """A running pilot offer with affinity labels and nothing queued."""
    return PilotOffer(pilot_id, State.Running, slots=slots, datacenter=datacenter, machine=machine)


def check_placement(
    placement: Mapping[str, str | None],
    units: Sequence[UnitRequest],
    pilots: Sequence[PilotOffer],
) -> None:
    """Assert the contract: one entry per unit, each None or a pilot that can hold the unit."""
    assert sorted(placement) == sorted(unit.id for unit in units), "not one entry per unit"
    offers = {offer.id: offer for offer in pilots}
    for unit in units:
        chosen = placement[unit.id]
        if chosen is None:
            continue
        assert chosen in offers, f"unit {unit.id} placed on {chosen!r}, which was not offered"
        assert offers[chosen].can_hold(unit.cores), (
            f"unit {unit.id} ({unit.cores} cores) placed on {offers[chosen]}, which cannot hold it"
        )


class SchedulerFixtures:
    """Fixtures of the scheduler suite; a subclass must override ``scheduler_name``."""

    @pytest.fixture
    def scheduler_name(self) -> str:
        """The entry-point name of the scheduler under test; override this."""
        pytest.fail(
            "the scheduler conformance suite needs a scheduler: override the "
            "'scheduler_name' fixture in your SchedulerSuite subclass to return its "
            "entry-point name in 'troy.schedulers'"
        )

    @pytest.fixture
    def make_scheduler(self, scheduler_name: str) -> MakeScheduler:
        """Makes fresh instances of the scheduler, loaded by name through the registry."""
        plugin: type[Scheduler] = registry.load("scheduler", scheduler_name)

        def make(seed: int | None = 0) -> Scheduler:
            return plugin(seed=seed)

        return make


class SchedulerEntryTests(SchedulerFixtures):
    """``place`` answers for every unit it is given, and only for those."""

    def test_every_unit_gets_an_entry(self, make_scheduler: MakeScheduler) -> None:
        units = units_of(6) + units_of(3, cores=4, prefix="w") + units_of(2, cores=99, prefix="x")
        pilots = [pilot("p1", slots=4), pilot("p2", slots=2), pilot("p3", None, State.Pending)]

        placement = make_scheduler(0).place(units, pilots)

        check_placement(placement, units, pilots)

    def test_no_units_gives_no_entries(self, make_scheduler: MakeScheduler) -> None:
        assert dict(make_scheduler(0).place([], [pilot("p1")])) == {}


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

        placement = make_scheduler(0).place(units, pilots)

        check_placement(placement, units, pilots)
        chosen = set(placement.values())
        assert not chosen & {"done", "failed", "canceled"}, "a final pilot was chosen"
        assert all(placement[unit.id] != "small" for unit in units if unit.cores == 4)
        assert None not in chosen, "units were left waiting while a pilot could hold them"

    def test_pilot_of_unknown_size_may_hold_a_unit(self, make_scheduler: MakeScheduler) -> None:
        pilots = [pilot("done", 64, State.Done), pilot("small", 1), pilot("unknown", None)]
        units = units_of(1, cores=4)

        assert dict(make_scheduler(0).place(units, pilots)) == {"u0": "unknown"}

    def test_unit_bigger_than_every_pilot_waits(self, make_scheduler: MakeScheduler) -> None:
        pilots = [pilot("p1", 4), pilot("p2", 8), pilot("gone", 64, State.Failed)]
        units = [UnitRequest("huge", cores=16), UnitRequest("tiny", cores=1)]

        placement = make_scheduler(0).place(units, pilots)

        check_placement(placement, units, pilots)
        assert placement["huge"] is None
        assert placement["tiny"] in {"p1", "p2"}

    def test_without_pilots_every_unit_waits(self, make_scheduler: MakeScheduler) -> None:
        units = units_of(5)
        final = [pilot("done", 8, State.Done), pilot("canceled", 8, State.Canceled)]

        assert dict(make_scheduler(0).place(units, [])) == dict.fromkeys(
            ["u0", "u1", "u2", "u3", "u4"]
        )
        assert dict(make_scheduler(0).place(units, final)) == dict.fromkeys(
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
            return [dict(scheduler.place(units, offered)) for units, offered in calls]

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

        placement = scheduler.place(units, pilots)

        check_placement(placement, units, pilots)
        load = Counter(placement.values())
        assert None not in load, "units were left waiting on idle pilots"
        fair_share = len(units) / len(pilots)
        assert max(load.values()) <= 2 * fair_share, f"load not spread: {dict(load)}"


class SchedulerAffinityTests(SchedulerFixtures):
    """Affinity labels are honoured (only for schedulers declaring ``"affinity"``)."""

    @pytest.fixture
    def labelled_pilots(self) -> list[PilotOffer]:
        return [
            labelled("plain", None, None),
            labelled("a1", "dc-a", "m1"),
            labelled("a2", "dc-a", "m2"),
            labelled("b3", "dc-b", "m3"),
        ]

    def _scheduler(self, make_scheduler: MakeScheduler) -> Scheduler:
        scheduler = make_scheduler(0)
        if "affinity" not in type(scheduler).capabilities:
            pytest.skip(f"{type(scheduler).__name__} does not declare capability 'affinity'")
        return scheduler

    def test_units_go_only_to_pilots_with_their_labels(
        self, make_scheduler: MakeScheduler, labelled_pilots: list[PilotOffer]
    ) -> None:
        scheduler = self._scheduler(make_scheduler)
        units = (
            [UnitRequest(f"m1-{i}", machine="m1") for i in range(5)]
            + [UnitRequest(f"m2a-{i}", machine="m2", datacenter="dc-a") for i in range(5)]
            + [UnitRequest(f"dca-{i}", datacenter="dc-a") for i in range(6)]
            + [UnitRequest(f"dcb-{i}", datacenter="dc-b") for i in range(3)]
        )

        placement = scheduler.place(units, labelled_pilots)

        check_placement(placement, units, labelled_pilots)
        for unit in units:
            if unit.machine == "m1":
                assert placement[unit.id] == "a1", unit
            elif unit.machine == "m2":
                assert placement[unit.id] == "a2", unit
            elif unit.datacenter == "dc-a":
                assert placement[unit.id] in {"a1", "a2"}, unit
            else:
                assert placement[unit.id] == "b3", unit

    def test_a_machine_label_implies_its_datacenter(
        self, make_scheduler: MakeScheduler, labelled_pilots: list[PilotOffer]
    ) -> None:
        scheduler = self._scheduler(make_scheduler)
        units = [
            UnitRequest("only-machine", machine="m3"),
            UnitRequest("both", datacenter="dc-b", machine="m3"),
        ]

        placement = scheduler.place(units, labelled_pilots)

        assert dict(placement) == {"only-machine": "b3", "both": "b3"}

    def test_units_without_labels_may_use_labelled_pilots(
        self, make_scheduler: MakeScheduler, labelled_pilots: list[PilotOffer]
    ) -> None:
        scheduler = self._scheduler(make_scheduler)
        pilots = labelled_pilots[1:]  # every pilot carries labels
        units = units_of(12)

        placement = scheduler.place(units, pilots)

        check_placement(placement, units, pilots)
        assert None not in placement.values(), "units without labels were left waiting"

    def test_a_unit_whose_labels_no_pilot_carries_waits_with_the_reason(
        self, make_scheduler: MakeScheduler, labelled_pilots: list[PilotOffer]
    ) -> None:
        scheduler = self._scheduler(make_scheduler)
        units = [
            UnitRequest("elsewhere", machine="m9"),
            UnitRequest("wrong-dc", datacenter="dc-b", machine="m1"),
            UnitRequest("free"),
        ]

        placement = scheduler.place(units, labelled_pilots)

        check_placement(placement, units, labelled_pilots)
        assert placement["elsewhere"] is None
        assert placement["wrong-dc"] is None
        assert placement["free"] is not None
        assert "m9" in scheduler.waiting_reason(units[0], labelled_pilots)
        assert "dc-b" in scheduler.waiting_reason(units[1], labelled_pilots)

    def test_a_unit_no_matching_pilot_can_hold_waits(
        self, make_scheduler: MakeScheduler, labelled_pilots: list[PilotOffer]
    ) -> None:
        scheduler = self._scheduler(make_scheduler)
        unit = UnitRequest("wide", cores=16, machine="m1")
        pilots = [*labelled_pilots, labelled("big", "dc-a", "m2", slots=64)]

        assert dict(scheduler.place([unit], pilots)) == {"wide": None}
        assert "m1" in scheduler.waiting_reason(unit, pilots)


class SchedulerSuite(
    SchedulerEntryTests,
    SchedulerFitTests,
    SchedulerDeterminismTests,
    SchedulerSpreadTests,
    SchedulerAffinityTests,
):
    """Every scheduler test; subclass it (as ``Test...``) and override ``scheduler_name``."""
