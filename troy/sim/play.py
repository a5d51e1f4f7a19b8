"""The state of one simulation and its events (played by `troy.sim.engine.simulate`).

Per-unit and per-pilot counters live in lists indexed by position, offers are made
anew only for pilots whose counters changed, and ``place`` gets only waiting units:
no event costs work in proportion to the whole workload.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from troy.model import retry
from troy.model.errors import BadDescription
from troy.model.states import State
from troy.plugins.schedulers import checks
from troy.plugins.schedulers.base import (
    NO_HINTS,
    DataInput,
    PilotOffer,
    Replica,
    Scheduler,
    UnitRequest,
)
from troy.plugins.schedulers.data_aware import is_local
from troy.sim.model import UnitRecord, Workload
from troy.sim.result import PilotUsage, SimResult, VirtualClock
from troy.sim.waiting import WaitingUnits

#: Seconds after which a timer of 0 s fires (the unit manager's fastest poll).
POLL = 0.01

# A unit's states in the simulation.
_FUTURE, _GATED, _WAITING, _PENDING, _RUNNING, _DONE, _FAILED, _CANCELED = range(8)
_FINAL_NAMES = {_DONE: "Done", _FAILED: "Failed", _CANCELED: "Canceled"}
# Event kinds.
_END, _PILOT_START, _PILOT_END = range(3)


class Simulation:
    """One run: per-unit and per-pilot counters in lists indexed by position."""

    def __init__(
        self,
        workload: Workload,
        scheduler: Scheduler,
        clock: VirtualClock,
        interval: float = POLL,
    ) -> None:
        self.workload = workload
        self.interval = interval
        self.scheduler = scheduler
        self.clock = clock
        self.rebalance = "rebalance" in scheduler.capabilities
        units, pilots = workload.units, workload.pilots
        self.unit_index = _index("units", [u.id for u in units])
        self.pilot_index = _index("pilots", [p.id for p in pilots])
        stores = {store.id: store for store in workload.stores}
        n, m = len(units), len(pilots)
        self.after: list[tuple[int, ...]] = []
        for unit in units:
            for data in unit.inputs:
                if data.store not in stores:
                    raise BadDescription(f"units.{unit.id}.inputs", f"unknown store {data.store!r}")
            try:
                self.after.append(tuple(self.unit_index[d] for d in unit.after))
            except KeyError as exc:
                raise BadDescription(f"units.{unit.id}.after", f"unknown unit {exc}") from None
        for failure in workload.failures:
            if failure.pilot not in self.pilot_index:
                raise BadDescription("failures", f"unknown pilot {failure.pilot!r}")
        self.stores = stores
        # Units.
        self.state = [_FUTURE] * n
        self.where = [-1] * n  # pilot index while Pending or Running
        self.last_pilot = [-1] * n
        self.start: list[float | None] = [None] * n
        self.end: list[float | None] = [None] * n
        self.token = [0] * n  # makes stale queue entries and end events recognisable
        self.attempt = [0] * n
        self.tries: dict[int, list[retry.Try]] = {}
        self.moved = [0] * n
        self.detail: dict[int, str] = {}
        self.requests: list[UnitRequest | None] = [None] * n
        self.remaining = [0] * n
        self.dependents: dict[int, list[int]] = {}
        self.wait_seq = [0] * n
        self.seq = 0
        #: The waiting units' requests by unit id, in the order they came to wait.
        key = None if self.rebalance else scheduler.unit_order()
        self.waiting = WaitingUnits(key, self._still_waiting)
        self.last_seq = -1
        self.unsorted = False
        self.pending: dict[int, None] = {}  # Pending units, for rebalancing
        # Pilots.
        self.live = [True] * m
        self.live_count = m
        self.started_at: list[float | None] = [None] * m
        self.ended_at: list[float | None] = [None] * m
        self.queue: list[deque[tuple[int, int]]] = [deque() for _ in range(m)]
        self.queued = [0] * m
        self.running = [0] * m
        self.busy = [0] * m
        self.busy_seconds = [0.0] * m
        self.running_units: list[dict[int, None]] = [{} for _ in range(m)]
        self.local: dict[tuple[str, int], bool] = {}
        self.dirty: dict[int, None] = {}
        self.offer_list: list[PilotOffer] = []
        self.offers_by_id: dict[str, PilotOffer] = {}
        self.position: dict[int, int] = {}
        self.largest: int | None = None
        self._live_changed()
        # Events.
        self.heap: list[tuple[float, int, int, int, Any]] = []
        self.event_seq = 0
        self.now = 0.0
        self.timer_at: float | None = None
        self.need_place = False
        self.timer_fired = False
        #: No call before this time (the placement interval after the last call).
        self.calm_until = -1.0
        self.calls = 0
        self.events = 0
        for k, pilot in enumerate(pilots):
            self._push(pilot.start_delay, _PILOT_START, k, None)
            if pilot.wall_time is not None:
                why = f"pilot {pilot.id} ended (Failed: wall time {pilot.wall_time:g} s ran out)"
                self._push(pilot.start_delay + pilot.wall_time, _PILOT_END, k, why)
        for failure in workload.failures:
            why = f"pilot {failure.pilot} ended (Failed: failure at {failure.at:g} s)"
            self._push(failure.at, _PILOT_END, self.pilot_index[failure.pilot], why)

    def _push(self, at: float, kind: int, what: int, extra: Any) -> None:
        heapq.heappush(self.heap, (at, self.event_seq, kind, what, extra))
        self.event_seq += 1

    # -- the loop ----------------------------------------------------------------------------
    def run(self) -> SimResult:
        units = self.workload.units
        arrivals = sorted(range(len(units)), key=lambda i: units[i].submit)
        heap, count, next_arrival = self.heap, len(arrivals), 0
        infinity = float("inf")
        while True:
            at = heap[0][0] if heap else infinity
            if next_arrival < count:
                at = min(at, units[arrivals[next_arrival]].submit)
            timer = self.timer_at
            if timer is not None and timer < at:
                at = timer
            asked = self.need_place or self.timer_fired
            if asked and self.calm_until < at:
                at = max(self.calm_until, self.now)  # a call deferred by the interval
            if at == infinity:
                break
            self.now = self.clock.now = at
            while next_arrival < count and units[arrivals[next_arrival]].submit <= at:
                self._arrive(arrivals[next_arrival])
                next_arrival += 1
                self.events += 1
            while heap and heap[0][0] <= at:
                _, _, kind, what, extra = heapq.heappop(heap)
                if kind == _END:
                    self._unit_ended(what, extra)
                elif kind == _PILOT_START:
                    self._pilot_started(what)
                else:
                    self._pilot_ended(what, extra)
            if timer is not None and timer <= at:
                self.events += 1
                self.timer_at = None
                self.timer_fired = True
            if (self.need_place or self.timer_fired) and at >= self.calm_until:
                due, self.timer_fired, self.need_place = self.timer_fired, False, False
                placed = 0
                if self.waiting or (self.rebalance and self.pending):
                    placed = self._place()
                if due and not placed and not heap and next_arrival == count:
                    self.timer_at = None  # nothing else will happen: the timer changes nothing
        return self._result()

    # -- units ------------------------------------------------------------------------------
    def _arrive(self, i: int) -> None:
        self.wait_seq[i] = self.seq
        self.seq += 1
        remaining = 0
        for j in self.after[i]:
            state = self.state[j]
            if state == _DONE:
                continue
            if state in (_FAILED, _CANCELED):
                why = f"dependency {self.workload.units[j].id} ended {_FINAL_NAMES[state]}"
                self._finish(i, _CANCELED, why)
                return
            remaining += 1
            self.dependents.setdefault(j, []).append(i)
        if remaining:
            self.state[i] = _GATED
            self.remaining[i] = remaining
        else:
            self._wait(i)

    def _wait(self, i: int, again: bool = False) -> None:
        """Unit ``i`` waits to be placed (``again``: at the end of the line)."""
        if again:
            self.wait_seq[i] = self.seq
            self.seq += 1
        seq = self.wait_seq[i]
        self.state[i] = _WAITING
        self.where[i] = -1
        cores, largest = self.workload.units[i].cores, self.largest
        if largest is not None and cores > largest:
            self._finish(i, _FAILED, checks.too_big(cores, largest))
            return
        self.waiting.add(i, seq, self._request(i))
        if seq < self.last_seq:
            self.unsorted = True
        else:
            self.last_seq = seq
        self.need_place = True

    def _still_waiting(self, i: int, seq: int) -> bool:
        return self.state[i] == _WAITING and self.wait_seq[i] == seq

    def _finish(self, i: int, final: int, detail: str | None = None) -> None:
        """Unit ``i`` ends ``final``; the units waiting for it go on or are Canceled."""
        stack = [(i, final, detail)]
        while stack:
            unit, state, why = stack.pop()
            self.state[unit] = state
            self.waiting.remove(self.workload.units[unit].id)
            self.need_place = True
            if why is not None:
                self.detail[unit] = why
            for dependent in self.dependents.pop(unit, ()):
                if self.state[dependent] != _GATED:
                    continue
                if state == _DONE:
                    self.remaining[dependent] -= 1
                    if self.remaining[dependent] == 0:
                        self._wait(dependent)
                else:
                    name = self.workload.units[unit].id
                    why = f"dependency {name} ended {_FINAL_NAMES[state]}"
                    stack.append((dependent, _CANCELED, why))

    def _request(self, i: int) -> UnitRequest:
        request = self.requests[i]
        if request is None:
            unit = self.workload.units[i]
            inputs = tuple(
                DataInput(data.url, data.size, (self._replica(data.store),)) for data in unit.inputs
            )
            request = self.requests[i] = UnitRequest(
                id=unit.id,
                cores=unit.cores,
                datacenter=unit.datacenter,
                machine=unit.machine,
                input_data=tuple(data.url for data in unit.inputs),
                inputs=inputs,
                wall_time_limit=unit.wall_time_limit,
                total_cpu_time=unit.total_cpu_time,
                hints=unit.hints or NO_HINTS,
                order=i,
            )
        return request

    def _replica(self, store_id: str) -> Replica:
        store = self.stores[store_id]
        return Replica(store.id, store.datacenter, store.machine)

    # -- placing -----------------------------------------------------------------------------
    def _place(self) -> int:
        """Ask the scheduler about the waiting (and, rebalancing, queued) units; units placed."""
        if self.unsorted:
            seq, index = self.wait_seq, self.unit_index
            ordered = sorted(self.waiting.requests.items(), key=lambda item: seq[index[item[0]]])
            self.waiting.requests = dict(ordered)
            self.last_seq = seq[index[ordered[-1][0]]] if ordered else -1
            self.unsorted = False
        offers, by_id = self._offers()
        if not offers:
            return 0
        requests: dict[str, UnitRequest] = self.waiting.requests
        units: Sequence[UnitRequest] = self.waiting
        if self.rebalance:
            requests = dict(requests)
            for i in self.pending:
                pilot_id = self.workload.pilots[self.where[i]].id
                request = replace(self._request(i), queued_on=pilot_id)
                requests[request.id] = request
            units = list(requests.values())
        if not requests:
            return 0
        self.calls += 1
        self.calm_until = self.now + self.interval
        try:
            placement = checks.call_place(self.scheduler, units, offers)
        finally:
            self.waiting.settle()
            delay = self.scheduler.next_call()
            if delay is not None:
                self.timer_at = self.now + (delay if delay > 0 else POLL)
        chosen = checks.checked_choices(self.scheduler.name, placement, requests, by_id)
        touched: dict[int, None] = {}
        unit_index, pilot_index = self.unit_index, self.pilot_index
        state, token, where = self.state, self.token, self.where
        for unit_id, pilot_id in chosen:
            i, k = unit_index[unit_id], pilot_index[pilot_id]
            if state[i] == _PENDING:
                if where[i] == k:
                    continue  # stays where it is
                old = where[i]
                self.queued[old] -= 1
                self.dirty[old] = None
                self.attempt[i] += 1
            else:
                self.waiting.remove(unit_id)
            token[i] += 1
            self.queue[k].append((i, token[i]))
            self.queued[k] += 1
            where[i] = k
            state[i] = _PENDING
            if self.rebalance:
                self.pending[i] = None
            self.dirty[k] = None
            touched[k] = None
        for k in touched:
            self._start_queued(k)
        return len(touched)

    def _offers(self) -> tuple[list[PilotOffer], dict[str, PilotOffer]]:
        """The live pilots' offers, made anew only for pilots whose counters changed."""
        pilots = self.workload.pilots
        for k in self.dirty:
            if not self.live[k]:
                continue
            pilot = pilots[k]
            offer = PilotOffer(
                id=pilot.id,
                state=State.Running if self.started_at[k] is not None else State.Pending,
                slots=pilot.slots,
                queued=self.queued[k],
                datacenter=pilot.datacenter,
                machine=pilot.machine,
                running=self.running[k],
                busy=self.busy[k],
                hints=pilot.hints or NO_HINTS,
            )
            self.offer_list[self.position[k]] = offer
            self.offers_by_id[pilot.id] = offer
        self.dirty.clear()
        return list(self.offer_list), self.offers_by_id

    def _live_changed(self) -> None:
        """Offer only live pilots (all offers made anew)."""
        live = [k for k, alive in enumerate(self.live) if alive]
        self.position = {k: index for index, k in enumerate(live)}
        pilots = self.workload.pilots
        placeholder = PilotOffer("", State.Pending)
        self.offer_list = [placeholder] * len(live)
        self.offers_by_id = {}
        self.dirty = dict.fromkeys(live)
        self.largest = max((pilots[k].slots for k in live), default=None)

    # -- pilots ----------------------------------------------------------------------------
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
            self.state[i] = _RUNNING
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
            self._push(now + staging + unit.runtime / pilot.speed, _END, i, mark)
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
        if self.token[i] != mark or self.state[i] != _RUNNING:
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
        self._finish(i, _DONE)
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
                        self.unit_index[unit_id], _FAILED, checks.too_big(request.cores, largest)
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
                self._finish(i, _FAILED, f"{why} before it started; no other pilot is live")
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
                self._finish(i, _FAILED, retry.final_detail(tries, why))

    # -- the end -----------------------------------------------------------------------------
    def _result(self) -> SimResult:
        offers, _ = self._offers()
        for unit_id, request in list(self.waiting.requests.items()):
            i = self.unit_index[unit_id]
            if offers:
                why = self.scheduler.waiting_reason(request, offers)
            else:
                why = "waiting for a pilot: no pilot is live"
            self._finish(i, _FAILED, f"{why}; nothing else happened")
        units, pilots = self.workload.units, self.workload.pilots
        for i, state in enumerate(self.state):
            if state not in _FINAL_NAMES:  # cannot happen: a safeguard for the records
                self._finish(i, _FAILED, "still placed when nothing else happened")
        ends = [end for end, start in zip(self.end, self.start, strict=True) if start is not None]
        makespan = max((end for end in ends if end is not None), default=0.0)
        records = tuple(
            UnitRecord(
                id=unit.id,
                name=unit.name,
                pilot=pilots[self.last_pilot[i]].id if self.last_pilot[i] >= 0 else None,
                cores=unit.cores,
                submit=unit.submit,
                start=self.start[i],
                end=self.end[i] if self.start[i] is not None else None,
                state=_FINAL_NAMES[self.state[i]],
                tries=len(self.tries.get(i, ())),
                bytes_in=sum(data.size for data in unit.inputs),
                bytes_moved=self.moved[i],
            )
            for i, unit in enumerate(units)
        )
        usage = []
        for k, pilot in enumerate(pilots):
            started = self.started_at[k]
            ended = self.ended_at[k]
            until = makespan if ended is None else min(ended, makespan)
            up = 0.0 if started is None else max(0.0, until - started)
            usage.append(PilotUsage(pilot.id, pilot.slots, self.busy_seconds[k], up))
        details = {units[i].id: why for i, why in sorted(self.detail.items())}
        return SimResult(records, makespan, tuple(usage), self.calls, self.events, details)


def _index(what: str, ids: list[str]) -> dict[str, int]:
    index: dict[str, int] = {}
    for position, item in enumerate(ids):
        if item in index:
            raise BadDescription(what, f"id {item!r} is given twice")
        index[item] = position
    return index
