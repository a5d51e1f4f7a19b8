"""The ``affinity`` scheduler: units with affinity labels go only to pilots with those labels.

BigJob's affinity-aware placement. A unit's ``affinity_machine_label`` asks for
a pilot on that machine (and, if the unit also names a datacenter, in that
datacenter); a unit that names only a datacenter asks for a pilot in it. A
machine label implies its datacenter: a pilot labelled machine ``M`` in
datacenter ``D`` serves a unit that names only ``M``. A unit without labels
may go to any pilot. Among the pilots a unit may use, units are dealt round
robin; a unit no matching pilot can hold waits, and `waiting_reason` says
which labels it waits for and what was offered.

Option ``binding``: ``"early"`` (the default, BigJob's behaviour) places every
unit at once, into the queue of its next matching pilot. ``"late"`` places a
unit only when a matching pilot has open slots for it (free slots less those
of queued units: `troy.plugins.schedulers.just_in_time`), dealing round robin
among the matching pilots that have; the others wait (given as `SortedUnits`,
once no slot is open the units not looked at are left out), so units are bound to a
pilot as late as possible (late binding, as in pilot-job systems that pull
work when a slot frees: Turilli, Santcroos and Jha, "A comprehensive
perspective on pilot-job systems", ACM Computing Surveys 51(2), 2018) while
their labels still hold.

`matches_affinity` and `affinity_waiting_reason` are the rule and its
explanation, shared with the ``data_aware`` scheduler.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import ClassVar

from troy.plugins.schedulers.base import (
    Option,
    PilotOffer,
    Scheduler,
    SortedUnits,
    UnitRequest,
    choice,
)
from troy.plugins.schedulers.just_in_time import QueuedSlots
from troy.plugins.schedulers.round_robin import RoundRobinScheduler

#: A unit's affinity labels, as (machine, datacenter).
Labels = tuple[str | None, str | None]

#: At most this many pilots are named in a waiting reason.
NAMED_PILOTS = 5

#: The ``binding`` option of ``affinity`` and ``data_aware``.
BINDING = Option(
    "early",
    "early: queue every unit on a pilot at once; late: only into open slots (just in time)",
    choice("early", "late"),
)


def matches_affinity(unit: UnitRequest, pilot: PilotOffer) -> bool:
    """True if ``pilot`` carries the affinity labels ``unit`` asks for (any pilot if none)."""
    return _matches((unit.machine, unit.datacenter), pilot)


def affinity_waiting_reason(unit: UnitRequest, pilots: Sequence[PilotOffer]) -> str | None:
    """Why ``unit`` waits because of its affinity labels, or None if they are not the reason.

    The labels are the reason when no offered pilot carries them, or when none
    that does can hold the unit; the text names the labels and a few pilots.
    """
    if unit.machine is None and unit.datacenter is None:
        return None
    wanted = _describe_wanted(unit)
    matching = [offer for offer in pilots if matches_affinity(unit, offer)]
    if not matching:
        return f"waiting for a pilot with {wanted} (pilots offered: {_describe_pilots(pilots)})"
    if not any(offer.can_hold(unit.cores) for offer in matching):
        return (
            f"waiting for a pilot with {wanted} and {unit.cores} free slot(s) "
            f"(pilots with those labels: {_describe_pilots(matching)})"
        )
    return None


class AffinityScheduler(Scheduler):
    """Deals units round robin over the pilots whose labels match theirs.

    Units are grouped by their labels; each group has its own round-robin cycle
    (a `RoundRobinScheduler`) over the pilots that match it, kept between
    calls, so units placed one call at a time land exactly as in one bulk call.
    """

    name: ClassVar[str] = "affinity"
    capabilities: ClassVar[frozenset[str]] = frozenset({"affinity"})
    option_specs: ClassVar[Mapping[str, Option]] = MappingProxyType({"binding": BINDING})

    def __init__(self, seed: int | None = None, binding: str = "early") -> None:
        super().__init__(seed, binding=binding)
        self.late = self.options["binding"] == "late"
        self._cycles: dict[Labels, RoundRobinScheduler] = {}
        self._queued = QueuedSlots()

    def place(
        self, units: Sequence[UnitRequest], pilots: Sequence[PilotOffer]
    ) -> Mapping[str, str | None]:
        """For every unit id given, the next matching pilot that can hold it, or None."""
        if self.late:
            return self._place_late(units, pilots)
        groups: dict[Labels, list[UnitRequest]] = {}
        for unit in units:
            key = (unit.machine, unit.datacenter)
            group = groups.get(key)
            if group is None:
                group = groups[key] = []
            group.append(unit)
        chosen: dict[str, str | None] = {}
        for key, group in groups.items():
            matching = pilots if key == (None, None) else [p for p in pilots if _matches(key, p)]
            cycle = self._cycles.get(key)
            if cycle is None:
                cycle = self._cycles[key] = RoundRobinScheduler(self.seed)
            answer = cycle.place(group, matching)
            if len(groups) == 1:
                return answer
            chosen.update(answer)
        # In the order the units were given, like every other scheduler's answer.
        return {unit.id: chosen[unit.id] for unit in units}

    def _place_late(
        self, units: Sequence[UnitRequest], pilots: Sequence[PilotOffer]
    ) -> dict[str, str | None]:
        """Each unit, in order, round robin among the matching pilots with open slots for it."""
        room = self._queued.room(pilots)
        #: Per labels, the fewest cores for which no matching pilot had room (room only shrinks).
        no_room: dict[Labels, int] = {}
        chosen: dict[str, str | None] = {}
        lazy = isinstance(units, SortedUnits)
        for unit in units:
            if room.left <= 0:  # nothing more fits now: the others wait
                if lazy:
                    break  # left out: the caller need not produce them
                chosen[unit.id] = None
                continue
            key = (unit.machine, unit.datacenter)
            full = no_room.get(key)
            if full is not None and unit.cores >= full:
                chosen[unit.id] = None
                continue
            fitting = [index for index in room.open_for(unit.cores) if _matches(key, pilots[index])]
            if not fitting:
                no_room[key] = unit.cores if full is None else min(full, unit.cores)
                chosen[unit.id] = None
                continue
            cycle = self._cycles.get(key)
            if cycle is None:
                cycle = self._cycles[key] = RoundRobinScheduler(self.seed)
            pilot_id = cycle.place([unit], [pilots[index] for index in fitting])[unit.id]
            index = next(index for index in fitting if pilots[index].id == pilot_id)
            room.take(index, unit.cores)
            chosen[unit.id] = pilot_id
        return chosen

    def waiting_reason(self, unit: UnitRequest, pilots: Sequence[PilotOffer]) -> str:
        """Why ``unit`` waits: its labels, if no matching pilot can hold it, else the default."""
        reason = affinity_waiting_reason(unit, pilots)
        if reason is None and self.late and any(p.can_hold(unit.cores) for p in pilots):
            return f"waiting for {unit.cores} open slot(s) on a matching pilot (binding: late)"
        return reason or super().waiting_reason(unit, pilots)


def _matches(labels: Labels, pilot: PilotOffer) -> bool:
    machine, datacenter = labels
    if machine is not None and pilot.machine != machine:
        return False
    return datacenter is None or pilot.datacenter == datacenter


def _describe_wanted(unit: UnitRequest) -> str:
    """The labels a unit asks for, as the description keys users write."""
    wanted = []
    if unit.machine is not None:
        wanted.append(f"affinity_machine_label {unit.machine!r}")
    if unit.datacenter is not None:
        wanted.append(f"affinity_datacenter_label {unit.datacenter!r}")
    return " and ".join(wanted)


def _describe_pilots(pilots: Sequence[PilotOffer]) -> str:
    """The first few pilots with their labels as ``id [datacenter/machine]``."""
    if not pilots:
        return "none"
    named = [
        f"{offer.id} [{offer.datacenter or '-'}/{offer.machine or '-'}]"
        for offer in pilots[:NAMED_PILOTS]
    ]
    if len(pilots) > NAMED_PILOTS:
        named.append(f"and {len(pilots) - NAMED_PILOTS} more")
    return ", ".join(named)
