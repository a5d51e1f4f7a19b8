"""The unit manager's side of the scheduler contract (version 2), with real local pilots.

The schedulers are defined here and registered as a third-party package would
register them: a throwaway distribution on sys.path whose entry points name
this module.  What is checked: errors from a misbehaving scheduler (at submit,
with ``on_error: wait``, and in a later placement), just-in-time placement on
unit ends, order on a pilot, rebalancing with withdrawal, options recorded with
the service, and the ``next_call`` timer.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import textwrap
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest

import troy
from troy import State
from troy.model.errors import BadDescription, SchedulerError
from troy.plugins import registry
from troy.plugins.registry import open_coordination
from troy.plugins.schedulers.base import (
    Option,
    PilotOffer,
    Scheduler,
    UnitRequest,
    choice,
    number,
)
from troy.testing.backends import wait_until

Placement = Mapping[str, Any]


def first_fit(units: Sequence[UnitRequest], pilots: Sequence[PilotOffer]) -> dict[str, Any]:
    return {u.id: next((p.id for p in pilots if p.can_hold(u.cores)), None) for u in units}


class MisbehavingScheduler(Scheduler):
    """Breaks the contract as ``fault`` says, in calls ``first`` to ``last`` (0: to the end).

    Before ``first`` it leaves every unit waiting; after ``last`` it places first fit.
    It asks to be called again 0.2 s after each call.
    """

    name: ClassVar[str] = "misbehaving"
    option_specs: ClassVar[Mapping[str, Option]] = {
        "fault": Option(
            "list",
            "how it breaks",
            choice("list", "unknown_pilot", "unknown_unit", "not_str", "too_small", "raise"),
        ),
        "first": Option(1, "first call that breaks", number(1)),
        "last": Option(0, "last call that breaks (0: every one from first)", number(0)),
    }

    def __init__(self, seed: int | None = None, **options: Any) -> None:
        super().__init__(seed, **options)
        self.calls = 0

    def place(self, units: Sequence[UnitRequest], pilots: Sequence[PilotOffer]) -> Placement:
        self.calls += 1
        first, last = self.options["first"], self.options["last"]
        if self.calls < first:
            return dict.fromkeys((u.id for u in units), None)
        if last and self.calls > last:
            return first_fit(units, pilots)
        fault = self.options["fault"]
        if fault == "raise":
            raise RuntimeError("broken on purpose")
        if fault == "list":
            return list(first_fit(units, pilots).items())  # type: ignore[return-value]
        if fault == "unknown_unit":
            return {**first_fit(units, pilots), "ghost": pilots[0].id}
        if fault == "not_str":
            return dict.fromkeys((u.id for u in units), 7)
        if fault == "too_small":
            smallest = min(pilots, key=lambda p: p.slots or 0)
            return dict.fromkeys((u.id for u in units), smallest.id)
        return dict.fromkeys((u.id for u in units), "no-such-pilot")

    def next_call(self) -> float | None:
        return 0.2


class JustInTimeScheduler(Scheduler):
    """Places a unit only into a slot that is free and not promised to a queued unit."""

    name: ClassVar[str] = "just_in_time"

    def place(self, units: Sequence[UnitRequest], pilots: Sequence[PilotOffer]) -> Placement:
        room = {p.id: (p.free or 0) - p.queued for p in pilots if not p.state.is_final}
        placement: dict[str, str | None] = {}
        for unit in units:
            chosen = next((pid for pid, free in room.items() if free >= unit.cores), None)
            placement[unit.id] = chosen
            if chosen is not None:
                room[chosen] -= unit.cores
        return placement


class ReverseScheduler(Scheduler):
    """First fit, with the units in reverse submission order."""

    name: ClassVar[str] = "reverse"

    def place(self, units: Sequence[UnitRequest], pilots: Sequence[PilotOffer]) -> Placement:
        return first_fit(sorted(units, key=lambda u: u.order, reverse=True), pilots)


class RebalancingScheduler(Scheduler):
    """New units to the pilot labelled machine "a"; queued ones to any pilot with room."""

    name: ClassVar[str] = "rebalancing"
    capabilities: ClassVar[frozenset[str]] = frozenset({"rebalance"})

    def place(self, units: Sequence[UnitRequest], pilots: Sequence[PilotOffer]) -> Placement:
        home = [p for p in pilots if p.machine == "a"]
        room = {p.id: (p.free or 0) - p.queued for p in pilots}
        placement: dict[str, str | None] = {}
        for unit in units:
            if unit.queued_on is None:
                placement[unit.id] = first_fit([unit], home)[unit.id]
                continue
            best = max(room, key=lambda pid: room[pid])
            if room[best] > 0 and best != unit.queued_on:
                placement[unit.id] = best
                room[best] -= 1
        return placement

    def next_call(self) -> float | None:
        return 0.2


class LaterScheduler(Scheduler):
    """Places nothing the first call and asks to be called 0.3 s later; then first fit."""

    name: ClassVar[str] = "later"
    #: Monotonic time of each call, across instances (one per test).
    calls: ClassVar[list[float]] = []

    def place(self, units: Sequence[UnitRequest], pilots: Sequence[PilotOffer]) -> Placement:
        self.calls.append(time.monotonic())
        if len(self.calls) == 1:
            return {}
        return first_fit(units, pilots)

    def next_call(self) -> float | None:
        return 0.3 if len(self.calls) == 1 else None


ENTRY_POINTS = f"""
[troy.schedulers]
misbehaving = {__name__}:MisbehavingScheduler
just_in_time = {__name__}:JustInTimeScheduler
reverse = {__name__}:ReverseScheduler
rebalancing = {__name__}:RebalancingScheduler
later = {__name__}:LaterScheduler
"""


@pytest.fixture(autouse=True)
def fake_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Registers this module's schedulers, as ``pip install`` of a package would."""
    site = tmp_path / "site"
    info = site / "troy_contract_schedulers-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: troy-contract-schedulers\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text(textwrap.dedent(ENTRY_POINTS))
    monkeypatch.syspath_prepend(str(site))
    registry.refresh()
    yield site
    monkeypatch.undo()
    registry.refresh()


