"""The scheduler contract: pure placement of work units on pilots.

A scheduler sees plain values, never services or I/O, so strategies can be
compared offline and at scale, and the same seed gives the same placement.
The unit manager calls `place` whenever units wait or pilots change.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from troy.model.states import State


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
    """What a unit asks of a pilot."""

    id: str
    cores: int = 1
    datacenter: str | None = None
    machine: str | None = None
    #: Data-unit URLs the unit reads (for data-aware strategies).
    input_data: tuple[str, ...] = ()
    #: The same data units with sizes and replica locations (unknown URLs are left out).
    inputs: tuple[DataInput, ...] = ()


@dataclass(frozen=True, slots=True)
class PilotOffer:
    """What a pilot offers, as far as the manager knows now."""

    id: str
    state: State
    #: Total slots; None while unknown (agent not up, no number_of_processes given).
    slots: int | None = None
    #: Units already placed on it and not yet final (a load hint).
    queued: int = 0
    datacenter: str | None = None
    machine: str | None = None

    def can_hold(self, cores: int) -> bool:
        """True if the pilot is not final and is (or may be) large enough."""
        return not self.state.is_final and (self.slots is None or self.slots >= cores)


class Scheduler(ABC):
    """Maps units to pilots."""

    #: Entry-point name, as given in ``WorkUnitService(scheduler=...)``.
    name: ClassVar[str]
    capabilities: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed

    @abstractmethod
    def place(
        self, units: Sequence[UnitRequest], pilots: Sequence[PilotOffer]
    ) -> Mapping[str, str | None]:
        """Return, for every unit id given, a pilot id or None (leave it waiting).

        Must only choose pilots for which ``can_hold(unit.cores)`` is true, and must
        be deterministic for the same seed, inputs and call history.
        """

    def waiting_reason(self, unit: UnitRequest, pilots: Sequence[PilotOffer]) -> str:
        """Why ``place`` left ``unit`` waiting (None); shown in the unit's state_detail."""
        if not any(pilot.can_hold(unit.cores) for pilot in pilots):
            return f"waiting for a pilot with {unit.cores} free slot(s)"
        return f"waiting: scheduler '{self.name}' placed it nowhere yet"
