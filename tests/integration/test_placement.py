"""Placement invariants of the unit manager, checked in the coordination queues themselves."""

from __future__ import annotations

import os
import signal
from collections import Counter
from pathlib import Path

import troy
from troy import State
from troy.model import protocol
from troy.plugins.registry import open_coordination
from troy.testing.backends import wait_until


def test_a_unit_is_queued_once_however_often_placement_runs(
    pilots: troy.PilotJobService,
    units: troy.WorkUnitService,
    tmp_path: Path,
    coordination_url: str,
) -> None:
    units.add(pilots)
    pilot = pilots.create(
        "fork://localhost", {"number_of_processes": 1, "working_directory": str(tmp_path / "p")}
    )
    wait_until(lambda: pilot.state == State.Running, 30, "pilot Running")
    assert pilot.handle is not None
    os.kill(pilot.handle["pid"], signal.SIGSTOP)  # the agent claims nothing while we look
    try:
        submitted = units.submit([{"executable": "/bin/true"} for _ in range(100)])
        manager = units._manager
        for _ in range(3):  # as the monitor does when pilots change
            manager.placement.place(submitted)
        coordination = open_coordination(coordination_url)
        items = coordination.claim(protocol.pilot_key(pilot.id), "inspector", 10_000)
        coordination.close()
    finally:
        os.kill(pilot.handle["pid"], signal.SIGCONT)
    counts = Counter(item["id"] for item in items)
    assert sorted(counts) == sorted(u.id for u in submitted)
    assert set(counts.values()) == {1}
    assert {u.state for u in submitted} == {State.Pending}


def test_state_read_before_its_unit_event_is_kept_until_the_unit_appears(
    units: troy.WorkUnitService,
) -> None:
    # Writers' files are read in any order: an agent's report may come first.
    unit_id = f"{units.id}.7"
    running = protocol.unit_state_event(unit_id, "Running", 0, ts=2.0, pilot="pilot-x")
    done = protocol.unit_state_event(unit_id, "Done", 0, ts=3.0, exit=0)
    submitted = {
        "ev": "unit",
        "id": unit_id,
        "d": {"executable": "/bin/true"},
        "ts": 1.0,
        "state": protocol.unit_state_event(unit_id, "Pending", 0, ts=1.5, pilot="pilot-x"),
    }
    manager = units._manager
    manager._apply([running, done])
    assert [u.id for u in units.list()] == []
    manager._apply([submitted])
    unit = units.get_unit(unit_id)
    assert unit.state == State.Done
    assert [s for s, _ in unit.history] == [State.New, State.Pending, State.Running, State.Done]
    assert (unit.exit_code, unit.pilot) == (0, "pilot-x")
    unit.wait(timeout=5)
    assert units.submit({"executable": "/bin/true"}).id == f"{units.id}.8"
