"""What is special about shortest_first: shortest estimate first, only into open slots."""

from troy.model.states import State
from troy.plugins import registry
from troy.plugins.schedulers.base import PilotOffer, UnitRequest
from troy.plugins.schedulers.shortest_first import ShortestFirstScheduler, shortest_key
from troy.testing.schedulers import pilot, units_of


def runs(unit_id: str, seconds: float, order: int = 0, cores: int = 1) -> UnitRequest:
    return UnitRequest(unit_id, cores=cores, hints={"runtime": seconds}, order=order)


def test_it_is_the_registered_shortest_first_scheduler() -> None:
    assert registry.load("scheduler", "shortest_first") is ShortestFirstScheduler


def test_units_are_ranked_by_runtime_then_wall_time_then_cpu_time_then_order() -> None:
    units = [
        UnitRequest("nothing-late", order=9),
        UnitRequest("nothing-early", order=1),
        UnitRequest("cpu-100", total_cpu_time=100, order=2),
        UnitRequest("cpu-5", total_cpu_time=5, order=3),
        UnitRequest("wall-1min", wall_time_limit=1, order=4),  # 60 s
        runs("hint-90", 90, order=5),
        UnitRequest("hint-60-cpu-1", hints={"runtime": 60}, total_cpu_time=1, order=6),
        runs("hint-2", 2, order=7),
        UnitRequest("hint-wins", hints={"runtime": 1}, wall_time_limit=100, order=8),
    ]

    ranked = [unit.id for unit in sorted(units, key=shortest_key)]

    assert ranked == [
        "hint-wins", "hint-2", "hint-60-cpu-1", "wall-1min", "hint-90",
        "cpu-5", "cpu-100", "nothing-early", "nothing-late",
    ]  # fmt: skip


def test_only_as_many_as_fit_in_open_slots_are_placed_shortest_first() -> None:
    pilots = [
        PilotOffer("p1", State.Running, 4, running=2, busy=2, queued=1),  # 4 - 2 - 1 = 1 open
        PilotOffer("p2", State.Running, 2),  # 2 open
    ]
    units = [runs("long", 50), runs("short", 1), runs("mid", 10), runs("longer", 60)]

    placement = ShortestFirstScheduler().place(units, pilots)

    # In rank order; the most open pilot first (p2 2, then p1 1 = p2 1: p1 offered first).
    assert list(placement.items()) == [
        ("short", "p2"), ("mid", "p1"), ("long", "p2"), ("longer", None)
    ]  # fmt: skip


def test_a_shorter_unit_arriving_later_overtakes_the_waiting_ones() -> None:
    scheduler = ShortestFirstScheduler()
    busy = [PilotOffer("p", State.Running, 1, running=1, busy=1)]
    idle = [pilot("p", 1)]

    waiting = [runs("long", 30, order=0), runs("mid", 20, order=1)]
    assert scheduler.place(waiting, busy) == {"long": None, "mid": None}
    arrived = [*waiting, runs("short", 5, order=2)]
    assert scheduler.place(arrived, busy) == {"mid": None, "short": None, "long": None}
    # The slot frees: the shortest of all that wait starts, not the first submitted.
    assert scheduler.place(arrived, idle) == {"short": "p", "mid": None, "long": None}


def test_a_wide_unit_that_does_not_fit_does_not_hold_back_a_narrow_one() -> None:
    pilots = [pilot("p", 2)]
    units = [runs("wide-short", 1, cores=4), runs("narrow-long", 100)]

    assert ShortestFirstScheduler().place(units, pilots) == {
        "wide-short": None,
        "narrow-long": "p",
    }


def test_queued_units_count_with_the_cores_it_gave_them() -> None:
    scheduler = ShortestFirstScheduler()
    assert scheduler.place([runs("wide", 5, cores=3)], [pilot("p", 4)]) == {"wide": "p"}

    # Still queued: 4 free less its 3 cores leave one open slot (not 3, as 1 per unit would).
    queued = [PilotOffer("p", State.Running, 4, queued=1)]
    assert list(scheduler.place(units_of(3), queued).values()) == ["p", None, None]
    # Once it runs (3 busy) and the one placed last is queued: 4 - 3 - 1 = 0 open.
    running = [PilotOffer("p", State.Running, 4, queued=1, running=1, busy=3)]
    assert list(scheduler.place(units_of(2, prefix="v"), running).values()) == [None, None]


def test_queued_units_it_did_not_place_count_as_one_slot_each() -> None:
    queued = [PilotOffer("p", State.Running, 4, queued=2)]

    assert list(ShortestFirstScheduler().place(units_of(3), queued).values()) == [
        "p", "p", None
    ]  # fmt: skip


def test_an_idle_pilot_of_unknown_size_takes_one_unit() -> None:
    pilots = [pilot("unknown", None, State.Pending)]
    busy_unknown = [PilotOffer("unknown", State.Pending, None, queued=1)]

    assert list(ShortestFirstScheduler().place(units_of(2, cores=4), pilots).values()) == [
        "unknown", None
    ]  # fmt: skip
    assert ShortestFirstScheduler().place(units_of(1), busy_unknown) == {"u0": None}


def test_the_waiting_reason_says_it_waits_for_open_slots() -> None:
    unit = runs("u", 3)
    busy = [PilotOffer("p", State.Running, 1, running=1, busy=1)]

    assert "open slot" in ShortestFirstScheduler().waiting_reason(unit, busy)
