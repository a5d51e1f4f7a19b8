"""A simulation's calls of ``place``: the waiting units and the offers in, the units queued out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from troy.plugins.schedulers import checks
from troy.plugins.schedulers.base import UnitRequest
from troy.sim.pilots import PilotEvents
from troy.sim.state import PENDING, POLL


class Placing(PilotEvents):
    """Asks the scheduler and queues the units it placed on their pilots."""

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
            if state[i] == PENDING:
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
            state[i] = PENDING
            if self.rebalance:
                self.pending[i] = None
            self.dirty[k] = None
            touched[k] = None
        for k in touched:
            self._start_queued(k)
        return len(touched)
