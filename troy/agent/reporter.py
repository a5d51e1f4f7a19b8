"""Batched state reports from the agent to coordination, and the acks they allow.

Once a unit's state (Running, final, or sent back New to be placed again) is
written, the agent no longer needs the queue item it claimed for it: `flush`
acknowledges those items, in one ``ack`` per flush, after the events are written
(so an item is never dropped before what became of it is recorded).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from troy.model.errors import CoordinationError
from troy.plugins.coordination.base import Coordination


class Reporter:
    """Collects events per stream from many threads; `flush` writes each stream once."""

    def __init__(
        self,
        coordination: Coordination,
        wake: threading.Event,
        interval: float = 0.02,
        claimed: tuple[str, str] | None = None,
    ) -> None:
        """``claimed`` is (queue, claimer): the items that unit events acknowledge."""
        self._coordination = coordination
        self._claimed = claimed
        #: Ids of claimed items whose unit has an event in ``_pending``.
        self._acks: set[str] = set()
        #: Ids to acknowledge with no event to write first (handed back, or the ack failed).
        self._unacked: set[str] = set()
        self._lock = threading.Lock()
        self._pending: dict[str, list[dict[str, Any]]] = {}
        #: Running events not yet written, by unit id: a final event merges into them.
        self._running: dict[str, dict[str, Any]] = {}
        self._count = 0
        self._last_flush = 0.0
        self.interval = interval
        #: Set when a report arrives after a quiet spell, so it is written at once.
        self._wake = wake

    def add(self, stream: str, event: dict[str, Any]) -> None:
        """Collect ``event`` for ``stream``; a unit event also acknowledges the unit's item."""
        with self._lock:
            if "id" in event and event.get("ev") == "state":
                self._acks.add(event["id"])
            if event.get("s") == "Running" and "id" in event:
                self._running[event["id"]] = event
            elif "id" in event and event["id"] in self._running:
                # A unit that ended before its start was written: one event says both,
                # {"s": <final>, "run": <when it started>, ...}; readers expand it.
                running = self._running.pop(event["id"])
                if running.get("a") == event.get("a"):
                    running["run"] = running["ts"]
                    running.update(event)
                    return
            self._pending.setdefault(stream, []).append(event)
            self._count += 1
            if self._count == 1:
                self._wake.set()

    def acknowledge(self, ids: list[str]) -> None:
        """Acknowledge these claimed items with the next flush (units handed back)."""
        with self._lock:
            self._unacked.update(ids)

    @property
    def pending(self) -> int:
        """Events collected and not yet written."""
        return self._count

    def due(self) -> bool:
        """True if there is something to write and the interval has passed (or much waits)."""
        return self._count > 0 and (
            self._count >= 1000 or time.monotonic() - self._last_flush >= self.interval
        )

    def flush(self) -> None:
        """Write everything collected so far, one append per stream.

        If coordination fails, what was not written is kept (ahead of anything
        newer, so each stream keeps its order) and the error is raised.
        """
        with self._lock:
            pending, self._pending, self._count = self._pending, {}, 0
            acks, self._acks = self._acks, set()
            self._running.clear()
        self._last_flush = time.monotonic()
        streams = list(pending.items())
        for index, (stream, events) in enumerate(streams):
            try:
                self._coordination.append(stream, events)
            except CoordinationError:
                with self._lock:
                    for unwritten, kept in streams[index:]:
                        self._pending[unwritten] = kept + self._pending.get(unwritten, [])
                    self._count = sum(len(e) for e in self._pending.values())
                    self._acks |= acks
                raise
        with self._lock:
            acks |= self._unacked
            self._unacked = set()
        if self._claimed is not None and acks:
            try:
                self._coordination.ack(*self._claimed, acks)
            except CoordinationError:
                with self._lock:
                    self._unacked |= acks
                raise
