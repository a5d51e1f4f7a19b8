"""The scheduler contract, version 2.0: placement of work units on pilots, driven by events.

A scheduler sees plain values, never services or I/O, so strategies can be
compared offline and at scale (the same plugin class drives a real run and a
simulation), and the same seed gives the same placement.

When `place` is called
    The unit manager calls it when units arrive (``submit``), when a unit
    ends (its slots are free again), when a pilot changes (starts, ends, is
    canceled, learns its size), and when the time `next_call` asked for has
    come.  Each call offers every unit that waits to be placed (New), in the
    order it came to wait, and every live pilot.  A scheduler may leave any
    unit waiting (None) and place it in a later call: a *just-in-time*
    strategy places units only into free slots (`PilotOffer.free`).

Order
    The units one call places on a pilot start there in the order of the
    returned mapping, after those placed on it by earlier calls.  To decide
    the order later, leave units waiting and place them just in time.

Rebalancing
    A scheduler with the capability ``"rebalance"`` is also offered the units
    queued on a pilot that have not started (`UnitRequest.queued_on` names
    that pilot).  Returning another pilot for such a unit moves it there: the
    manager withdraws it from the first pilot's queue, atomically against the
    agent's claim, so a unit an agent claimed meanwhile stays where it is and
    never runs twice.  None, or the same pilot, leaves it where it is.

Options
    A scheduler declares the options it takes in ``option_specs``; the manager
    checks the user's ``scheduler_options`` against them (an unknown or wrong
    one is a BadDescription naming it) and passes them to the constructor as
    keywords, with ``seed`` always accepted.  They are recorded with the
    service.

What the manager checks
    The result must be a mapping whose keys are ids of units given, and whose
    values are None or the id of an offered pilot that can hold the unit.
    Anything else, or an exception from `place`, is a SchedulerError naming
    the scheduler and what was wrong; nothing of that call is recorded.

Walking order (optional)
    A scheduler that looks at the units in an order of its own says so in
    `Scheduler.unit_order` (a sort key).  A caller that keeps its waiting
    units sorted by that key may hand them as `SortedUnits`, which yields them
    in that order one at a time; a scheduler that walks them with `in_order`
    and stops once nothing more can be placed then pays only for the units it
    looked at, not for every unit that waits (the simulator does this).  The
    result is the same as for a plain list of the same units.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar

from troy.model.states import State
from troy.plugins import options as plugin_options
from troy.plugins.options import Check as Check
from troy.plugins.options import Option as Option
from troy.plugins.options import choice as choice
from troy.plugins.options import number as number

#: The version of this contract, MAJOR.MINOR; a scheduler says which it was written for in
#: ``contract_version`` (an int, as schedulers wrote it before 2.0, counts as MAJOR.0).
#: A new MAJOR breaks older schedulers; a new MINOR only adds, with defaults.
CONTRACT_VERSION = "2.1"
#: What each version changed (the registry quotes it when a scheduler's version does not fit).
CONTRACT_CHANGES: dict[str, str] = {
    "1.0": "place(units, pilots) with the first UnitRequest and PilotOffer; __init__() bare",
    "2.0": "place is called on events (units arrive, a unit ends, a pilot changes, next_call); "
    "UnitRequest gained wall_time_limit, total_cpu_time, hints, order, queued_on and PilotOffer "
    "running, busy, free, hints; options are declared in option_specs and passed to "
    "__init__(seed=None, **options)",
    "2.1": "unit_order, SortedUnits and in_order: an optional walking order (default: none)",
}

#: An empty, read-only mapping: the default ``hints``.
NO_HINTS: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Replica:
    """Where one copy of a data unit lives: its Pilot-Data and that store's labels."""

    pilot_data: str
    datacenter: str | None = None
    machine: str | None = None


@dataclass(frozen=True, slots=True)
class DataInput:
    """A data unit a unit reads, as far as the manager knows: its size and its copies."""

    url: str
    #: Total bytes of its files (0 while unknown or empty).
    size: int = 0
    replicas: tuple[Replica, ...] = ()


@dataclass(frozen=True, slots=True)
class UnitRequest:
    """What a unit asks of a pilot, and what a strategy may rank it by."""

    id: str
    #: Slots it needs (a ranged unit: its minimum).
    cores: int = 1
    datacenter: str | None = None
    machine: str | None = None
    #: Data-unit URLs the unit reads (for data-aware strategies).
    input_data: tuple[str, ...] = ()
    #: The same data units with sizes and replica locations (unknown URLs are left out).
    inputs: tuple[DataInput, ...] = ()
    #: Its description's ``wall_time_limit`` (minutes) and ``total_cpu_time``, if given.
    wall_time_limit: float | None = None
    total_cpu_time: float | None = None
    #: Its description's ``hints``: free-form JSON values, e.g. {"runtime": 3.2} (seconds).
    hints: Mapping[str, Any] = field(default_factory=lambda: NO_HINTS, compare=False)
    #: Its place in submission order within the service (0, 1, 2, ...).
    order: int = 0
    #: The pilot it is queued on and has not started on (rebalancing only), else None.
    queued_on: str | None = None

    def estimate(self) -> float | None:
        """Its expected run time in seconds: ``hints.runtime``, else the wall time limit.

        None when neither is given (``total_cpu_time`` is CPU seconds, not a duration).
        """
        runtime = self.hints.get("runtime")
        if isinstance(runtime, int | float) and not isinstance(runtime, bool) and runtime >= 0:
            return float(runtime)
        if self.wall_time_limit is not None:
            return self.wall_time_limit * 60.0
        return None


