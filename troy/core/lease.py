"""One owner per work-unit service: a lease in coordination, kept alive by a heartbeat.

Only the owner of a service places its units and judges the units its pilots
left behind; any other process that opens the service follows it (sees states,
waits, gets callbacks, may submit and cancel) and takes over only once the
owner's lease has lapsed.  Two processes therefore never place at once.

Records (``<sid>`` is the service id)
    ``lease/<sid>/<epoch>``  {"owner", "host", "pid", "started", "since", "timeout"}: made with
                             ``create_record``, so of two processes taking epoch n
                             exactly one gets it; the highest epoch is the lease
    ``lease/<sid>``          {"epoch", "n", "released"?}: the owner's heartbeat

A lease lapses when its owner released it (closed the service), when the owner
ran on this host and its process is gone (pid and start time), or when its
heartbeat has not changed for the owner's ``timeout`` (recorded with the lease;
it beats six times as often) on the watching process' own clock, counted from
when that process first looked (clocks of hosts differ).
An owner that finds a higher epoch than its own was superseded (it was paused
longer than the timeout): it stops placing at once.
"""

from __future__ import annotations

import os
import time
from typing import Any

from troy.model import processes
from troy.model.errors import CoordinationError
from troy.plugins.coordination.base import HOST, Coordination

#: Seconds a lease lives without a heartbeat, unless ``$TROY_LEASE_TIMEOUT`` says otherwise.
DEFAULT_TIMEOUT = 15.0


def lease_timeout() -> float:
    """``$TROY_LEASE_TIMEOUT`` (seconds, at least 0.5), default 15."""
    try:
        return max(0.5, float(os.environ.get("TROY_LEASE_TIMEOUT") or DEFAULT_TIMEOUT))
    except ValueError:
        return DEFAULT_TIMEOUT


class Lease:
    """The ownership of one service, as seen (and maybe held) by this process."""

    def __init__(
        self, coordination: Coordination, service_id: str, timeout: float | None = None
    ) -> None:
        self.coordination = coordination
        self.service_id = service_id
        self.timeout = lease_timeout() if timeout is None else timeout
        #: The epoch this process holds, or None.
        self.epoch: int | None = None
        self._beats = 0
        self._last_beat = 0.0
        #: The last heartbeat seen of the holder, and when it changed (monotonic).
        self._seen: tuple[Any, float] | None = None

    @property
    def key(self) -> str:
        return f"lease/{self.service_id}"

    @property
    def held(self) -> bool:
        return self.epoch is not None

    def holder(self) -> tuple[int, dict[str, Any]] | None:
        """The current lease: (epoch, its record), or None if nobody ever owned the service."""
        epochs = [
            int(word)
            for key in self.coordination.list_records(self.key)
            if (word := key.rpartition("/")[2]).isdigit()
        ]
        for epoch in sorted(epochs, reverse=True):
            record = self.coordination.get_record(f"{self.key}/{epoch}")
            if record is not None:
                return epoch, record
        return None

    def describe(self, record: dict[str, Any]) -> str:
        """``pid 123 on host``: who holds a lease."""
        return f"pid {record.get('pid')} on {record.get('host')}"

    def lapsed(self) -> tuple[bool, str]:
        """Whether the lease is free to take, and who holds it (or why it is free)."""
        current = self.holder()
        if current is None:
            return True, "never owned"
        epoch, record = current
        if epoch == self.epoch:
            return False, "this process"
        beat = self.coordination.get_record(self.key) or {}
        if beat.get("epoch") == epoch and beat.get("released"):
            return True, f"released by {self.describe(record)}"
        if record.get("host") == HOST and not processes.is_alive(
            int(record.get("pid") or 0), record.get("started")
        ):
            return True, f"{self.describe(record)} is gone"
        now = time.monotonic()
        seen = (epoch, beat.get("epoch"), beat.get("n"))
        if self._seen is None or self._seen[0] != seen:
            self._seen = (seen, now)
            return False, self.describe(record)
        silent = now - self._seen[1]
        if silent > float(record.get("timeout") or self.timeout):
            return True, f"{self.describe(record)} silent for {silent:.0f} s"
        return False, self.describe(record)

    def acquire(self) -> bool:
        """Take the lease if it is free (see `lapsed`); True if this process holds it now."""
        if self.held:
            return True
        free, _ = self.lapsed()
        if not free:
            return False
        current = self.holder()
        epoch = 0 if current is None else current[0] + 1
        record = {
            "owner": self.coordination.writer,
            "host": HOST,
            "pid": os.getpid(),
            "started": processes.start_time(os.getpid()),
            "since": time.time(),
            "timeout": self.timeout,
        }
        if not self.coordination.create_record(f"{self.key}/{epoch}", record):
            return False  # another process took this epoch first
        self.epoch = epoch
        self._beat()
        return True

    def renew(self) -> bool:
        """Beat if one is due; False (and no longer held) if another process took over."""
        if self.epoch is None:
            return False
        if time.monotonic() - self._last_beat < self.timeout / 6:
            return True
        current = self.holder()
        if current is None or current[0] != self.epoch:
            self.epoch = None
            return False
        self._beat()
        return True

    def _beat(self, released: bool = False) -> None:
        self._beats += 1
        beat: dict[str, Any] = {"epoch": self.epoch, "n": self._beats}
        if released:
            beat["released"] = True
        self.coordination.put_record(self.key, beat)
        self._last_beat = time.monotonic()

    def release(self) -> None:
        """Give the lease up (a closing owner): the next process may take it at once."""
        if self.epoch is None:
            return
        try:
            current = self.holder()
            if current is not None and current[0] == self.epoch:
                self._beat(released=True)
        except CoordinationError:
            pass  # it lapses by itself
        self.epoch = None
