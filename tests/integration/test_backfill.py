"""The agent's SlotPool: FIFO while units fit, backfill behind a waiting large unit, no starvation.

The pool tests run fake jobs that each hold their slots until the test releases
them.  A worker gives back a job's slots and picks the next job in one step
under the pool's lock, so once ``busy`` shows the slots given back, the pool has
decided, and a job that did not start then will not start by itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import troy
from troy import State
from troy.agent import slots
from troy.agent.slots import BACKFILL_DEPTH, BACKFILL_WINDOW, Job, SlotPool
from troy.testing.backends import wait_until

TIMEOUT = 10.0


class FakeRuns:
    """A pool's run function: records which jobs started, in order; each holds its
    slots until released."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.granted: dict[str, int] = {}
        self._lock = threading.Condition()
        self._releases: dict[str, threading.Event] = {}

    def _release_of(self, job_id: str) -> threading.Event:
        with self._lock:
            return self._releases.setdefault(job_id, threading.Event())

    def __call__(self, job: Job) -> None:
        with self._lock:
            self.started.append(job.id)
            self.granted[job.id] = job.granted
            self._lock.notify_all()
        self._release_of(job.id).wait()

    def release(self, *job_ids: str) -> None:
        for job_id in job_ids:
            self._release_of(job_id).set()

    def release_all(self) -> None:
        with self._lock:
            known = set(self._releases) | set(self.started)
        self.release(*known)

    def wait_started(self, count: int) -> list[str]:
        """The jobs started once there are ``count`` (fails after TIMEOUT)."""
        with self._lock:
            assert self._lock.wait_for(lambda: len(self.started) >= count, TIMEOUT), (
                f"only {self.started} started, waited for {count}"
            )
            return list(self.started)


