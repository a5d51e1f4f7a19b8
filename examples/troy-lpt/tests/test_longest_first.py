"""What is special about longest_first: longest units first, spread by expected work."""

from troy import State
from troy.plugins import registry
from troy.plugins.schedulers.base import PilotOffer, Scheduler, UnitRequest


def make(**options: float) -> Scheduler:
    plugin: type[Scheduler] = registry.load("scheduler", "longest_first")
    return plugin(seed=0, **options)


def unit(unit_id: str, runtime: float | None, order: int) -> UnitRequest:
    hints = {} if runtime is None else {"runtime": runtime}
    return UnitRequest(unit_id, hints=hints, order=order)


def test_longest_units_start_first_on_a_pilot() -> None:
    units = [unit("short", 1, 0), unit("long", 100, 1), unit("unknown", None, 2)]

    placement = make(default_runtime=10).place(units, [PilotOffer("p", State.Running, slots=1)])

    assert list(placement.items()) == [("long", "p"), ("unknown", "p"), ("short", "p")]


def test_work_per_slot_decides_the_pilot() -> None:
    pilots = [PilotOffer("one", State.Running, slots=1), PilotOffer("four", State.Running, slots=4)]
    units = [unit(f"u{n}", 10, n) for n in range(5)]

    placement = make().place(units, pilots)

    # Ten seconds each: the 4-slot pilot takes four before the 1-slot one's second.
    assert list(placement.values()).count("four") == 4
    assert list(placement.values()).count("one") == 1
