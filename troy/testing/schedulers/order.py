"""Order and progress: what a pilot's units start in, and that waiting units get placed.

The manager starts the units one call places on a pilot in the order of the
returned mapping, so that order is part of the result: it must be as
deterministic as the choice of pilots.  `drive` plays the manager and the
agents for successive calls (pure: no services), so a just-in-time scheduler,
one that leaves units waiting until slots are free, is held to placing them
once slots free up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from troy.model.states import State
from troy.plugins.schedulers.base import PilotOffer, Scheduler, UnitRequest
from troy.testing.schedulers.base import (
    MakeScheduler,
    SchedulerFixtures,
    check_mapping,
    check_placement,
    order_per_pilot,
    pilot,
    placement_of,
    units_of,
    waiting_without_room,
)


@dataclass
class SimulatedPilot:
    """A pilot as `drive` keeps it: its queue (in placement order) and what runs on it."""

    id: str
    slots: int
    queue: list[UnitRequest] = field(default_factory=list)
    running: list[UnitRequest] = field(default_factory=list)

    def offer(self) -> PilotOffer:
        busy = sum(unit.cores for unit in self.running)
        return PilotOffer(
            self.id,
            State.Running,
            slots=self.slots,
            queued=len(self.queue),
            running=len(self.running),
            busy=busy,
        )

    def start(self) -> list[UnitRequest]:
        """Start queued units in order while the first fits the free slots (as an agent)."""
        started = []
        free = self.slots - sum(unit.cores for unit in self.running)
        while self.queue and self.queue[0].cores <= free:
            unit = self.queue.pop(0)
            free -= unit.cores
            self.running.append(unit)
            started.append(unit)
        return started


def drive(
    scheduler: Scheduler,
    units: Sequence[UnitRequest],
    slots: Mapping[str, int],
    rounds: int,
) -> list[tuple[int, str, str]]:
    """Play successive placement calls, as the manager makes them; return who started where.

    Each round offers the waiting units and every pilot with its current
    queued, running and busy counts; places what the scheduler chose (in the
    mapping's order); lets each pilot start units from its queue into free
    slots; then every running unit ends (so its slots are free for the next
    round).  Returns (round, unit id, pilot id) for each unit started.  Fails
    if, in some round, a pilot was idle and units waited and the scheduler
    placed none of them.
    """
    pilots = {pilot_id: SimulatedPilot(pilot_id, count) for pilot_id, count in slots.items()}
    waiting = list(units)
    started: list[tuple[int, str, str]] = []
    for round_ in range(rounds):
        if not waiting and not any(p.queue for p in pilots.values()):
            break
        offers = [p.offer() for p in pilots.values()]
        placement = placement_of(scheduler, list(waiting), offers)
        check_placement(placement, waiting, offers)
        chosen = {unit_id: pilot_id for unit_id, pilot_id in placement.items() if pilot_id}
        idle = [o.id for o in offers if o.queued == 0 and o.running == 0]
        assert chosen or not waiting or not idle, (
            f"round {round_}: {len(waiting)} unit(s) waited, pilot(s) {idle} were idle, and "
            f"{type(scheduler).__name__} placed none of them: it must place units once "
            "slots are free (PilotOffer.free)"
        )
        by_id = {unit.id: unit for unit in waiting}
        for unit_id, pilot_id in chosen.items():
            pilots[pilot_id].queue.append(by_id[unit_id])
        waiting = [unit for unit in waiting if unit.id not in chosen]
        for simulated in pilots.values():
            started += [(round_, unit.id, simulated.id) for unit in simulated.start()]
            simulated.running.clear()  # each unit takes one round
    return started


class SchedulerOrderTests(SchedulerFixtures):
    """The result is a mapping; the order it gives each pilot's units is deterministic."""

    def test_place_returns_a_mapping_of_unit_id_to_pilot_id_or_none(
        self, make_scheduler: MakeScheduler
    ) -> None:
        scheduler = make_scheduler(0)
        for units in (units_of(5), []):
            check_mapping(scheduler.place(units, [pilot("p1", 2), pilot("p2", 4)]), scheduler)

    def test_order_on_each_pilot_is_the_same_for_the_same_inputs(
        self, make_scheduler: MakeScheduler
    ) -> None:
        pilots = [pilot("p1", 2), pilot("p2", 4), pilot("p3", None, State.Pending)]
        calls = [
            (units_of(13), pilots),
            ([UnitRequest(f"h{i}", hints={"runtime": 10 - i}, order=i) for i in range(7)], pilots),
            (units_of(6, cores=2, prefix="w"), pilots[::-1]),
        ]

        def history() -> list[dict[str, list[str]]]:
            scheduler = make_scheduler(5)
            return [
                order_per_pilot(placement_of(scheduler, units, offered)) for units, offered in calls
            ]

        assert history() == history(), "the units' order on a pilot changed between runs"


class SchedulerProgressTests(SchedulerFixtures):
    """Units left waiting are placed once slots are free (just-in-time strategies too)."""

    def test_every_unit_starts_when_slots_free_up(self, make_scheduler: MakeScheduler) -> None:
        units = units_of(12)

        started = drive(make_scheduler(0), units, {"p1": 2, "p2": 1}, rounds=20)

        assert sorted(unit_id for _, unit_id, _ in started) == sorted(u.id for u in units), (
            "not every unit started, each once, within 20 rounds"
        )

    def test_units_of_mixed_sizes_all_start(self, make_scheduler: MakeScheduler) -> None:
        units = units_of(4, cores=3, prefix="w") + units_of(6) + units_of(2, cores=2, prefix="x")

        started = drive(make_scheduler(0), units, {"p1": 4, "p2": 3}, rounds=30)

        assert sorted(unit_id for _, unit_id, _ in started) == sorted(u.id for u in units)

    def test_a_busy_pilot_does_not_block_an_idle_one(self, make_scheduler: MakeScheduler) -> None:
        scheduler = make_scheduler(0)
        busy = PilotOffer("busy", State.Running, slots=2, running=2, busy=2, queued=3)
        idle = pilot("idle", 2)
        units = units_of(4)

        placement = placement_of(scheduler, units, [busy, idle])

        check_placement(placement, units, [busy, idle])
        left = waiting_without_room(placement, units, [busy, idle])
        assert not left, f"units waited while pilot 'idle' had room for them: {placement}"