@dataclass(frozen=True, slots=True)
class PilotOffer:
    """What a pilot offers, as far as the manager knows now."""

    id: str
    state: State
    #: Total slots; None while unknown (agent not up, no number_of_processes given).
    slots: int | None = None
    #: Units placed on it that have not started (in its queue, or claimed and starting).
    queued: int = 0
    datacenter: str | None = None
    machine: str | None = None
    #: Units running on it now, and the slots they take.
    running: int = 0
    busy: int = 0
    #: The pilot description's ``hints``, e.g. {"speed": 2.0}.
    hints: Mapping[str, Any] = field(default_factory=lambda: NO_HINTS, compare=False)

    @property
    def free(self) -> int | None:
        """Slots not taken by running units (None while the size is unknown)."""
        return None if self.slots is None else max(0, self.slots - self.busy)

    @property
    def load(self) -> int:
        """Units on it that have not ended: queued and running."""
        return self.queued + self.running

    def can_hold(self, cores: int) -> bool:
        """True if the pilot is not final and is (or may be) large enough."""
        return not self.state.is_final and (self.slots is None or self.slots >= cores)


#: A sort key for units (see `Scheduler.unit_order`).
UnitKey = Callable[[UnitRequest], Any]


class SortedUnits(Sequence[UnitRequest], ABC):
    """The units of one call, kept by the caller sorted by ``key``: iterating yields that order.

    ``key`` is the scheduler's `Scheduler.unit_order` (None: the order the units
    came to wait); units of equal key come in the order they came to wait, as a
    stable sort of the plain list would give them.  Iteration produces each unit
    only when it is asked for, so stopping early costs only what was looked at.
    """

    key: UnitKey | None


def in_order(units: Sequence[UnitRequest], key: UnitKey) -> Iterable[UnitRequest]:
    """``units`` sorted by ``key`` (stable): as they are if the caller kept them so."""
    if isinstance(units, SortedUnits) and units.key is key:
        return units
    return sorted(units, key=key)


def _seed(value: Any) -> Any:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise TypeError(f"expected a whole number, got {type(value).__name__} {value!r}")
    return value


#: The option every scheduler takes besides its own: the seed of its random choices.
SEED = Option(None, "seed of the strategy's random choices", Check("a whole number or none", _seed))


class Scheduler(ABC):
    """Maps units to pilots."""

    #: Entry-point name, as given in ``WorkUnitService(scheduler=...)``.
    name: ClassVar[str]
    capabilities: ClassVar[frozenset[str]] = frozenset()
    #: The contract version it was written for (MAJOR.MINOR).
    contract_version: ClassVar[str] = CONTRACT_VERSION
    #: The options it takes besides ``seed``: name -> Option.
    option_specs: ClassVar[Mapping[str, Option]] = MappingProxyType({})

    def __init__(self, seed: int | None = None, **options: Any) -> None:
        self.seed = seed
        #: Every option's value (defaults filled in), as checked by `check_options`.
        self.options = self.check_options(options)

    @classmethod
    def check_options(cls, given: Mapping[str, Any]) -> dict[str, Any]:
        """The options as used, defaults filled in; BadDescription names one that is wrong.

        ``seed`` is accepted by every scheduler (a whole number or None).
        """
        specs = {"seed": SEED, **cls.option_specs}
        checked = plugin_options.check_options(
            "scheduler", cls.name, specs, given, "scheduler_options."
        )
        del checked["seed"]  # the seed has a constructor argument of its own
        return checked

    @abstractmethod
    def place(
        self, units: Sequence[UnitRequest], pilots: Sequence[PilotOffer]
    ) -> Mapping[str, str | None]:
        """Return, for units given, a pilot id or None (leave it waiting, or where it is).

        Must only choose offered pilots for which ``can_hold(unit.cores)`` is
        true, and must be deterministic for the same seed, options, inputs and
        call history (never iterate a set of strings: its order changes from
        one process to the next).  A unit left out counts as None.  On each
        pilot, the units it gets start in the order of the returned mapping.
        """

    def waiting_reason(self, unit: UnitRequest, pilots: Sequence[PilotOffer]) -> str:
        """Why ``place`` left ``unit`` waiting (None); shown in the unit's state_detail."""
        if not any(pilot.can_hold(unit.cores) for pilot in pilots):
            return f"waiting for a pilot with {unit.cores} free slot(s)"
        return f"waiting: scheduler '{self.name}' placed it nowhere yet"

    def unit_order(self) -> UnitKey | None:
        """The sort key by which `place` looks at the units; None: the order given.

        Always the same function object (see "Walking order" in the module docstring).
        """
        return None

    def next_call(self) -> float | None:
        """Seconds after which `place` should be called again even if nothing happens.

        Asked after every call; None (the default) means only on events.
        """
        return None
