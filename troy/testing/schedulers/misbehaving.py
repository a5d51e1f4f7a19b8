"""What troy does when a scheduler breaks the contract: a SchedulerError that says how.

The manager, not the plugin, checks each result (`troy.core.placement`); these
tests break the scheduler under test on purpose, in each way the contract
names, and hold the manager to an error that names the scheduler and what was
wrong, so its author reads what to fix instead of a traceback from deep inside
placement.  Nothing is placed: `Placement.decide` writes nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from types import SimpleNamespace
from typing import Any, cast

import pytest

from troy.core.data_locator import DataLocator
from troy.core.dependencies import DependencyTracker
from troy.core.placement import Placement
from troy.model.description import PilotJobDescription, WorkUnitDescription
from troy.model.errors import SchedulerError
from troy.model.states import State
from troy.plugins.schedulers.base import PilotOffer, Scheduler, UnitRequest
from troy.testing.schedulers.base import SchedulerFixtures, check_mapping

#: Turns the scheduler's own result (and what it was given) into a broken one.
Fault = Callable[[Mapping[str, str | None], Sequence[UnitRequest], Sequence[PilotOffer]], Any]


def _raise(result: Any, units: Any, pilots: Any) -> Any:
    raise RuntimeError("broken on purpose")


#: How the scheduler breaks, and words the SchedulerError must hold.
BREAKAGES: dict[str, tuple[Fault, str]] = {
    "returns a list": (lambda r, u, p: list(r.items()), "returned list, not a mapping"),
    "unknown pilot": (
        lambda r, u, p: dict.fromkeys(r, "no-such-pilot"),
        "on unknown pilot 'no-such-pilot'",
    ),
    "unit not given": (
        lambda r, u, p: {**r, "ghost": p[0].id},
        "placed unit 'ghost', which it was not offered",
    ),
    "pilot not a str": (lambda r, u, p: dict.fromkeys(r, 7), "gave int 7 for unit"),
    "pilot too small": (
        lambda r, u, p: dict.fromkeys(r, "small"),
        "(4 slots) on pilot small, which cannot hold it",
    ),
    "raises": (_raise, "failed: RuntimeError: broken on purpose"),
}


def broken(scheduler_class: type[Scheduler], breakage: str) -> type[Scheduler]:
    """A subclass of ``scheduler_class`` (same name) whose results break as ``breakage`` says."""
    fault = BREAKAGES[breakage][0]

    def place(self: Scheduler, units: Sequence[UnitRequest], pilots: Sequence[PilotOffer]) -> Any:
        result = scheduler_class.place(self, units, pilots)
        check_mapping(result, scheduler_class)  # else there is nothing to break: say so
        return fault(result, units, pilots)

    made = type(f"Broken{scheduler_class.__name__}", (scheduler_class,), {"place": place})
    return cast("type[Scheduler]", made)


def placement_for(scheduler: Scheduler) -> Placement:
    """A Placement of service ``wus-suite`` over two pilots (1 and 8 slots), with no I/O."""
    pilots = [
        SimpleNamespace(
            id=pilot_id,
            state=State.Running,
            canceling=False,
            slots=slots,
            description=PilotJobDescription({"number_of_processes": slots}),
            queue=f"queue/{pilot_id}",
        )
        for pilot_id, slots in (("small", 1), ("big", 8))
    ]
    return Placement(
        "wus-suite",
        cast(Any, None),  # decide() writes nothing: no coordination needed
        scheduler,
        {},
        threading.RLock(),
        lambda: cast(Any, pilots),
        lambda events: None,
        DependencyTracker(),
        DataLocator(cast(Any, None)),
    )


def new_units(count: int, cores: int, first: int = 0) -> list[Any]:
    """Units ``wus-suite.<first>``, ... as a manager tracks them: New, needing ``cores`` slots."""
    return [
        SimpleNamespace(
            id=f"wus-suite.{index}",
            state=State.New,
            state_detail="",
            attempt=0,
            tries=[],
            pilot=None,
            description=WorkUnitDescription({"executable": "/bin/true", "cores": cores}),
        )
        for index in range(first, first + count)
    ]


class SchedulerErrorTests(SchedulerFixtures):
    """A scheduler that breaks the contract gets a SchedulerError naming it and the fault."""

    @pytest.mark.parametrize("breakage", sorted(BREAKAGES))
    def test_a_broken_result_is_reported_naming_the_scheduler(
        self, scheduler_class: type[Scheduler], breakage: str
    ) -> None:
        words = BREAKAGES[breakage][1]
        placement = placement_for(broken(scheduler_class, breakage)(seed=0))
        units = new_units(3, cores=4)

        with pytest.raises(SchedulerError) as error:
            placement.decide(units)

        message = str(error.value)
        assert message.startswith(f"scheduler '{scheduler_class.name}' "), message
        assert words in message, message
        assert all(unit.state == State.New for unit in units)

    def test_the_scheduler_itself_passes_those_checks(
        self, scheduler_class: type[Scheduler]
    ) -> None:
        placement = placement_for(scheduler_class(seed=0))
        units = new_units(3, cores=4) + new_units(2, cores=1, first=3)

        decided, by_pilot = placement.decide(units)

        assert set(decided) <= {unit.id for unit in units}
        on_small = {item["id"] for item in by_pilot.get("small", [])}
        assert not on_small & {unit.id for unit in units[:3]}
