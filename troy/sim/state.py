"""The state of one simulation: per-unit and per-pilot counters, units coming to wait and ending.

Per-unit and per-pilot counters live in lists indexed by position, offers are made
anew only for pilots whose counters changed, and ``place`` gets only waiting units:
no event costs work in proportion to the whole workload.  The pilots' events
(`troy.sim.pilots`), placing (`troy.sim.placing`) and the loop (`troy.sim.play`)
build on it, in that order.
"""

from __future__ import annotations

import heapq
from collections import deque
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
from troy.sim.model import Workload
from troy.sim.result import VirtualClock
from troy.sim.waiting import WaitingUnits

#: Seconds after which a timer of 0 s fires, and the placement interval by default
#: (the unit manager's fastest poll).
POLL = 0.01

# A unit's states in the simulation.
FUTURE, GATED, WAITING, PENDING, RUNNING, DONE, FAILED, CANCELED = range(8)
FINAL_NAMES = {DONE: "Done", FAILED: "Failed", CANCELED: "Canceled"}
# Event kinds.
END, PILOT_START, PILOT_END = range(3)


class SimState:
    """One run's state: per-unit and per-pilot counters in lists indexed by position."""

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
        self.state = [FUTURE] * n
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
        agent_start = workload.overheads.pilot_start_s
        #: Seconds a unit holds its slots before it runs (`Overheads.unit_start_s`).
        self.unit_start = workload.overheads.unit_start_s
        for k, pilot in enumerate(pilots):
            self._push(pilot.start_delay + agent_start, PILOT_START, k, None)
            if pilot.wall_time is not None:
                why = f"pilot {pilot.id} ended (Failed: wall time {pilot.wall_time:g} s ran out)"
                self._push(pilot.start_delay + pilot.wall_time, PILOT_END, k, why)
        for failure in workload.failures:
            why = f"pilot {failure.pilot} ended (Failed: failure at {failure.at:g} s)"
            self._push(failure.at, PILOT_END, self.pilot_index[failure.pilot], why)

    def _push(self, at: float, kind: int, what: int, extra: Any) -> None:
        heapq.heappush(self.heap, (at, self.event_seq, kind, what, extra))
        self.event_seq += 1

    def _arrive(self, i: int) -> None:
        self.wait_seq[i] = self.seq
        self.seq += 1
        remaining = 0
        for j in self.after[i]:
            state = self.state[j]
            if state == DONE:
                continue
            if state in (FAILED, CANCELED):
                why = f"dependency {self.workload.units[j].id} ended {FINAL_NAMES[state]}"
                self._finish(i, CANCELED, why)
                return
            remaining += 1
            self.dependents.setdefault(j, []).append(i)
        if remaining:
            self.state[i] = GATED
            self.remaining[i] = remaining
        else:
            self._wait(i)

    def _wait(self, i: int, again: bool = False) -> None:
        """Unit ``i`` waits to be placed (``again``: at the end of the line)."""
        if again:
            self.wait_seq[i] = self.seq
            self.seq += 1
        seq = self.wait_seq[i]
        self.state[i] = WAITING
        self.where[i] = -1
        cores, largest = self.workload.units[i].cores, self.largest
        if largest is not None and cores > largest:
            self._finish(i, FAILED, checks.too_big(cores, largest))
            return
        self.waiting.add(i, seq, self._request(i))
        if seq < self.last_seq:
            self.unsorted = True
        else:
            self.last_seq = seq
        self.need_place = True

    def _still_waiting(self, i: int, seq: int) -> bool:
        return self.state[i] == WAITING and self.wait_seq[i] == seq

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
                if self.state[dependent] != GATED:
                    continue
                if state == DONE:
                    self.remaining[dependent] -= 1
                    if self.remaining[dependent] == 0:
                        self._wait(dependent)
                else:
                    name = self.workload.units[unit].id
                    why = f"dependency {name} ended {FINAL_NAMES[state]}"
                    stack.append((dependent, CANCELED, why))

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


def _index(what: str, ids: list[str]) -> dict[str, int]:
    index: dict[str, int] = {}
    for position, item in enumerate(ids):
        if item in index:
            raise BadDescription(what, f"id {item!r} is given twice")
        index[item] = position
    return index
