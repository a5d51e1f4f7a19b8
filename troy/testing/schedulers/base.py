"""The fixtures base of the scheduler suite, and the helpers its test mixins share."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest

from troy.model.states import State
from troy.plugins import registry
from troy.plugins.schedulers.base import PilotOffer, Scheduler, UnitRequest
from troy.testing.overrides import fixture_needed

#: Makes a fresh scheduler instance with the given seed.
MakeScheduler = Callable[[int | None], Scheduler]


def units_of(count: int, cores: int = 1, prefix: str = "u") -> list[UnitRequest]:
    """``count`` units of ``cores`` cores each, with ids ``<prefix>0``, ``<prefix>1``, ..."""
    return [UnitRequest(f"{prefix}{index}", cores=cores, order=index) for index in range(count)]


def pilot(pilot_id: str, slots: int | None = 8, state: State = State.Running) -> PilotOffer:
    """A pilot offer with nothing queued."""
    return PilotOffer(pilot_id, state, slots=slots)


def labelled(
    pilot_id: str, datacenter: str | None, machine: str | None, slots: int | None = 8
) -> PilotOffer:
    """A running pilot offer with affinity labels and nothing queued."""
    return PilotOffer(pilot_id, State.Running, slots=slots, datacenter=datacenter, machine=machine)


def name_of(scheduler: Scheduler | type[Scheduler]) -> str:
    """The scheduler's entry-point name (its class name if it sets none), for messages."""
    cls = scheduler if isinstance(scheduler, type) else type(scheduler)
    return str(getattr(cls, "name", cls.__name__))


def placement_of(
    scheduler: Scheduler,
    units: Sequence[UnitRequest],
    pilots: Sequence[PilotOffer],
    situation: str = "",
) -> dict[str, str | None]:
    """``scheduler.place(units, pilots)`` as a dict in the mapping's order, its types checked.

    A scheduler that raises, returns no mapping, or gives a pilot that is no str
    fails the test with a message naming the scheduler and what was wrong;
    ``situation`` (e.g. "for a unit reading data") says what the call was about.
    """
    during = f" {situation}" if situation else ""
    try:
        result = scheduler.place(units, pilots)
    except Exception as exc:
        raise AssertionError(
            f"scheduler {name_of(scheduler)!r} raised {type(exc).__name__}: {exc} in "
            f"place(){during}"
        ) from exc
    check_mapping(result, scheduler)
    return dict(result)


def check_mapping(result: object, scheduler: Scheduler | type[Scheduler]) -> None:
    """Assert ``result`` is what ``place`` returns: a mapping of unit id to pilot id or None."""
    name = name_of(scheduler)
    assert isinstance(result, Mapping), (
        f"scheduler {name!r}'s place returned {type(result).__name__}, expected a mapping "
        "of unit id to pilot id or None (e.g. a dict; its order is the start order)"
    )
    for unit_id, pilot_id in result.items():
        assert pilot_id is None or isinstance(pilot_id, str), (
            f"scheduler {name!r}'s place gave {type(pilot_id).__name__} {pilot_id!r} for "
            f"unit {unit_id!r}, expected a pilot id (str) or None"
        )


def check_placement(
    placement: Mapping[str, str | None],
    units: Sequence[UnitRequest],
    pilots: Sequence[PilotOffer],
) -> None:
    """Assert the contract: one entry per unit, each None or a pilot that can hold the unit."""
    assert isinstance(placement, Mapping), (
        f"place returned {type(placement).__name__}, expected a mapping of unit id to "
        "pilot id or None"
    )
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


def order_per_pilot(placement: Mapping[str, str | None]) -> dict[str, list[str]]:
    """For each pilot chosen, its units in the order they will start there (the mapping's)."""
    order: dict[str, list[str]] = {}
    for unit_id, pilot_id in placement.items():
        if pilot_id is not None:
            order.setdefault(pilot_id, []).append(unit_id)
    return order


def require_capability(scheduler: Scheduler | type[Scheduler], capability: str) -> None:
    """Skips the test, saying why, unless the scheduler declares ``capability``."""
    cls = scheduler if isinstance(scheduler, type) else type(scheduler)
    if capability not in cls.capabilities:
        pytest.skip(f"{cls.__name__} does not declare capability {capability!r}")


class SchedulerFixtures:
    """Fixtures of the scheduler suite; a subclass must override ``scheduler_name``."""

    @pytest.fixture
    def scheduler_name(self) -> str:
        """The entry-point name of the scheduler under test; override this."""
        fixture_needed(
            "SchedulerSuite",
            "scheduler_name",
            "the entry-point name of your scheduler in group 'troy.schedulers' "
            "(the package must be installed)",
            '"my_scheduler"',
        )

    @pytest.fixture
    def scheduler_class(self, scheduler_name: str) -> type[Scheduler]:
        """The scheduler's class, loaded by name through the registry as troy loads it."""
        plugin: type[Scheduler] = registry.load("scheduler", scheduler_name)
        return plugin

    @pytest.fixture
    def scheduler_options(self) -> dict[str, Any]:
        """Options the scheduler is made with (override to run the suite with others)."""
        return {}

    @pytest.fixture
    def make_scheduler(
        self, scheduler_class: type[Scheduler], scheduler_options: dict[str, Any]
    ) -> MakeScheduler:
        """Makes fresh instances of the scheduler (with ``scheduler_options``) and a given seed."""

        def make(seed: int | None = 0) -> Scheduler:
            return scheduler_class(seed=seed, **scheduler_options)

        return make


def waiting_without_room(
    placement: Mapping[str, str | None],
    units: Sequence[UnitRequest],
    pilots: Sequence[PilotOffer],
) -> list[str]:
    """Units left waiting although some live pilot that fits them still had room after the call.

    The progress convention: a unit may wait only while no pilot that can hold
    it has room. A pilot's room is its free slots less one slot per unit
    queued on it and less the slots this call gave it; a pilot of unknown size
    has room for one unit while nothing is queued, running or placed on it.
    A just-in-time strategy, which fills only the room there is, passes.
    """
    cores = {unit.id: unit.cores for unit in units}
    given: dict[str, int] = {}
    for unit_id, pilot_id in placement.items():
        if pilot_id is not None:
            given[pilot_id] = given.get(pilot_id, 0) + cores.get(unit_id, 1)

    def room(offer: PilotOffer) -> float:
        if offer.slots is None:
            empty = offer.load == 0 and offer.id not in given
            return float("inf") if empty else 0
        return (offer.free or 0) - offer.queued - given.get(offer.id, 0)

    return [
        unit.id
        for unit in units
        if placement.get(unit.id) is None
        and any(o.can_hold(unit.cores) and room(o) >= unit.cores for o in pilots)
    ]
