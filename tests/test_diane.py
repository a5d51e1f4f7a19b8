"""The diane backend's late binding: workers pull tasks when free; a lost worker loses none."""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from troy import PilotJobService, State, WorkUnitService
from troy.core import protocol
from troy.testing.backends import wait_until

#: A unit that sleeps BASE seconds times the worker's $SLOW factor.
SLEEP = ["-c", 'sleep "$(awk "BEGIN { print $BASE * ${SLOW:-1} }")"']


@pytest.fixture
def services(coordination_url: str) -> Iterator[tuple[PilotJobService, WorkUnitService]]:
    pilots = PilotJobService(coordination=coordination_url)
    units = WorkUnitService(coordination=coordination_url)
    units.add(pilots)
    yield pilots, units
    pilots.cancel()
    units.close()
    pilots.close()


def worker(pilots: PilotJobService, tmp_path: Path, name: str, slow: int = 1) -> str:
    pilot = pilots.create(
        "fork://localhost",
        {
            "number_of_processes": 1,
            "working_directory": str(tmp_path / name),
            "environment": {"SLOW": str(slow)},
        },
        "diane",
    )
    assert pilot.queue == protocol.task_queue(pilots.id)
    return pilot.id


def test_a_slow_worker_takes_fewer_tasks(
    services: tuple[PilotJobService, WorkUnitService], tmp_path: Path
) -> None:
    pilots, units = services
    fast = worker(pilots, tmp_path, "fast")
    slow = worker(pilots, tmp_path, "slow", slow=8)
    tasks = units.submit(
        [{"executable": "/bin/sh", "arguments": SLEEP, "environment": {"BASE": "0.05"}}] * 24
    )
    units.wait(timeout=60)
    assert {task.state for task in tasks} == {State.Done}
    ran = Counter(task.pilot for task in tasks)
    # Round robin placed half "on" each worker; the workers themselves decided.
    assert ran[fast] + ran[slow] == 24
    assert ran[fast] >= 2 * ran[slow], ran


def test_killing_a_worker_mid_run_loses_no_task(
    services: tuple[PilotJobService, WorkUnitService], tmp_path: Path
) -> None:
    pilots, units = services
    doomed = worker(pilots, tmp_path, "doomed")
    survivor = worker(pilots, tmp_path, "survivor")
    tasks = units.submit(
        [{"executable": "/bin/sh", "arguments": SLEEP, "environment": {"BASE": "0.3"}}] * 8
    )
    wait_until(
        lambda: any(t.state == State.Running and t.pilot == doomed for t in tasks),
        30,
        "a task running on the doomed worker",
    )
    victim = next(t for t in tasks if t.state == State.Running and t.pilot == doomed)
    handle = pilots.get_pilot(doomed).handle
    assert handle is not None
    os.kill(handle["worker"]["pid"], signal.SIGKILL)
    units.wait(timeout=60)
    assert [task.state for task in tasks] == [State.Done] * 8, [t.state_detail for t in tasks]
    assert pilots.get_pilot(doomed).state == State.Failed
    assert victim.pilot == survivor
    assert [attempt["kind"] for attempt in victim.tries] == ["lost"]
