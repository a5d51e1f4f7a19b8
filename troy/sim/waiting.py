"""The units waiting to be placed, handed to ``place`` as `SortedUnits` without a copy.

Kept in the order they came to wait (a dict by unit id) and, if the scheduler
walks them in an order of its own (`Scheduler.unit_order`), also in a heap by
(its key, the order they came to wait); iterating the heap pops units one at a
time, so a just-in-time scheduler that stops once no slot is open costs only
what it looked at, not every unit that waits.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from typing import Any, overload

from troy.plugins.schedulers.base import SortedUnits, UnitKey, UnitRequest


class WaitingUnits(SortedUnits):
    """The waiting units' requests by unit id, iterated in the scheduler's order.

    ``waiting(i, seq)`` tells whether unit ``i`` still waits since it came to
    wait as number ``seq`` (heap entries of units that were placed, ended, or
    came to wait again are dropped when met).
    """

    def __init__(self, key: UnitKey | None, waiting: Callable[[int, int], bool]) -> None:
        self.key = key
        self.requests: dict[str, UnitRequest] = {}
        self._waiting = waiting
        self._heap: list[tuple[Any, int, int, UnitRequest]] = []
        self._fresh: list[tuple[Any, int, int, UnitRequest]] = []
        #: Entries popped by the current iteration, in order (pushed back by `settle`).
        self._taken: list[tuple[Any, int, int, UnitRequest]] = []
        #: The whole order, made only if someone indexes.
        self._all: list[UnitRequest] | None = None
        self._removed = 0

    def add(self, i: int, seq: int, request: UnitRequest) -> None:
        """Unit ``i`` comes to wait as number ``seq``."""
        self.requests[request.id] = request
        if self.key is not None:
            self._fresh.append((self.key(request), seq, i, request))
        self._all = None

    def remove(self, unit_id: str) -> None:
        """The unit no longer waits (its heap entry is dropped when met)."""
        if self.requests.pop(unit_id, None) is not None:
            self._all = None
            self._removed += 1
            if self._removed > 1024 + len(self.requests):
                # A dict never shrinks: iterating from the front would step over every
                # unit removed since it was made; a copy has no such holes.
                self.requests = dict(self.requests)
                self._removed = 0

    def settle(self) -> None:
        """After a call: the entries popped and still waiting go back in the heap."""
        heap, waiting = self._heap, self._waiting
        for entry in self._taken:
            if waiting(entry[2], entry[1]):
                heapq.heappush(heap, entry)
        self._taken = []

    def __len__(self) -> int:
        return len(self.requests)

    def __iter__(self) -> Iterator[UnitRequest]:
        if self.key is None:
            yield from self.requests.values()
            return
        self._merge()
        taken, heap, waiting = self._taken, self._heap, self._waiting
        for entry in list(taken):  # an earlier iteration's (the same call's)
            if waiting(entry[2], entry[1]):
                yield entry[3]
        while heap:
            entry = heapq.heappop(heap)
            if not waiting(entry[2], entry[1]):
                continue  # placed, ended, or waiting again under a newer entry
            taken.append(entry)
            yield entry[3]

    @overload
    def __getitem__(self, index: int) -> UnitRequest: ...

    @overload
    def __getitem__(self, index: slice) -> list[UnitRequest]: ...

    def __getitem__(self, index: int | slice) -> UnitRequest | list[UnitRequest]:
        if self._all is None:
            self._all = list(self)
        return self._all[index]

    def _merge(self) -> None:
        fresh = self._fresh
        if not fresh:
            return
        if len(fresh) > len(self._heap):
            self._heap.extend(fresh)
            heapq.heapify(self._heap)
        else:
            for entry in fresh:
                heapq.heappush(self._heap, entry)
        self._fresh = []
