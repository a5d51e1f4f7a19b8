"""Affinity labels are honoured (only for schedulers declaring ``"affinity"``)."""

from __future__ import annotations

import pytest

from troy.plugins.schedulers.base import PilotOffer, Scheduler, UnitRequest
from troy.testing.schedulers.base import (
    MakeScheduler,
    SchedulerFixtures,
    check_placement,
    labelled,
    placement_of,
    require_capability,
    units_of,
)


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
        require_capability(scheduler, "affinity")
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

        placement = placement_of(scheduler, units, labelled_pilots)

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

        placement = placement_of(scheduler, units, labelled_pilots)

        assert dict(placement) == {"only-machine": "b3", "both": "b3"}

    def test_units_without_labels_may_use_labelled_pilots(
        self, make_scheduler: MakeScheduler, labelled_pilots: list[PilotOffer]
    ) -> None:
        scheduler = self._scheduler(make_scheduler)
        pilots = labelled_pilots[1:]  # every pilot carries labels
        units = units_of(12)

        placement = placement_of(scheduler, units, pilots)

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

        placement = placement_of(scheduler, units, labelled_pilots)

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

        assert placement_of(scheduler, [unit], pilots) == {"wide": None}
        assert "m1" in scheduler.waiting_reason(unit, pilots)
