"""What is special about the round_robin scheduler: an exact cycle that survives calls."""

from collections.abc import Sequence

from troy.model.states import State
from troy.plugins import registry
from troy.plugins.schedulers.base import PilotOffer, UnitRequest
from troy.plugins.schedulers.round_robin import RoundRobinScheduler
from troy.testing.schedulers import pilot, units_of


def _one_at_a_time(
    scheduler: RoundRobinScheduler, units: Sequence[UnitRequest], pilots: Sequence[PilotOffer]
) -> dict[str, str | None]:
    placement: dict[str, str | None] = {}
    for unit in units:
        placement.update(scheduler.place([unit], pilots))
    return placement


def test_it_is_the_registered_round_robin_scheduler() -> None:
    assert registry.load("scheduler", "round_robin") is RoundRobinScheduler
    assert "packing" not in RoundRobinScheduler.capabilities


def test_units_are_dealt_in_the_order_pilots_are_offered() -> None:
    pilots = [pilot("a"), pilot("b"), pilot("c")]

    placement = RoundRobinScheduler().place(units_of(7), pilots)

    assert list(placement.values()) == ["a", "b", "c", "a", "b", "c", "a"]


def test_the_cycle_continues_across_calls() -> None:
    scheduler = RoundRobinScheduler()
    pilots = [pilot("a"), pilot("b"), pilot("c")]

    first = scheduler.place(units_of(2, prefix="x"), pilots)
    second = scheduler.place(units_of(4, prefix="y"), pilots)

    assert list(first.values()) == ["a", "b"]
    assert list(second.values()) == ["c", "a", "b", "c"]


def test_one_unit_per_call_spreads_like_one_bulk_call() -> None:
    pilots = [pilot("a", 2), pilot("b", 8), pilot("c", 16, State.Pending), pilot("d", 1)]
    units = [UnitRequest(f"u{i}", cores=(1, 4, 2, 99, 1, 8)[i % 6]) for i in range(60)]

    bulk = RoundRobinScheduler().place(units, pilots)
    single = _one_at_a_time(RoundRobinScheduler(), units, pilots)

    assert single == bulk
    assert set(bulk.values()) == {"a", "b", "c", "d", None}


def test_pilots_that_cannot_hold_a_unit_are_skipped_for_that_unit_only() -> None:
    pilots = [pilot("a", 2), pilot("b", 8), pilot("c", 2), pilot("x", 64, State.Done)]
    units = [UnitRequest(f"u{i}", cores=cores) for i, cores in enumerate([1, 4, 1, 1, 4, 1])]

    placement = RoundRobinScheduler().place(units, pilots)

    assert list(placement.values()) == ["a", "b", "c", "a", "b", "c"]


def test_a_unit_left_waiting_does_not_move_the_cycle() -> None:
    pilots = [pilot("a", 4), pilot("b", 4)]
    units = [UnitRequest("u0"), UnitRequest("huge", cores=5), UnitRequest("u1")]

    assert RoundRobinScheduler().place(units, pilots) == {"u0": "a", "huge": None, "u1": "b"}


def test_the_cycle_resumes_after_the_last_pilot_when_pilots_are_added() -> None:
    scheduler = RoundRobinScheduler()
    scheduler.place(units_of(1, prefix="x"), [pilot("a"), pilot("b")])

    placement = scheduler.place(units_of(4), [pilot("new"), pilot("a"), pilot("b")])

    assert list(placement.values()) == ["b", "new", "a", "b"]


def test_the_cycle_resumes_at_the_next_remaining_pilot_when_the_last_one_is_gone() -> None:
    scheduler = RoundRobinScheduler()
    scheduler.place(units_of(2, prefix="x"), [pilot("a"), pilot("b"), pilot("c"), pilot("d")])

    placement = scheduler.place(units_of(3), [pilot("a"), pilot("d")])

    assert list(placement.values()) == ["d", "a", "d"]


def test_the_seed_does_not_matter() -> None:
    pilots = [pilot("a"), pilot("b"), pilot("c")]
    units = units_of(10)

    assert RoundRobinScheduler(seed=1).place(units, pilots) == RoundRobinScheduler(seed=2).place(
        units, pilots
    )
