"""What a simulation returns once nothing else happens: records, makespan, pilot usage."""

from __future__ import annotations

from troy.sim.model import UnitRecord
from troy.sim.result import PilotUsage, SimResult
from troy.sim.state import FAILED, FINAL_NAMES, SimState


def outcome(sim: SimState) -> SimResult:
    offers, _ = sim._offers()
    for unit_id, request in list(sim.waiting.requests.items()):
        i = sim.unit_index[unit_id]
        if offers:
            why = sim.scheduler.waiting_reason(request, offers)
        else:
            why = "waiting for a pilot: no pilot is live"
        sim._finish(i, FAILED, f"{why}; nothing else happened")
    units, pilots = sim.workload.units, sim.workload.pilots
    for i, state in enumerate(sim.state):
        if state not in FINAL_NAMES:  # cannot happen: a safeguard for the records
            sim._finish(i, FAILED, "still placed when nothing else happened")
    ends = [end for end, start in zip(sim.end, sim.start, strict=True) if start is not None]
    makespan = max((end for end in ends if end is not None), default=0.0)
    records = tuple(
        UnitRecord(
            id=unit.id,
            name=unit.name,
            pilot=pilots[sim.last_pilot[i]].id if sim.last_pilot[i] >= 0 else None,
            cores=unit.cores,
            submit=unit.submit,
            start=sim.start[i],
            end=sim.end[i] if sim.start[i] is not None else None,
            state=FINAL_NAMES[sim.state[i]],
            tries=len(sim.tries.get(i, ())),
            bytes_in=sum(data.size for data in unit.inputs),
            bytes_moved=sim.moved[i],
        )
        for i, unit in enumerate(units)
    )
    usage = []
    for k, pilot in enumerate(pilots):
        started = sim.started_at[k]
        ended = sim.ended_at[k]
        until = makespan if ended is None else min(ended, makespan)
        up = 0.0 if started is None else max(0.0, until - started)
        usage.append(PilotUsage(pilot.id, pilot.slots, sim.busy_seconds[k], up))
    details = {units[i].id: why for i, why in sorted(sim.detail.items())}
    return SimResult(records, makespan, tuple(usage), sim.calls, sim.events, details)
