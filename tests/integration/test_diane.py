"""The diane backend's late binding: workers pull tasks when free; a lost worker loses none."""

from __future__ import annotations

import os
import signal
from collections import Counter
from pathlib import Path

from troy import PilotJobService, State, WorkUnitService
from troy.model import protocol
from troy.testing.backends import wait_until

#: A unit that sleeps BASE seconds times the worker's $SLOW factor.
SLEEP = ["-c", 'sleep "$(awk "BEGIN { print $BASE * ${SLOW:-1} }")"']


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


def test_canceling_one_worker_runs_every_task_exactly_once(
    services: tuple[PilotJobService, WorkUnitService], tmp_path: Path
) -> None:
    # Units nominally placed on the canceled worker may already be claimed by the other
    # one: they must neither be lost nor run twice.
    pilots, units = services
    leaving = worker(pilots, tmp_path, "leaving")
    worker(pilots, tmp_path, "staying")
    log = tmp_path / "ran.log"
    tasks = units.submit(
        [
            {"executable": "/bin/sh", "arguments": ["-c", f"sleep 0.15; echo {n} >> {log}"]}
            for n in range(16)
        ]
    )
    wait_until(lambda: sum(t.state == State.Done for t in tasks) >= 3, 30, "3 tasks Done")
    pilots.get_pilot(leaving).cancel()
    units.wait(timeout=90)
    done = [str(n) for n, task in enumerate(tasks) if task.state == State.Done]
    canceled = [task for task in tasks if task.state == State.Canceled]
    # Canceling a worker cancels the one task it was running (as for any pilot); every
    # other task runs on the staying worker, and none runs twice.
    assert len(done) + len(canceled) == 16
    assert len(canceled) <= 1, [t.state_detail for t in canceled]
    assert all(task.pilot == leaving for task in canceled)
    assert sorted(log.read_text().split(), key=int) == done


def test_a_unit_another_worker_claimed_survives_the_end_of_its_nominal_pilot(
    services: tuple[PilotJobService, WorkUnitService], tmp_path: Path, coordination_url: str
) -> None:
    """The scheduler names a pilot, but any worker of the shared queue may claim the unit.

    Here the named worker never starts (its wrapper only sleeps), a stand-in worker
    claims one unit from the shared queue, and the named worker is canceled: the claimed
    unit must wait for its claimer's reports, not be canceled under it.
    """
    from troy.plugins import registry

    pilots, units = services
    named = pilots.create(
        "fork://localhost",
        {
            "working_directory": str(tmp_path / "named"),
            "executable": "/bin/sh",
            "arguments": ["-c", "exec sleep 300", "wrapper"],
        },
        "diane",
    )
    claimed, waiting = units.submit([{"executable": "/bin/true"}] * 2)
    assert (claimed.pilot, waiting.pilot) == (named.id, named.id)
    other = registry.open_coordination(coordination_url)
    try:
        [item] = other.claim(named.queue, "stand-in-worker", 1)
        assert item["id"] == claimed.id
        named.cancel()
        wait_until(lambda: waiting.state == State.Canceled, 30, "the unclaimed unit Canceled")
        assert claimed.state == State.Pending  # its claimer may still report it
        service = protocol.service_key(units.id)
        for state in ("Running", "Done"):
            event = protocol.unit_state_event(claimed.id, state, claimed.attempt, pilot="stand-in")
            other.append(service, [event])
        assert claimed.wait(timeout=30) == State.Done
        assert claimed.pilot == "stand-in" and not claimed.tries
    finally:
        other.close()
