"""A simulation's pilots: they start units from their queues, and start and end themselves."""

from __future__ import annotations

from typing import Any

from troy.model import retry
from troy.plugins.schedulers import checks
from troy.plugins.schedulers.data_aware import is_local
from troy.sim.state import (
    DONE,
    END,
    FAILED,
    RUNNING,
    SimState,
)


class PilotEvents(SimState):
    """The events of pilots and of the units that run on them."""

    def _start_queued(self, k: int) -> None:
        """Start the units at the head of pilot ``k``'s queue while its free slots suffice."""
        if self.started_at[k] is None or not self.live[k]:
            return
        pilot = self.workload.pilots[k]
        queue, token, units = self.queue[k], self.token, self.workload.units
        free = pilot.slots - self.busy[k]
        now = self.now
        while queue:
            i, mark = queue[0]
            if token[i] != mark:
                queue.popleft()  # moved or given back: a stale entry
                continue
            unit = units[i]
            cores = unit.cores
            if cores > free:
                break
            queue.popleft()
            free -= cores
            self.state[i] = RUNNING
            self.start[i] = now
            self.end[i] = None
            self.last_pilot[i] = k
            self.queued[k] -= 1
            self.running[k] += 1
            self.busy[k] += cores
            self.running_units[k][i] = None
            if self.rebalance:
                self.pending.pop(i, None)
            staging = 0.0
            moved = 0
            if unit.inputs:
                staging, moved = self._staging(unit.inputs, k)
            self.moved[i] = moved
            took = self.unit_start + staging + unit.runtime / pilot.speed
            self._push(now + took, END, i, mark)
            self.dirty[k] = None

    def _staging(self, inputs: Any, k: int) -> tuple[float, int]:
        """Seconds to bring ``inputs`` to pilot ``k``, and the bytes that move."""
        pilot = self.workload.pilots[k]
        network = self.workload.network
        seconds, moved = 0.0, 0
        for data in inputs:
            key = (data.store, k)
            local = self.local.get(key)
            if local is None:
                replica = self._replica(data.store)
                local = self.local[key] = is_local(replica, pilot.datacenter, pilot.machine)
            if not local:
                seconds += network.transfer_seconds(data.size)
                moved += data.size
        return seconds, moved

    def _unit_ended(self, i: int, mark: int) -> None:
        if self.token[i] != mark or self.state[i] != RUNNING:
            return  # lost with its pilot before it ended
        self.events += 1
        k = self.where[i]
        cores = self.workload.units[i].cores
        self.running[k] -= 1
        self.busy[k] -= cores
        self.busy_seconds[k] += cores * (self.now - (self.start[i] or 0.0))
        del self.running_units[k][i]
        self.end[i] = self.now
        self.where[i] = -1
        self.dirty[k] = None
        self._finish(i, DONE)
        self._start_queued(k)

    def _pilot_started(self, k: int) -> None:
        if not self.live[k]:
            return
        self.events += 1
        self.started_at[k] = self.now
        self.dirty[k] = None
        self.need_place = True
        self._start_queued(k)

    def _pilot_ended(self, k: int, why: str) -> None:
        if not self.live[k]:
            return
        self.events += 1
        self.live[k] = False
        self.live_count -= 1
        self.ended_at[k] = self.now
        self._live_changed()
        self.need_place = True
        largest = self.largest
        if largest is not None:  # units no live pilot can hold any more fail now
            for unit_id, request in list(self.waiting.requests.items()):
                if request.cores > largest:
                    self._finish(
                        self.unit_index[unit_id], FAILED, checks.too_big(request.cores, largest)
                    )
        queued = sorted(i for i, mark in self.queue[k] if self.token[i] == mark)
        lost = sorted(self.running_units[k])
        self.queue[k].clear()
        self.running_units[k] = {}
        self.queued[k] = self.running[k] = self.busy[k] = 0
        units = self.workload.units
        for i in queued:
            self.token[i] += 1
            self.pending.pop(i, None)
            if self.live_count:
                self._wait(i, again=True)
            else:
                self._finish(i, FAILED, f"{why} before it started; no other pilot is live")
        for i in lost:
            self.token[i] += 1
            unit = units[i]
            self.busy_seconds[k] += unit.cores * (self.now - (self.start[i] or 0.0))
            tries = self.tries.get(i, [])
            if self.live_count and retry.again(tries, "lost", unit.retries):
                self.tries[i] = retry.record(tries, self.attempt[i], "lost", why)
                self.attempt[i] += 1
                self.start[i] = None
                self._wait(i, again=True)
            else:
                self.end[i] = self.now
                self._finish(i, FAILED, retry.final_detail(tries, why))
