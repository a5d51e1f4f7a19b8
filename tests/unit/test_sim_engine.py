"""The simulation engine: exact results on small analytic cases, and determinism."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import pytest

from troy.model.errors import BadDescription, SchedulerError
from troy.model.retry import MAX_LOSSES
from troy.plugins.schedulers.backfill import BackfillScheduler
from troy.plugins.schedulers.base import PilotOffer, Scheduler, UnitRequest
from troy.sim.engine import VirtualClock, make_scheduler, run, simulate
from troy.sim.model import (
    Failure,
    Network,
    Overheads,
    SimInput,
    SimPilot,
    SimStore,
    SimUnit,
    UnitRecord,
    Workload,
)


def units_of(*seconds: float, **fields: Any) -> tuple[SimUnit, ...]:
    return tuple(SimUnit(f"u{n}", "u", s, **fields) for n, s in enumerate(seconds, 1))


def workload(pilots: Sequence[SimPilot], units: Sequence[SimUnit], **fields: Any) -> Workload:
    return Workload("test", 7, tuple(pilots), tuple(units), **fields)


def spans(
    records: Sequence[UnitRecord],
) -> dict[str, tuple[str | None, float | None, float | None]]:
    return {r.id: (r.pilot, r.start, r.end) for r in records}


TWO = (SimPilot("A", 1), SimPilot("B", 1))


def test_overheads_delay_the_pilots_and_hold_each_units_slots_longer() -> None:
    overheads = Overheads(pilot_start_s=0.5, unit_start_s=0.25)
    result = run(workload(TWO, units_of(1, 2, 3, 4), overheads=overheads), "round_robin")

    # A: 0.5 + 0.25 + 1 = 1.75, then + 0.25 + 3 = 5.0; B: 0.5 + 0.25 + 2 = 2.75, + 0.25 + 4
    assert result.makespan == 7.0
    assert spans(result.records) == {
        "u1": ("A", 0.5, 1.75),
        "u2": ("B", 0.5, 2.75),
        "u3": ("A", 1.75, 5.0),
        "u4": ("B", 2.75, 7.0),
    }


def test_round_robin_on_two_one_slot_pilots_takes_six_seconds() -> None:
    result = run(workload(TWO, units_of(1, 2, 3, 4)), "round_robin")
    assert result.makespan == 6.0
    assert spans(result.records) == {
        "u1": ("A", 0.0, 1.0),
        "u2": ("B", 0.0, 2.0),
        "u3": ("A", 1.0, 4.0),
        "u4": ("B", 2.0, 6.0),
    }
    assert all(r.state == "Done" and r.tries == 0 for r in result.records)
    assert [(p.id, p.busy, p.up) for p in result.pilots] == [("A", 4.0, 6.0), ("B", 6.0, 6.0)]
    assert result.utilisation == 10.0 / 12.0
    assert result.calls == 1


def test_speed_divides_runtimes() -> None:
    pilots = (SimPilot("A", 1, speed=2.0), SimPilot("B", 1, speed=2.0))
    result = run(workload(pilots, units_of(1, 2, 3, 4)), "round_robin")
    assert result.makespan == 3.0
    assert spans(result.records)["u4"] == ("B", 1.0, 3.0)


def test_start_delay_shifts_the_start() -> None:
    pilots = (SimPilot("A", 1, start_delay=5.0), SimPilot("B", 1, start_delay=10.0))
    result = run(workload(pilots, units_of(1, 2, 3, 4)), "round_robin")
    assert spans(result.records) == {
        "u1": ("A", 5.0, 6.0),
        "u2": ("B", 10.0, 12.0),
        "u3": ("A", 6.0, 9.0),
        "u4": ("B", 12.0, 16.0),
    }
    assert [p.up for p in result.pilots] == [11.0, 6.0]


def test_staging_adds_transfer_time_only_for_inputs_not_local() -> None:
    stores = (SimStore("near", machine="m1"), SimStore("far", machine="m2"))
    near = SimInput("near.dat", "near", 1_000_000)
    far = SimInput("far.dat", "far", 50_000_000)
    units = (
        SimUnit("u1", "u", 1.0, inputs=(near,)),
        SimUnit("u2", "u", 1.0, inputs=(near, far)),
    )
    network = Network(bandwidth_mb_s=100.0, latency_s=0.25)
    result = run(
        workload([SimPilot("A", 2, machine="m1")], units, stores=stores, network=network),
        "round_robin",
    )
    first, second = result.records
    assert (first.end, first.bytes_in, first.bytes_moved) == (1.0, 1_000_000, 0)
    assert (second.end, second.bytes_in, second.bytes_moved) == (1.75, 51_000_000, 50_000_000)


def test_locality_by_datacenter_when_no_machine_label() -> None:
    stores = (SimStore("s", datacenter="dc1"),)
    data = SimInput("d", "s", 10**6)
    units = (SimUnit("u1", "u", 1.0, inputs=(data,)),)
    pilots = (SimPilot("A", 1, datacenter="dc1"),)
    assert run(workload(pilots, units, stores=stores), "round_robin").records[0].bytes_moved == 0
    pilots = (SimPilot("A", 1, datacenter="dc1", machine="m1"),)
    assert (
        run(workload(pilots, units, stores=stores), "round_robin").records[0].bytes_moved == 10**6
    )


class Recording(Scheduler):
    """Round-robin-like: first pilot offered that can hold the unit; keeps what it was offered."""

    name: ClassVar[str] = "recording"

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(seed)
        self.calls: list[tuple[list[str], list[PilotOffer]]] = []

    def place(
        self, units: Sequence[UnitRequest], pilots: Sequence[PilotOffer]
    ) -> Mapping[str, str | None]:
        self.calls.append(([u.id for u in units], list(pilots)))
        return {u.id: next((p.id for p in pilots if p.can_hold(u.cores)), None) for u in units}


def test_a_failure_loses_running_units_which_run_again_elsewhere() -> None:
    scheduler = Recording()
    w = workload(TWO, units_of(4, 1), failures=(Failure("A", 1.0),))
    result = simulate(w, scheduler)
    # Both went to A (first offered); at 1 s A fails: u1 was running (lost), u2 queued;
    # both are placed again on B, u2 first (given back before the lost one).
    assert spans(result.records) == {"u1": ("B", 2.0, 6.0), "u2": ("B", 1.0, 2.0)}
    assert [r.tries for r in result.records] == [1, 0]
    assert [r.state for r in result.records] == ["Done", "Done"]
    assert result.pilots[0].busy == 1.0
    units, offers = scheduler.calls[-1]
    assert units == ["u2", "u1"]
    assert [o.id for o in offers] == ["B"]


def test_a_unit_lost_more_than_max_losses_times_fails() -> None:
    count = MAX_LOSSES + 2
    pilots = [SimPilot(f"P{k}", 1) for k in range(count)]
    failures = tuple(Failure(f"P{k}", float(k + 1)) for k in range(MAX_LOSSES + 1))
    result = run(workload(pilots, units_of(100), failures=failures), "round_robin")
    record = result.records[0]
    assert (record.state, record.tries, record.pilot) == ("Failed", MAX_LOSSES, f"P{MAX_LOSSES}")
    assert record.end == float(MAX_LOSSES + 1)
    assert result.details["u1"].startswith(f"pilot P{MAX_LOSSES} ended (Failed: failure at")
    assert "(earlier: attempt 1: pilot P0 ended" in result.details["u1"]


def test_units_left_when_the_last_pilot_ends_fail() -> None:
    pilots = (SimPilot("A", 1, wall_time=3.0),)
    result = run(workload(pilots, units_of(2, 2)), "round_robin")
    assert [(r.state, r.end) for r in result.records] == [("Done", 2.0), ("Failed", 3.0)]
    assert "wall time 3 s ran out" in result.details["u2"]
    assert result.makespan == 3.0


def test_dependencies_start_only_after_and_a_failed_one_cancels() -> None:
    units = (
        SimUnit("a", "a", 2.0),
        SimUnit("b", "b", 1.0, after=("a",)),
        SimUnit("big", "big", 1.0, cores=5),
        SimUnit("c", "c", 1.0, after=("big",)),
        SimUnit("d", "d", 1.0, after=("c",)),
    )
    result = run(workload(TWO, units), "round_robin")
    records = {r.id: r for r in result.records}
    assert (records["b"].start, records["b"].end) == (2.0, 3.0)
    assert [records[u].state for u in ("big", "c", "d")] == ["Failed", "Canceled", "Canceled"]
    assert result.details["big"] == "needs 5 slots; the largest pilot has 1"
    assert result.details["c"] == "dependency big ended Failed"
    assert result.details["d"] == "dependency c ended Canceled"
    assert records["big"].start is None and records["c"].start is None


def test_a_unit_too_big_for_every_pilot_fails_at_once() -> None:
    result = run(workload(TWO, (SimUnit("u1", "u", 1.0, cores=3),)), "round_robin")
    assert (result.records[0].state, result.records[0].start) == ("Failed", None)
    assert result.details == {"u1": "needs 3 slots; the largest pilot has 1"}
    assert result.makespan == 0.0


def test_shortest_first_on_one_slot_runs_the_shortest_first() -> None:
    units = tuple(SimUnit(f"u{s}", "u", float(s), hints={"runtime": float(s)}) for s in (3, 1, 2))
    result = run(workload([SimPilot("A", 1)], units), "shortest_first")
    assert spans(result.records) == {
        "u3": ("A", 3.0, 6.0),
        "u1": ("A", 0.0, 1.0),
        "u2": ("A", 1.0, 3.0),
    }


def test_backfill_reads_the_virtual_clock() -> None:
    units = (
        SimUnit("long", "u", 10.0, hints={"runtime": 10.0}),
        SimUnit("head", "u", 5.0, cores=2, hints={"runtime": 5.0}),
        SimUnit("short", "u", 4.0, hints={"runtime": 4.0}),
        SimUnit("late", "u", 8.0, hints={"runtime": 8.0}),
    )
    clock = VirtualClock()
    scheduler = make_scheduler("backfill", {}, 1, clock)
    assert isinstance(scheduler, BackfillScheduler) and scheduler.clock is clock
    result = simulate(workload([SimPilot("A", 2)], units), scheduler, clock)
    # "short" ends by the head's shadow time (10 s) and backfills; "late" would delay it.
    assert spans(result.records) == {
        "long": ("A", 0.0, 10.0),
        "head": ("A", 10.0, 15.0),
        "short": ("A", 0.0, 4.0),
        "late": ("A", 15.0, 23.0),
    }


class Patient(Scheduler):
    """Places nothing before time 5, and asks to be called then."""

    name: ClassVar[str] = "patient"

    def __init__(self, seed: int | None = None, *, clock: VirtualClock) -> None:
        super().__init__(seed)
        self.clock = clock

    def place(
        self, units: Sequence[UnitRequest], pilots: Sequence[PilotOffer]
    ) -> Mapping[str, str | None]:
        ready = self.clock() >= 5.0
        return {u.id: pilots[0].id if ready else None for u in units}

    def next_call(self) -> float | None:
        return 5.0 - self.clock() if self.clock() < 5.0 else None


def test_the_timer_the_scheduler_asks_for_fires() -> None:
    clock = VirtualClock()
    result = simulate(workload(TWO, units_of(1)), Patient(clock=clock), clock)
    assert spans(result.records) == {"u1": ("A", 5.0, 6.0)}
    assert result.calls == 2


class Mover(Scheduler):
    """Rebalances: everything to the first pilot, then queued units to the last one."""

    name: ClassVar[str] = "mover"
    capabilities: ClassVar[frozenset[str]] = frozenset({"rebalance"})

    def place(
        self, units: Sequence[UnitRequest], pilots: Sequence[PilotOffer]
    ) -> Mapping[str, str | None]:
        return {u.id: pilots[-1 if u.queued_on else 0].id for u in units}


def test_a_rebalancing_scheduler_moves_units_that_have_not_started() -> None:
    pilots = (SimPilot("A", 1), SimPilot("B", 1, start_delay=1.0))
    result = simulate(workload(pilots, units_of(4, 1, 1)), Mover())
    # At 0 all go to A, where u1 starts; when B starts, the queued u2 and u3 move there.
    assert spans(result.records) == {
        "u1": ("A", 0.0, 4.0),
        "u2": ("B", 1.0, 2.0),
        "u3": ("B", 2.0, 3.0),
    }


def test_the_same_inputs_give_the_same_records() -> None:
    pilots = [SimPilot(f"P{k}", k + 1) for k in range(4)]
    w = workload(pilots, units_of(*[1.0 + (n % 7) / 3 for n in range(60)]))
    assert run(w, "random", seed=3) == run(w, "random", seed=3)


SCRIPT = """
from troy.sim.engine import run
from troy.sim.model import SimPilot, SimUnit, Workload
pilots = tuple(SimPilot(f"P{k}", k + 1) for k in range(4))
units = tuple(SimUnit(f"u{n}", "u", 1.0 + (n % 7) / 3) for n in range(60))
print(repr(run(Workload("w", 7, pilots, units), "random", seed=3)))
"""


def test_the_same_inputs_give_the_same_records_in_any_process() -> None:
    outputs = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True
        )
        outputs.add(done.stdout)
    assert len(outputs) == 1


class Wrong(Scheduler):
    name: ClassVar[str] = "wrong"

    def __init__(self, answer: Any) -> None:
        super().__init__()
        self.answer = answer

    def place(
        self, units: Sequence[UnitRequest], pilots: Sequence[PilotOffer]
    ) -> Mapping[str, str | None]:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"u1": "C"}, "scheduler 'wrong' placed u1 on unknown pilot 'C'"),
        ({"zz": "A"}, "scheduler 'wrong' placed unit 'zz', which it was not offered"),
        ({"u1": 3}, "scheduler 'wrong' gave int 3 for unit u1"),
        (["A"], "scheduler 'wrong' returned list, not a mapping"),
        (RuntimeError("boom"), "scheduler 'wrong' failed: RuntimeError: boom"),
    ],
)
def test_a_misbehaving_scheduler_is_a_scheduler_error(answer: Any, message: str) -> None:
    with pytest.raises(SchedulerError, match=message):
        simulate(workload(TWO, units_of(1)), Wrong(answer))


def test_a_pilot_that_cannot_hold_the_unit_is_refused() -> None:
    pilots = (SimPilot("A", 1), SimPilot("B", 2))
    units = (SimUnit("u1", "u", 1.0, cores=2),)
    with pytest.raises(SchedulerError, match="on pilot A, which cannot hold it"):
        simulate(workload(pilots, units), Wrong({"u1": "A"}))


def test_make_scheduler_checks_options() -> None:
    with pytest.raises(BadDescription, match=r"scheduler_options\.bindng"):
        make_scheduler("affinity", {"bindng": "late"}, 1, VirtualClock())
    scheduler = make_scheduler("affinity", {"binding": "late"}, 1, VirtualClock())
    assert scheduler.options == {"binding": "late"} and scheduler.seed == 1


def test_a_workload_naming_what_it_lacks_is_refused() -> None:
    units = (SimUnit("u1", "u", 1.0, after=("nobody",)),)
    with pytest.raises(BadDescription, match=r"units\.u1\.after"):
        run(workload(TWO, units), "round_robin")
