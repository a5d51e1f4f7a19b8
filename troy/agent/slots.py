"""The agent's slots: a backlog of claimed units and worker threads that run them.

A worker thread runs one unit at a time, whatever its slot count, so the
threads grow with the units running, never with the slots: a pilot of 100,000
slots starts with none and makes one more only when a unit can start and no
worker is idle (at most one per slot); a worker idle for ``IDLE_EXIT``
seconds ends.  A worker that finishes a unit takes the next one itself,
without a round trip through the dispatcher, so the slots stay busy at the
rate processes can be launched.  Units start in the order they were claimed while they fit.  When
the unit at the head needs more slots than are free, later units that fit in
the free slots start first (backfill), but only for ``backfill_window``
seconds from the moment the head was first passed over: after that nothing
passes it and the slots drain to it, so a large unit is never starved.  A
ranged unit (``cores`` with a min and a max) starts once its minimum is free
and takes as many free slots as it can use.
"""

from __future__ import annotations

import collections
import itertools
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from time import monotonic
from typing import Any

#: Seconds the head of the backlog may be passed over by later units that fit.
BACKFILL_WINDOW = 2.0
#: How many units behind the head a worker looks at for one that fits (bounds the scan).
BACKFILL_DEPTH = 64
#: Seconds a worker thread with nothing to start waits before it ends.
IDLE_EXIT = 10.0


@dataclass(slots=True)
class Job:
    """A claimed unit and the slots it needs."""

    id: str
    service: str
    description: dict[str, Any]
    attempt: int
    #: The fewest slots it can start on.
    cores: int
    #: Earlier attempts that did not count (see troy.model.retry).
    tries: list[dict[str, Any]] = field(default_factory=list)
    #: The most slots it can use (a ranged unit); 0 (or ``cores``): exactly ``cores``.
    max_cores: int = 0
    #: The slots it holds: set when it starts, given back when it ends.
    granted: int = 0


