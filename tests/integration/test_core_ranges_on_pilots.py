"""Ranged ``cores`` on a real local pilot: the agent grants what is free and says so.

The attribute, slot counting and the unit's environment are in tests/unit/test_core_ranges.py.
"""

from __future__ import annotations

from pathlib import Path

import troy
from troy import State
from troy.testing.backends import wait_until


def four_slot_pilot(pilots: troy.PilotJobService, tmp_path: Path) -> troy.PilotJob:
    return pilots.create(
        "fork://localhost",
        {"number_of_processes": 4, "working_directory": str(tmp_path / "pilot")},
    )


def said(unit: troy.WorkUnit) -> str:
    assert unit.sandbox is not None
    return Path(unit.sandbox, "stdout").read_text().strip()


ECHO_CORES = {"executable": "/bin/sh", "arguments": ["-c", "echo $TROY_CORES"]}


def test_a_ranged_unit_on_an_idle_pilot_takes_every_slot_up_to_its_max(
    pilots: troy.PilotJobService, units: troy.WorkUnitService, tmp_path: Path
) -> None:
    units.add(pilots)
    four_slot_pilot(pilots, tmp_path)
    ranged, exact = units.submit(
        [{**ECHO_CORES, "cores": {"min": 1, "max": 8}}, {**ECHO_CORES, "cores": "2"}]
    )
    units.wait(timeout=60)
    assert (ranged.state, exact.state) == (State.Done, State.Done)
    assert said(ranged) == "4"
    assert said(exact) == "2"


def test_a_ranged_unit_on_a_busy_pilot_takes_what_is_free(
    pilots: troy.PilotJobService, units: troy.WorkUnitService, tmp_path: Path
) -> None:
    units.add(pilots)
    four_slot_pilot(pilots, tmp_path)
    sleepers = units.submit([{"executable": "/bin/sleep", "arguments": ["60"]}] * 3)
    wait_until(
        lambda: all(u.state == State.Running for u in sleepers), 60, "three sleepers running"
    )
    ranged = units.submit({**ECHO_CORES, "cores": {"min": 1, "max": 8}})
    assert ranged.wait(timeout=60) == State.Done
    assert said(ranged) == "1"
    units.cancel()
    units.wait(timeout=30)


def test_a_unit_whose_minimum_no_pilot_has_fails_at_once(
    pilots: troy.PilotJobService, units: troy.WorkUnitService, tmp_path: Path
) -> None:
    units.add(pilots)
    four_slot_pilot(pilots, tmp_path)
    four_slot_pilot(pilots, tmp_path / "other")
    unit = units.submit({**ECHO_CORES, "cores": {"min": 8, "max": 16}})
    assert unit.state == State.Failed  # decided at submit, nothing waits
    assert unit.state_detail == "needs 8 slots; the largest pilot has 4"
    assert unit.exit_code is None
