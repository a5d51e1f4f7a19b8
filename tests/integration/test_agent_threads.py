"""The agent's threads grow with the units it runs, not with its slots (issue 17).

A pilot of 100,000 slots used to start 100,000 threads (and die of MemoryError
at 10**8); now it starts with a handful, makes one per unit running, and its
idle workers end.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

import troy
from troy import State
from troy.agent.slots import Job, SlotPool
from troy.plugins.registry import open_coordination
from troy.testing.backends import running_local_pilot, wait_until

#: Threads an idle agent may have: main, reporter helpers, guard, coordination's own.
HANDFUL = 16


def agent_threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs /proc")
def test_a_pilot_of_100000_slots_starts_a_handful_of_threads_and_runs_units_in_parallel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TROY_LIMITS", "slots=100000")  # the agent inherits it
    url = (tmp_path / "coordination").as_uri()
    pilots = troy.PilotJobService(coordination=url)
    units = troy.WorkUnitService(coordination=url)
    coordination = open_coordination(url)
    try:
        units.add(pilots)
        _, pid = running_local_pilot(pilots, coordination, tmp_path / "pilot", 100_000)
        time.sleep(0.5)
        idle = agent_threads(pid)
        assert idle <= HANDFUL, idle

        # 40 units at once: all run together, one thread each (not one per slot).
        marks = tmp_path / "marks"
        marks.mkdir()
        submitted = units.submit(
            [
                {
                    "executable": "/bin/sh",
                    "arguments": ["-c", f"touch {marks}/$0; sleep 3", str(n)],
                }
                for n in range(40)
            ]
        )
        wait_until(lambda: len(os.listdir(marks)) == 40, 30, "40 units running at once")
        busy = agent_threads(pid)
        assert 40 <= busy <= 40 + HANDFUL, busy
        units.wait(timeout=60)
        assert [u.state for u in submitted] == [State.Done] * 40
    finally:
        pilots.cancel()
        pilots.close()
        units.close()
        coordination.close()


class Runs:
    """run(job) for a SlotPool: each job blocks until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started: list[str] = []

    def __call__(self, job: Job) -> None:
        self.started.append(job.id)
        self.release.wait(10)


def test_workers_are_made_as_jobs_start_capped_by_running_jobs_and_idle_ones_end() -> None:
    runs = Runs()
    before = threading.active_count()
    pool = SlotPool(1_000_000, runs, low_water=0, hungry=threading.Event(), idle_exit=0.3)
    pool.start()
    try:
        assert pool.threads == 0
        assert threading.active_count() == before
        # Two units of 400,000 slots and three of one: one thread each.
        pool.add([Job("big1", "s", {}, 0, 400_000), Job("big2", "s", {}, 0, 400_000)])
        pool.add([Job(f"one{n}", "s", {}, 0, 1) for n in range(3)])
        wait_until(lambda: len(runs.started) == 5, 10, "five jobs running")
        assert pool.busy == 800_003
        assert pool.threads == 5
        runs.release.set()
        wait_until(lambda: pool.busy == 0, 10, "the jobs to end")
        wait_until(lambda: pool.threads == 0, 10, "idle workers to end")
        # After they ended, new jobs make new workers.
        pool.add([Job(f"late{n}", "s", {}, 0, 1) for n in range(4)])
        wait_until(lambda: len(runs.started) == 9, 10, "four more jobs")
    finally:
        runs.release.set()
        pool.close(timeout=5)
    assert pool.threads == 0


def test_a_job_that_does_not_fit_waits_without_a_thread_and_starts_when_slots_free() -> None:
    runs = Runs()
    pool = SlotPool(4, runs, low_water=0, hungry=threading.Event(), idle_exit=0.2)
    pool.start()
    try:
        pool.add([Job("a", "s", {}, 0, 3)])
        wait_until(lambda: runs.started == ["a"], 10, "a to start")
        pool.add([Job("b", "s", {}, 0, 4)])
        time.sleep(0.6)  # longer than idle_exit: a worker that waited for b has ended
        assert runs.started == ["a"] and pool.threads == 1
        runs.release.set()
        wait_until(lambda: runs.started == ["a", "b"], 10, "b to start once a ended")
    finally:
        runs.release.set()
        pool.close(timeout=5)