class SlotPool:
    """Runs jobs with ``run(job)`` in worker threads (one per running job), counting slots.

    ``backfill_window`` (seconds) may be changed before or while it runs.
    """

    def __init__(
        self,
        slots: int,
        run: Callable[[Job], None],
        low_water: int,
        hungry: threading.Event,
        backfill_window: float = BACKFILL_WINDOW,
        idle_exit: float = IDLE_EXIT,
    ) -> None:
        self.slots = slots
        self._run = run
        self._free = slots
        self._backlog: collections.deque[Job] = collections.deque()
        self._cond = threading.Condition()
        self._closing = False
        self._low_water = low_water
        #: Seconds the head of the backlog may be passed over (0: strict FIFO).
        self.backfill_window = backfill_window
        #: The head last passed over by a later job, and since when (monotonic()).
        self._passed: Job | None = None
        self._passed_since = 0.0
        #: Set when the backlog runs low: time to claim more.
        self.hungry = hungry
        #: The worker threads alive, and how many of them wait for a job to start.
        self._threads: set[threading.Thread] = set()
        self._idle = 0
        #: Workers made and not yet looking at the backlog (at most one).
        self._starting = 0
        self._idle_exit = idle_exit
        self._started = False
        self._names = itertools.count()

    def start(self) -> None:
        """Let jobs start (workers are made as jobs can start, not here)."""
        with self._cond:
            self._started = True
            self._kick()

    @property
    def threads(self) -> int:
        """Worker threads alive (at most one per running job, plus a few idle ones)."""
        with self._cond:
            return len(self._threads)

    def _kick(self) -> None:
        """With the lock held: have a worker look at the backlog, making one if none is idle.

        A new worker that starts a job kicks again if more may start, so a burst
        of jobs makes the workers it needs one after another.
        """
        if not self._started or self._closing or not self._backlog or not self._free:
            return
        if self._idle or self._starting:  # one is on its way: it kicks again if need be
            self._cond.notify()
        elif len(self._threads) < self.slots:
            thread = threading.Thread(
                target=self._work, name=f"troy-slot-{next(self._names)}", daemon=True
            )
            self._threads.add(thread)
            self._starting += 1
            thread.start()

    @property
    def waiting(self) -> int:
        """Jobs claimed and not yet started."""
        return len(self._backlog)

    @property
    def promised(self) -> int:
        """Slots the jobs claimed and not yet started need (their minimum)."""
        with self._cond:
            return sum(job.cores for job in self._backlog)

    @property
    def busy(self) -> int:
        """Slots in use (a ranged job counts the slots it was granted)."""
        return self.slots - self._free

    def add(self, jobs: Collection[Job]) -> None:
        with self._cond:
            self._backlog.extend(jobs)
            if self._idle:
                self._cond.notify(len(jobs))
            self._kick()

    def remove(self, ids: Collection[str]) -> list[Job]:
        """Take the named jobs out of the backlog (they will not start); return them."""
        with self._cond:
            taken = [job for job in self._backlog if job.id in ids]
            for job in taken:
                self._backlog.remove(job)
            if taken:  # a new head may fit where the old one did not
                self._cond.notify_all()
                self._kick()
            return taken

    def drain(self) -> list[Job]:
        """Take every job that has not started."""
        with self._cond:
            taken = list(self._backlog)
            self._backlog.clear()
            return taken

    def close(self, timeout: float) -> None:
        """Let workers finish their current job and stop; wait up to ``timeout`` seconds."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            threads = list(self._threads)
        deadline = monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - monotonic()))

    def _take(self) -> Job | None:
        """The job to start now, out of the backlog with its slots counted; None if none may."""
        backlog = self._backlog
        if not backlog:
            return None
        free = self._free
        job = backlog[0]
        if job.cores <= free:
            backlog.popleft()
        else:
            passing = self._backfill(job, free)
            if passing is None:
                return None
            job = passing
        granted = job.cores if job.max_cores <= job.cores else min(free, job.max_cores)
        job.granted = granted
        self._free = free - granted
        return job

    def _backfill(self, head: Job, free: int) -> Job | None:
        """A job behind ``head`` that fits in ``free`` slots, taken out of the backlog,
        unless ``head`` has been passed over for ``backfill_window`` seconds already."""
        if not free:
            return None
        now = monotonic()
        if head is not self._passed:
            self._passed, self._passed_since = head, now
        if now - self._passed_since >= self.backfill_window:
            return None
        backlog = self._backlog
        for index in range(1, min(len(backlog), BACKFILL_DEPTH + 1)):
            job = backlog[index]
            if job.cores <= free:
                del backlog[index]
                return job
        return None

    def _work(self) -> None:
        finished: Job | None = None
        starting = True
        try:
            while True:
                with self._cond:
                    if starting:  # in the same hold as the first look at the backlog
                        self._starting -= 1
                        starting = False
                    if finished is not None:
                        self._free += finished.granted
                        finished = None
                    job = self._next()
                    if job is None:
                        return
                    if self._free and self._backlog:
                        self._kick()  # freed slots may hold more than this one job
                    if len(self._backlog) <= self._low_water:
                        self.hungry.set()
                finished = job
                self._run(job)  # never raises: the agent reports its own errors
        finally:
            with self._cond:
                self._threads.discard(threading.current_thread())
                if finished is not None:  # run() raised after all: give its slots back
                    self._free += finished.granted
                    self._kick()

    def _next(self) -> Job | None:
        """With the lock held: the next job this worker starts; None when it should end."""
        while True:
            if self._closing:
                return None
            job = self._take()
            if job is not None:
                return job
            self._idle += 1
            try:
                woken = self._cond.wait(self._idle_exit)
            finally:
                self._idle -= 1
            if not woken and not self._closing:
                job = self._take()
                if job is None:
                    return None  # idle too long: a new worker is made when one is needed
                return job
