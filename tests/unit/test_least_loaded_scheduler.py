"""What is special about the least_loaded scheduler: the least load per slot, exactly."""

from collections import Counter

from troy.model.states import State
from troy.plugins import registry
from troy.plugins.schedulers.base import PilotOffer, UnitRequest
from troy.plugins.schedulers.least_loaded import LeastLoadedScheduler
from troy.testing.schedulers import pilot, units_of


def place(units: list[UnitRequest], pilots: list[PilotOffer]) -> dict[str, str | None]:
    return dict(LeastLoadedScheduler().place(units, pilots))


def test_it_is_the_registered_least_loaded_scheduler() -> None:
    assert registry.load("scheduler", "least_loaded") is LeastLoadedScheduler
    assert LeastLoadedScheduler.capabilities == frozenset()


def test_units_go_in_proportion_to_the_slots() -> None:
    pilots = [pilot("one-slot", 1), pilot("three-slots", 3)]

    assert Counter(place(units_of(40), pilots).values()) == {"one-slot": 10, "three-slots": 30}


def test_queued_and_running_units_count_as_load() -> None:
    pilots = [
        PilotOffer("busy", State.Running, 4, queued=1, running=2, busy=2),  # 3/4
        PilotOffer("queued", State.Running, 2, queued=1),  # 1/2
        PilotOffer("idle", State.Running, 8),  # 0/8
    ]

    # idle 0 -> 1/8 -> 2/8 -> 3/8 -> 4/8; then queued (1/2) comes first on the tie.
    assert list(place(units_of(6), pilots).values()) == [
        "idle", "idle", "idle", "idle", "queued", "idle"
    ]  # fmt: skip


def test_ties_go_to_the_pilot_offered_first() -> None:
    pilots = [pilot("b", 2), pilot("a", 4)]

    # 0/2 = 0/4, then 1/2 > 0/4, then 1/2 = 2/4 ...
    assert list(place(units_of(4), pilots).values()) == ["b", "a", "a", "b"]


def test_a_pilot_that_cannot_hold_the_unit_is_passed_over() -> None:
    pilots = [pilot("small", 2), pilot("big", 8, State.Pending), pilot("gone", 64, State.Done)]
    units = [UnitRequest("wide", cores=4), UnitRequest("huge", cores=16), UnitRequest("one")]

    assert place(units, pilots) == {"wide": "big", "huge": None, "one": "small"}


def test_a_pilot_of_unknown_size_counts_as_one_slot() -> None:
    pilots = [pilot("unknown", None, State.Pending), pilot("four", 4)]

    # unknown: 0/1 then 1/1; four: 0/4 ... 4/4, then unknown (1/1) first on the tie.
    assert Counter(place(units_of(6), pilots).values()) == {"unknown": 2, "four": 4}
