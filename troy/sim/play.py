"""The event loop of one simulation (played by `troy.sim.engine.simulate`).

The state and the units' comings and goings are in `troy.sim.state`, the
pilots' events in `troy.sim.pilots`, the calls of ``place`` in
`troy.sim.placing`, and the result in `troy.sim.outcome`.
"""

from __future__ import annotations

import heapq

from troy.sim.outcome import outcome
from troy.sim.placing import Placing
from troy.sim.result import SimResult
from troy.sim.state import END, PILOT_START, POLL

__all__ = ["POLL", "Simulation"]


class Simulation(Placing):
    """One run: the loop over arrivals, events, timers and calls of ``place``."""

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
                if kind == END:
                    self._unit_ended(what, extra)
                elif kind == PILOT_START:
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
        return outcome(self)
