"""The agent's slots: a FIFO backlog of claimed units and one worker thread per slot.

A worker that finishes a unit takes the next one itself, without a round trip
through the dispatcher, so the slots stay busy at the rate processes can be
launched.  A unit needing k slots starts when k are free; until then the units
behind it wait (strict FIFO, so a large unit is never starved).
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Job:
    """A claimed unit."""

    id: str
    service: str
    description: dict[str, Any]
    attempt: int
    cores: int
    #: Earlier attempts that did not count (see troy.core.retry).
    tries: list[dict[str, Any]] = field(default_factory=list)


class SlotPool:
    """Runs jobs with ``run(job)`` in ``slots`` worker threads, counting slots."""

    def __init__(
        self, slots: int, run: Callable[[Job], None], low_water: int, hungry: threading.Event
    ) -> None:
        self.slots = slots
        self._run = run
        self._free = slots
        self._backlog: collections.deque[Job] = collections.deque()
        self._cond = threading.Condition()
        self._closing = False
        self._low_water = low_water
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
    def busy(self) -> int:
        """Slots in use."""
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

    def _fits(self) -> bool:
        return bool(self._backlog) and self._backlog[0].cores <= self._free

    def _work(self) -> None:
        finished: Job | None = None
        while True:
            with self._cond:
                if finished is not None:
                    self._free += finished.cores
                    finished = None
                while not self._closing and not self._fits():
                    self._cond.wait()
                if self._closing:
                    return
                job = self._backlog.popleft()
                self._free -= job.cores
                if self._fits():
                    self._cond.notify()  # freed slots may hold more than this one job
                if len(self._backlog) <= self._low_water:
                    self.hungry.set()
            self._run(job)  # never raises: the agent reports its own errors
            finished = job
