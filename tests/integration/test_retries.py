"""`retries`: a unit that fails runs again, up to that many times; its history is kept."""

from __future__ import annotations

from pathlib import Path

import troy
from troy import State


def flaky(counter: Path, succeed_on: int) -> dict[str, object]:
    """A unit that fails until its `succeed_on`-th run (counting in a file)."""
    script = (
        f"n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}; "
        f'[ "$n" -ge {succeed_on} ] || exit 3'
    )
    return {"executable": "/bin/sh", "arguments": ["-c", script]}


def one_slot_pilot(pilots: troy.PilotJobService, units: troy.WorkUnitService, path: Path) -> None:
    units.add(pilots)
    pilots.create("fork://localhost", {"number_of_processes": 1, "working_directory": str(path)})


def test_failing_unit_runs_again_until_it_succeeds(
    pilots: troy.PilotJobService, units: troy.WorkUnitService, tmp_path: Path
) -> None:
    one_slot_pilot(pilots, units, tmp_path)
    counter = tmp_path / "runs"
    unit = units.submit({**flaky(counter, succeed_on=3), "retries": 2})
    details: list[object] = []
    unit.set_callback("state_detail", lambda obj, member, value: details.append(value))
    assert unit.wait(timeout=60) == State.Done
    assert counter.read_text().strip() == "3"
    assert unit.attempt == 2
    assert [(t["a"], t["kind"], t["why"]) for t in unit.tries] == [
        (0, "failed", "exit code 3"),
        (1, "failed", "exit code 3"),
    ]
    assert unit.state_detail == "done (earlier: attempt 1: exit code 3; attempt 2: exit code 3)"
    states = [s for s, _ in unit.history]
    assert states.count(State.Done) == 1 and states.count(State.Failed) == 0
    assert states[-3:] == [State.Pending, State.Running, State.Done]


def test_unit_that_keeps_failing_is_failed_with_its_history(
    pilots: troy.PilotJobService, units: troy.WorkUnitService, tmp_path: Path
) -> None:
    one_slot_pilot(pilots, units, tmp_path)
    counter = tmp_path / "runs"
    unit = units.submit({**flaky(counter, succeed_on=99), "retries": 1})
    assert unit.wait(timeout=60) == State.Failed
    assert counter.read_text().strip() == "2"
    assert unit.exit_code == 3
    assert unit.state_detail == "exit code 3 (earlier: attempt 1: exit code 3)"


def test_without_retries_a_failure_is_final(
    pilots: troy.PilotJobService, units: troy.WorkUnitService, tmp_path: Path
) -> None:
    one_slot_pilot(pilots, units, tmp_path)
    counter = tmp_path / "runs"
    unit = units.submit(flaky(counter, succeed_on=2))
    assert unit.wait(timeout=60) == State.Failed
    assert counter.read_text().strip() == "1"
    assert unit.tries == [] and unit.state_detail == "exit code 3"


def test_retries_must_be_a_count() -> None:
    import pytest

    with pytest.raises(troy.BadDescription, match="retries"):
        troy.WorkUnitDescription(executable="/bin/true", retries=-1)
