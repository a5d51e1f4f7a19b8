"""What is special about backfill: EASY backfilling behind a reservation for the first in line."""

from troy.model.states import State
from troy.plugins import registry
from troy.plugins.schedulers.backfill import BackfillScheduler
from troy.plugins.schedulers.base import PilotOffer, UnitRequest
from troy.testing.schedulers import pilot, units_of


class Clock:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def unit(unit_id: str, order: int, cores: int = 1, seconds: float | None = None) -> UnitRequest:
    hints = {} if seconds is None else {"runtime": seconds}
    return UnitRequest(unit_id, cores=cores, hints=hints, order=order)


def running(pilot_id: str, slots: int, busy: int) -> PilotOffer:
    """A pilot with one unit of ``busy`` slots running."""
    return PilotOffer(pilot_id, State.Running, slots, running=1, busy=busy)


def started(clock: Clock, *placed: tuple[str, int, float]) -> BackfillScheduler:
    """A scheduler that placed, at time 0, one unit per (pilot, slots, seconds); now it is 10."""
    scheduler = BackfillScheduler(clock=clock)
    for index, (pilot_id, slots, seconds) in enumerate(placed):
        first = unit(f"first-{index}", -1, slots, seconds)
        assert scheduler.place([first], [pilot(pilot_id, slots)]) == {first.id: pilot_id}
    clock.now = 10.0
    return scheduler


def test_it_is_the_registered_backfill_scheduler() -> None:
    assert registry.load("scheduler", "backfill") is BackfillScheduler


def test_while_units_fit_they_start_first_come_first_served() -> None:
    units = [unit("c", 2), unit("a", 0), unit("b", 1)]

    placement = BackfillScheduler(clock=Clock()).place(units, [pilot("p", 2)])

    assert list(placement.items()) == [("a", "p"), ("b", "p"), ("c", None)]


def test_a_later_unit_starts_only_if_it_ends_before_the_reservation() -> None:
    clock = Clock()
    scheduler = started(clock, ("p", 3, 100.0))  # 3 of 4 slots busy until 100
    units = [
        unit("head", 0, cores=4, seconds=5),
        unit("too-long", 1, seconds=200),
        unit("unknown", 2),
        unit("short", 3, seconds=50),
    ]

    placement = scheduler.place(units, [running("p", 4, busy=3)])

    assert placement == {"head": None, "too-long": None, "unknown": None, "short": "p"}
    assert scheduler.reservation is not None
    assert (scheduler.reservation.unit, scheduler.reservation.at) == ("head", 100.0)


def test_a_later_unit_may_use_the_slots_the_head_leaves_over() -> None:
    clock = Clock()
    scheduler = started(clock, ("p", 4, 100.0))  # 4 of 8 busy until 100; the head needs 6
    units = [
        unit("head", 0, cores=6, seconds=5),
        unit("one", 1),  # no estimate, but fits in the 2 extra slots
        unit("two", 2, cores=2),  # one extra slot is left: too wide
        unit("another", 3, seconds=500),
    ]

    placement = scheduler.place(units, [running("p", 8, busy=4)])

    assert placement == {"head": None, "one": "p", "two": None, "another": "p"}


def test_units_without_an_estimate_are_never_backfilled_past_the_reservation() -> None:
    clock = Clock()
    scheduler = started(clock, ("p", 1, 100.0))

    placement = scheduler.place(
        [unit("head", 0, cores=2), unit("forever", 1)], [running("p", 2, busy=1)]
    )

    assert placement == {"head": None, "forever": None}


def test_other_pilots_are_free_to_use() -> None:
    clock = Clock()
    scheduler = started(clock, ("p", 4, 100.0))
    pilots = [running("p", 4, busy=4), pilot("q", 2)]

    placement = scheduler.place([unit("head", 0, cores=4), unit("forever", 1)], pilots)

    assert placement == {"head": None, "forever": "q"}


def test_the_reservation_is_on_the_pilot_that_frees_first() -> None:
    clock = Clock()
    scheduler = started(clock, ("p", 4, 100.0), ("q", 4, 30.0))
    pilots = [running("p", 4, busy=4), running("q", 4, busy=4)]

    assert scheduler.place([unit("head", 0, cores=2)], pilots) == {"head": None}
    assert scheduler.reservation is not None
    assert (scheduler.reservation.pilot, scheduler.reservation.at) == (1, 30.0)


def test_it_asks_to_be_called_at_the_reservation() -> None:
    clock = Clock()
    scheduler = started(clock, ("p", 4, 100.0))
    busy = [running("p", 4, busy=4)]

    assert scheduler.next_call() is None
    scheduler.place([unit("head", 0)], busy)
    assert scheduler.next_call() == 90.0
    clock.now = 60.0
    assert scheduler.next_call() == 40.0
    # Past its estimate the unit still runs: it is taken to end any moment, so no timer.
    clock.now = 120.0
    scheduler.place([unit("head", 0)], busy)
    assert scheduler.next_call() is None


def test_slots_it_did_not_place_are_taken_to_free_up_now() -> None:
    # 3 of 4 slots busy with a unit it knows nothing of: the head (2) could start as soon
    # as they free, so the reservation is now, and only the extra slots can be used.
    scheduler = BackfillScheduler(clock=Clock())
    units = [unit("head", 0, cores=2), unit("short", 1, seconds=1), unit("next", 2, seconds=1)]

    placement = scheduler.place(units, [running("p", 4, busy=3)])

    assert placement == {"head": None, "short": "p", "next": None}
    assert scheduler.next_call() is None


def test_a_unit_no_pilot_can_hold_holds_back_nothing() -> None:
    scheduler = BackfillScheduler(clock=Clock())
    units = [unit("huge", 0, cores=99), *units_of(2)]

    assert scheduler.place(units, [pilot("p", 2)]) == {"huge": None, "u0": "p", "u1": "p"}
    assert scheduler.reservation is None