class Clock:
    """Stands in for time.monotonic in troy.agent.slots: moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(slots, "monotonic", fake)
    return fake


PoolFactory = Callable[..., tuple[SlotPool, FakeRuns]]


@pytest.fixture
def make_pool() -> Iterator[PoolFactory]:
    made: list[tuple[SlotPool, FakeRuns]] = []

    def make(slot_count: int, **options: float) -> tuple[SlotPool, FakeRuns]:
        runs = FakeRuns()
        pool = SlotPool(slot_count, runs, low_water=0, hungry=threading.Event(), **options)
        pool.start()
        made.append((pool, runs))
        return pool, runs

    yield make
    for pool, runs in made:
        pool.drain()
        runs.release_all()
        pool.close(timeout=TIMEOUT)


def job(job_id: str, cores: int = 1, max_cores: int = 0) -> Job:
    return Job(job_id, "svc", {}, 0, cores, max_cores=max_cores)


def ones(prefix: str, count: int) -> list[Job]:
    return [job(f"{prefix}{n}") for n in range(1, count + 1)]


def settled(pool: SlotPool, busy: int) -> None:
    """Wait until ``busy`` slots are in use: the pool has decided what to start."""
    wait_until(lambda: pool.busy == busy, TIMEOUT, f"{busy} busy slots (now {pool.busy})")


# -- FIFO ------------------------------------------------------------------------------------------


def test_units_start_in_claim_order_while_they_fit(make_pool: PoolFactory) -> None:
    pool, runs = make_pool(1)
    pool.add(ones("a", 5))
    for n in range(1, 6):
        assert runs.wait_started(n)[-1] == f"a{n}"
        runs.release(f"a{n}")
    settled(pool, 0)
    assert runs.started == ["a1", "a2", "a3", "a4", "a5"]


def test_multi_slot_units_that_fit_keep_their_order(make_pool: PoolFactory) -> None:
    pool, runs = make_pool(4)
    pool.add([job("a", 2), job("b", 1), job("c", 1), job("d", 3)])
    assert runs.wait_started(3) == ["a", "b", "c"]
    runs.release("a")
    settled(pool, 2)  # d (3) does not fit in the 2 free slots, and nothing is behind it
    runs.release("b")
    assert runs.wait_started(4) == ["a", "b", "c", "d"]
    assert runs.granted == {"a": 2, "b": 1, "c": 1, "d": 3}


def test_a_window_of_zero_is_strict_fifo(make_pool: PoolFactory, clock: Clock) -> None:
    pool, runs = make_pool(4, backfill_window=0.0)
    pool.add(ones("a", 3))
    runs.wait_started(3)
    pool.add([job("big", 4), *ones("b", 3)])
    runs.release("a1")
    settled(pool, 2)
    assert pool.waiting == 4
    runs.release("a2", "a3")
    assert runs.wait_started(4)[-1] == "big"


# -- backfill --------------------------------------------------------------------------------------


def test_small_units_start_while_a_large_one_waits(make_pool: PoolFactory, clock: Clock) -> None:
    pool, runs = make_pool(4)
    assert pool.backfill_window == BACKFILL_WINDOW
    pool.add(ones("a", 3))
    runs.wait_started(3)
    pool.add([job("big", 4), *ones("b", 2)])
    assert runs.wait_started(4)[-1] == "b1"  # the free slot: b1 passes big
    runs.release("b1")
    assert runs.wait_started(5)[-1] == "b2"
    runs.release("a1", "b2")
    settled(pool, 2)  # nothing small is left to pass big, which needs 4
    assert pool.waiting == 1
    runs.release("a2", "a3")
    assert runs.wait_started(6)[-1] == "big"
    assert runs.granted["big"] == 4


def test_after_the_window_nothing_passes_and_the_slots_drain_to_the_head(
    make_pool: PoolFactory, clock: Clock
) -> None:
    pool, runs = make_pool(4)
    pool.add(ones("a", 3))
    runs.wait_started(3)
    pool.add([job("big", 4), *ones("b", 4)])
    assert runs.wait_started(4)[-1] == "b1"  # passed over: the window opens
    clock.now += BACKFILL_WINDOW - 0.01
    runs.release("b1")
    assert runs.wait_started(5)[-1] == "b2"  # still inside the window
    clock.now += 0.01
    runs.release("b2")
    settled(pool, 3)  # the window has closed: b3 and b4 wait behind big
    runs.release("a1", "a2")
    settled(pool, 1)
    assert pool.waiting == 3
    runs.release("a3")
    assert runs.wait_started(6)[-1] == "big"
    runs.release("big")
    assert sorted(runs.wait_started(8)[-2:]) == ["b3", "b4"]


def test_each_new_head_gets_a_window_of_its_own(make_pool: PoolFactory, clock: Clock) -> None:
    pool, runs = make_pool(3)
    pool.add(ones("a", 2))
    runs.wait_started(2)
    pool.add([job("big", 2), job("b"), job("huge", 3), job("c")])
    assert runs.wait_started(3)[-1] == "b"
    clock.now += BACKFILL_WINDOW
    runs.release("a1")
    settled(pool, 2)  # big's window has closed
    runs.release("b")
    assert runs.wait_started(4)[-1] == "big"
    runs.release("a2")  # huge is the head now, never passed over: c may pass it
    assert runs.wait_started(5)[-1] == "c"
    assert pool.waiting == 1


def test_canceling_a_waiting_head_lets_the_units_behind_it_start(
    make_pool: PoolFactory, clock: Clock
) -> None:
    pool, runs = make_pool(2)
    pool.add([job("a")])
    runs.wait_started(1)
    pool.add([job("big", 2), job("b"), job("c")])
    assert runs.wait_started(2)[-1] == "b"
    clock.now += BACKFILL_WINDOW
    runs.release("b")
    settled(pool, 1)
    assert [j.id for j in pool.remove({"big"})] == ["big"]
    assert runs.wait_started(3)[-1] == "c"


def test_the_scan_behind_the_head_is_bounded(make_pool: PoolFactory, clock: Clock) -> None:
    pool, runs = make_pool(3)
    pool.add(ones("a", 2))
    runs.wait_started(2)
    too_big = [job(f"x{n}", 3) for n in range(BACKFILL_DEPTH)]
    pool.add([job("head", 3), *too_big, job("far")])  # far is BACKFILL_DEPTH + 1 behind
    runs.release("a1")
    settled(pool, 1)
    assert pool.waiting == BACKFILL_DEPTH + 2
    assert [j.id for j in pool.remove({"x0"})] == ["x0"]  # far is now within reach
    assert runs.wait_started(3)[-1] == "far"


# -- ranged units ----------------------------------------------------------------------------------


def test_a_ranged_unit_takes_the_free_slots_up_to_its_max(
    make_pool: PoolFactory, clock: Clock
) -> None:
    pool, runs = make_pool(4)
    pool.add([job("wide", 1, 8)])
    runs.wait_started(1)
    assert runs.granted["wide"] == 4
    assert pool.busy == 4  # pull-mode agents claim slots - busy - waiting: none now
    runs.release("wide")
    settled(pool, 0)
    pool.add([job("narrow", 2, 3)])
    runs.wait_started(2)
    assert runs.granted["narrow"] == 3
    pool.add([job("a"), job("wide2", 1, 8)])
    assert runs.wait_started(3)[-1] == "a"
    assert pool.waiting == 1  # no slot is free for even its minimum
    runs.release("narrow")
    assert runs.wait_started(4)[-1] == "wide2"
    assert runs.granted["wide2"] == 3
    runs.release("a", "wide2")
    settled(pool, 0)  # every granted slot came back


def test_ranged_units_start_with_their_minimum_and_backfill_with_what_is_free(
    make_pool: PoolFactory, clock: Clock
) -> None:
    pool, runs = make_pool(4)
    pool.add(ones("a", 3))
    runs.wait_started(3)
    pool.add([job("wide", 1, 8)])  # at the head: its minimum fits, it takes the one free slot
    assert runs.wait_started(4)[-1] == "wide"
    assert runs.granted["wide"] == 1
    runs.release("a1", "a2")
    settled(pool, 2)
    pool.add([job("big", 4), job("two", 2, 8), job("three", 3)])
    assert runs.wait_started(5)[-1] == "two"  # passes big, takes the 2 free slots
    assert runs.granted["two"] == 2
    assert pool.busy == 4
    runs.release("two")
    settled(pool, 2)  # three does not fit in 2
    clock.now += BACKFILL_WINDOW
    runs.release("a3")
    settled(pool, 1)  # three would fit in 3 now, but big's window has closed
    runs.release("wide")
    assert runs.wait_started(6)[-1] == "big"
    runs.release("big")
    assert runs.wait_started(7)[-1] == "three"


# -- live ------------------------------------------------------------------------------------------


def test_on_a_live_pilot_small_units_backfill_and_the_large_one_is_not_starved(
    pilots: troy.PilotJobService, units: troy.WorkUnitService, tmp_path: Path
) -> None:
    units.add(pilots)
    pilots.create(
        "fork://localhost",
        {"number_of_processes": 4, "working_directory": str(tmp_path / "pilot")},
    )
    first_sleep, last_sleep = 1.0, 0.1
    first = [{"executable": "/bin/sleep", "arguments": [str(first_sleep)]}] * 4
    large = [{"executable": "/bin/true", "cores": 4}]
    last = [{"executable": "/bin/sleep", "arguments": [str(last_sleep)]}] * 8
    submitted = units.submit(first + large + last)  # one bulk submit: queued in this order
    units.wait(timeout=120)
    assert [u.state for u in submitted] == [State.Done] * 13
    ones_first, wide, ones_last = submitted[:4], submitted[4], submitted[5:]

    def running(unit: troy.WorkUnit) -> float:
        ts = unit.timestamp(State.Running)
        assert ts is not None
        return ts

    def done(unit: troy.WorkUnit) -> float:
        ts = unit.timestamp(State.Done)
        assert ts is not None
        return ts

    # Backfill: the large unit waits for 4 free slots; the first slot freed goes
    # to a small unit behind it (strict FIFO would start the large one first).
    assert min(running(u) for u in ones_last) < running(wide)
    # No starvation: the large unit was first passed over when a first unit ended;
    # it starts before the small ones have all ended, or at most a window and the
    # longest unit after that (the slack is for process starts on a loaded machine).
    passed_over = min(done(u) for u in ones_first)
    slack = 5.0
    assert running(wide) < max(done(u) for u in ones_last) or (
        running(wide) - passed_over <= BACKFILL_WINDOW + first_sleep + slack
    )


def test_promised_slots_count_what_waiting_units_need(make_pool: PoolFactory, clock: Clock) -> None:
    # A pull-mode agent (diane worker) claims one unit per slot that is neither busy nor
    # promised: a waiting 3-slot unit must stop it from claiming 3 more small ones.
    pool, _ = make_pool(4, backfill_window=0)
    pool.add([job("a", 2)])
    settled(pool, 2)
    pool.add([job("big", 3), job("ranged", 1, max_cores=4)])
    settled(pool, 2)
    assert pool.waiting == 2
    assert pool.promised == 3 + 1  # a range promises its minimum
    assert max(0, pool.slots - pool.busy - pool.promised) == 0  # nothing more to claim