def start(pilots: troy.PilotJobService, path: Path, slots: int, **more: Any) -> troy.PilotJob:
    """A local pilot with ``slots`` slots, Running."""
    pilot = pilots.create(
        "fork://localhost",
        {"number_of_processes": slots, "working_directory": str(path), **more},
    )
    wait_until(lambda: pilot.state == State.Running, 30, f"pilot {pilot.id} Running")
    return pilot


def sleeper(seconds: float, marks: Path | None = None, n: int = 0) -> dict[str, Any]:
    """A unit that sleeps; with ``marks``, it first appends a line to ``marks/<n>``."""
    mark = f"echo ran >> {marks / str(n)}; " if marks is not None else ""
    return {"executable": "/bin/sh", "arguments": ["-c", f"{mark}sleep {seconds}"]}


FAULTS = {
    "list": "returned list, not a mapping of unit id to pilot id or None",
    "unknown_pilot": "on unknown pilot 'no-such-pilot'",
    "unknown_unit": "placed unit 'ghost', which it was not offered",
    "not_str": "gave int 7 for unit",
    "too_small": "which cannot hold it (1 slots",
    "raise": "failed: RuntimeError: broken on purpose",
}


def test_a_misbehaving_scheduler_fails_submit_and_nothing_is_recorded(
    pilots: troy.PilotJobService, coordination_url: str, tmp_path: Path
) -> None:
    pilots.create(
        "fork://localhost", {"number_of_processes": 1, "working_directory": str(tmp_path / "s")}
    )
    pilots.create(
        "fork://localhost", {"number_of_processes": 4, "working_directory": str(tmp_path / "b")}
    )
    for fault, words in FAULTS.items():
        units = troy.WorkUnitService(
            coordination=coordination_url,
            scheduler="misbehaving",
            scheduler_options={"fault": fault},
        )
        units.add(pilots)
        with pytest.raises(SchedulerError) as error:
            units.submit([{"executable": "/bin/true", "cores": 2} for _ in range(3)])
        message = str(error.value)
        assert message.startswith("scheduler 'misbehaving' "), (fault, message)
        assert words in message, (fault, message)
        assert units.list() == [], fault
        with troy.WorkUnitService(id=units.id, coordination=coordination_url) as again:
            assert again.list() == [], f"{fault}: a unit was recorded"
        units.close()


