"""The agent's slots: a backlog of claimed units and one worker thread per slot.

A worker that finishes a unit takes the next one itself, without a round trip
through the dispatcher, so the slots stay busy at the rate processes can be
launched.  Units start in the order they were claimed while they fit.  When
the unit at the head needs more slots than are free, later units that fit in
the free slots start first (backfill), but only for ``backfill_window``
seconds from the moment the head was first passed over: after that nothing
passes it and the slots drain to it, so a large unit is never starved.  A
ranged unit (``cores`` with a min and a max) starts once its minimum is free
and takes as many free slots as it can use.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from time import monotonic
from typing import Any

#: Seconds the head of the backlog may be passed over by later units that fit.
BACKFILL_WINDOW = 2.0
#: How many units behind the head a worker looks at for one that fits (bounds the scan).
BACKFILL_DEPTH = 64


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
    """Runs jobs with ``run(job)`` in ``slots`` worker threads, counting slots.

    ``backfill_window`` (seconds) may be changed before or while it runs.
    """

    def __init__(
        self,
        slots: int,
        run: Callable[[Job], None],
        low_water: int,
        hungry: threading.Event,
        backfill_window: float = BACKFILL_WINDOW,
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
        self._threads = [
            threading.Thread(target=self._work, name=f"troy-slot-{n}", daemon=True)
            for n in range(slots)
        ]

    def start(self) -> None:
        for thread in self._threads:
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
            self._cond.notify(len(jobs))

    def remove(self, ids: Collection[str]) -> list[Job]:
        """Take the named jobs out of the backlog (they will not start); return them."""
        with self._cond:
            taken = [job for job in self._backlog if job.id in ids]
            for job in taken:
                self._backlog.remove(job)
            if taken:  # a new head may fit where the old one did not
                self._cond.notify_all()
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
        for thread in self._threads:
            thread.join(timeout)

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
        while True:
            with self._cond:
                if finished is not None:
                    self._free += finished.granted
                    finished = None
                while True:
                    if self._closing:
                        return
                    job = self._take()
                    if job is not None:
                        break
                    self._cond.wait()
                if self._free and self._backlog:
                    self._cond.notify()  # freed slots may hold more than this one job
                if len(self._backlog) <= self._low_water:
                    self.hungry.set()
            self._run(job)  # never raises: the agent reports its own errors
            finished = job
