"""Built-in strategies on real pilots: what a strategy decides is what the agent runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import troy
from troy import State
from troy.testing.backends import wait_until


@pytest.fixture
def shortest_first(coordination_url: str) -> Iterator[troy.WorkUnitService]:
    service = troy.WorkUnitService(coordination=coordination_url, scheduler="shortest_first")
    yield service
    service.close()


def test_shortest_first_starts_the_waiting_units_shortest_first(
    pilots: troy.PilotJobService, shortest_first: troy.WorkUnitService, tmp_path: Path
) -> None:
    shortest_first.add(pilots)
    pilots.create(
        "fork://localhost", {"number_of_processes": 1, "working_directory": str(tmp_path / "p")}
    )
    blocker = shortest_first.submit({"executable": "/bin/sleep", "arguments": ["3"]})
    wait_until(lambda: blocker.state == State.Running, 30, "the first unit Running")

    # Submitted one at a time, longest estimate first, while the only slot is busy.
    waiting = {
        runtime: shortest_first.submit(
            {"executable": "/bin/sleep", "arguments": ["0.2"], "hints": {"runtime": runtime}}
        )
        for runtime in (30, 10, 20)
    }
    assert blocker.state == State.Running, "the slot freed before the units were all submitted"
    assert {unit.state for unit in waiting.values()} == {State.New}

    shortest_first.wait(timeout=60)
    assert {unit.state for unit in waiting.values()} == {State.Done}
    starts = {runtime: unit.timestamp(State.Running) for runtime, unit in waiting.items()}
    assert None not in starts.values()
    assert sorted(starts, key=lambda runtime: starts[runtime] or 0.0) == [10, 20, 30]