def test_with_on_error_wait_the_units_wait_and_the_run_goes_on(
    pilots: troy.PilotJobService,
    coordination_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    units = troy.WorkUnitService(
        coordination=coordination_url,
        scheduler="misbehaving",
        scheduler_options={"fault": "unknown_pilot", "last": 1, "on_error": "wait"},
    )
    units.add(pilots)
    start(pilots, tmp_path / "p", 2)

    with caplog.at_level(logging.WARNING, logger="troy.units"):
        submitted = units.submit([{"executable": "/bin/true"} for _ in range(3)])
    # The monitor may place them again at once (the scheduler's next call behaves):
    # a unit still waiting says why.
    details = [(u.state, u.state_detail) for u in submitted]

    assert "unknown pilot 'no-such-pilot'; the units submitted wait" in caplog.text
    for state, detail in details:
        if state == State.New:
            assert detail.startswith("waiting: scheduler 'misbehaving' placed"), detail
            assert "unknown pilot 'no-such-pilot'" in detail
    with troy.WorkUnitService(id=units.id, coordination=coordination_url) as again:
        assert len(again.list()) == 3, "the units were not recorded"
        assert again.scheduler_options == {"fault": "unknown_pilot", "last": 1, "on_error": "wait"}
    units.wait(60)
    assert [u.state for u in submitted] == [State.Done] * 3
    units.close()


def test_an_error_in_a_later_placement_fails_those_units(
    pilots: troy.PilotJobService, coordination_url: str, tmp_path: Path
) -> None:
    units = troy.WorkUnitService(
        coordination=coordination_url,
        scheduler="misbehaving",
        scheduler_options={"fault": "raise", "first": 2},
    )
    units.add(pilots)
    start(pilots, tmp_path / "p", 2)

    submitted = units.submit([{"executable": "/bin/true"} for _ in range(3)])  # call 1: waits
    units.wait(60)

    assert [u.state for u in submitted] == [State.Failed] * 3
    for unit in submitted:
        assert (
            unit.state_detail == "scheduler 'misbehaving' failed: RuntimeError: broken on purpose"
        )
    units.close()


def test_a_just_in_time_scheduler_places_units_as_slots_free_up(
    pilots: troy.PilotJobService, coordination_url: str, tmp_path: Path
) -> None:
    units = troy.WorkUnitService(coordination=coordination_url, scheduler="just_in_time")
    units.add(pilots)
    pilot = start(pilots, tmp_path / "p", 2)

    submitted = units.submit([sleeper(0.2) for _ in range(6)])
    waiting = [u for u in submitted if u.state == State.New]
    units.wait(60)

    assert len(waiting) == 4, "the scheduler did not place into the 2 free slots only"
    assert [u.state for u in submitted] == [State.Done] * 6
    assert {u.pilot for u in submitted} == {pilot.id}
    units.close()


def test_units_a_dead_pilot_never_started_wait_for_a_just_in_time_scheduler(
    pilots: troy.PilotJobService, coordination_url: str, tmp_path: Path
) -> None:
    # Units queued on a pilot whose agent dies are withdrawn and offered again; a
    # just-in-time scheduler finds no room now and leaves them waiting.  They must
    # wait for the live pilot, not end Failed as if no pilot were live.
    units = troy.WorkUnitService(coordination=coordination_url, scheduler="just_in_time")
    units.add(pilots)
    live = start(pilots, tmp_path / "live", 1)
    doomed = start(pilots, tmp_path / "doomed", 2)
    assert doomed.handle is not None
    os.kill(doomed.handle["pid"], signal.SIGSTOP)  # it claims nothing from now on
    try:
        submitted = units.submit([sleeper(0.5) for _ in range(3)])
        assert {u.pilot for u in submitted} == {live.id, doomed.id}
        os.kill(doomed.handle["pid"], signal.SIGKILL)
        units.wait(60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(doomed.handle["pid"], signal.SIGKILL)
    assert [u.state for u in submitted] == [State.Done] * 3, [u.state_detail for u in submitted]
    assert {u.pilot for u in submitted} == {live.id}
    units.close()


def test_units_start_on_a_pilot_in_the_order_the_scheduler_gave(
    pilots: troy.PilotJobService, coordination_url: str, tmp_path: Path
) -> None:
    units = troy.WorkUnitService(coordination=coordination_url, scheduler="reverse")
    units.add(pilots)
    start(pilots, tmp_path / "p", 1)

    submitted = units.submit([sleeper(0.1) for _ in range(4)])
    units.wait(60)

    assert [u.state for u in submitted] == [State.Done] * 4

    def started(unit: troy.WorkUnit) -> float:
        return next(ts for state, ts in unit.history if state == State.Running)

    by_start = sorted(submitted, key=started)
    assert [u.id for u in by_start] == [u.id for u in reversed(submitted)]
    units.close()


def test_rebalancing_moves_queued_units_to_an_idle_pilot_and_none_runs_twice(
    pilots: troy.PilotJobService, coordination_url: str, tmp_path: Path
) -> None:
    units = troy.WorkUnitService(coordination=coordination_url, scheduler="rebalancing")
    units.add(pilots)
    busy = start(pilots, tmp_path / "a", 1, affinity_machine_label="a")
    idle = start(pilots, tmp_path / "b", 2, affinity_machine_label="b")
    marks = tmp_path / "marks"
    marks.mkdir()
    assert busy.handle is not None
    os.kill(busy.handle["pid"], signal.SIGSTOP)  # its agent claims nothing: units stay queued
    try:
        submitted = units.submit([sleeper(0.1, marks, n) for n in range(6)])
        assert {u.pilot for u in submitted} == {busy.id}
        wait_until(
            lambda: sum(u.pilot == idle.id and u.state == State.Done for u in submitted) >= 2,
            30,
            "units moved to the idle pilot and run there",
        )
    finally:
        os.kill(busy.handle["pid"], signal.SIGCONT)
    units.wait(60)

    assert [u.state for u in submitted] == [State.Done] * 6
    runs = {n: (marks / str(n)).read_text().splitlines() for n in range(6)}
    assert runs == {n: ["ran"] for n in range(6)}, f"a unit ran twice or never: {runs}"
    assert any(u.pilot == idle.id for u in submitted)
    units.close()


def test_scheduler_options_are_recorded_with_the_service(coordination_url: str) -> None:
    units = troy.WorkUnitService(
        coordination=coordination_url, scheduler="round_robin", scheduler_options={"seed": 3}
    )
    with troy.WorkUnitService(id=units.id, coordination=coordination_url) as again:
        assert again.scheduler == "round_robin"
        assert again.scheduler_options == {"seed": 3}
        assert again._manager.scheduler.seed == 3
    units.close()


def test_an_unknown_option_is_refused_and_no_service_is_recorded(coordination_url: str) -> None:
    with pytest.raises(BadDescription) as error:
        troy.WorkUnitService(
            coordination=coordination_url,
            scheduler="round_robin",
            scheduler_options={"speed": 2},
        )
    assert error.value.field == "scheduler_options.speed"
    assert "scheduler 'round_robin' has no option 'speed'" in str(error.value)
    coordination = open_coordination(coordination_url, serve=True)
    try:
        kinds = [coordination.get_record(key) for key in coordination.list_records("service")]
    finally:
        coordination.close()
    assert not [r for r in kinds if r and r.get("kind") == "workunit"], kinds


def test_next_call_brings_a_call_without_any_event(
    pilots: troy.PilotJobService, coordination_url: str, tmp_path: Path
) -> None:
    LaterScheduler.calls.clear()
    units = troy.WorkUnitService(coordination=coordination_url, scheduler="later")
    units.add(pilots)
    start(pilots, tmp_path / "p", 2)
    time.sleep(0.5)  # the monitor has seen the pilot start: no pilot event is left to come

    submitted = units.submit([{"executable": "/bin/true"} for _ in range(3)])
    assert [u.state for u in submitted] == [State.New] * 3
    units.wait(30)

    assert [u.state for u in submitted] == [State.Done] * 3
    first, second = LaterScheduler.calls[:2]
    assert second - first >= 0.3
    units.close()
