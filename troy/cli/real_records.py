"""A recorded work-unit service as the records of a simulation: units.csv rows, pilots' use.

`troy report` and `troy compare --real` describe a real run with the very
records `troy simulate` writes (troy.sim.model.UnitRecord, troy.sim.results),
so one script reads simulated and real runs alike.  Times are seconds from
``origin`` (by default the first thing recorded: a pilot's or a unit's New).

For each unit: its export row (troy.core.unit_rows: its last run's pilot,
start and end, tries, bytes staged in and moved), with times from the
origin.  A unit that is not final yet keeps its state's name.  For each
pilot: its slots, the seconds from its Running (or from the first submission,
if later: a pilot may serve several services) to its end (or to the last
unit end, if that comes first), and the slot-seconds its units' runs took.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from troy.core.unit_rows import unit_rows
from troy.core.views import PilotView, ServiceView
from troy.model.states import State
from troy.sim.model import UnitRecord
from troy.sim.result import PilotUsage
from troy.sim.results import ResultWriter, summarize


@dataclass(frozen=True)
class RealRecords:
    """A real run as a simulation records one."""

    records: list[UnitRecord]
    #: One per pilot, in the order the service recorded them, with the records' pilot ids.
    pilots: tuple[PilotUsage, ...]
    #: Wall-clock time (seconds since the epoch) of time 0.
    origin: float


def first_recorded(view: ServiceView) -> float:
    """When the first pilot or unit of ``view`` was recorded (its New)."""
    times = [history[0][1] for history in _histories(view) if history]
    return min(times, default=view.created)


def _histories(view: ServiceView) -> list[list[tuple[State, float]]]:
    return [pilot.history for pilot in view.pilots] + [unit.history for unit in view.units]


def real_records(
    view: ServiceView,
    origin: float | None = None,
    entries: Mapping[str, str] | None = None,
    pilot_ids: Mapping[str, str] | None = None,
) -> RealRecords:
    """The records of ``view``; with the maps, in a workload's ids.

    ``entries`` (`troy compare --real`, whose units are named by their
    workload ids) maps a workload unit id to its entry's name: a unit's record
    then takes its description ``name`` as id, and that entry name as name.
    ``pilot_ids`` maps a troy pilot id to the one its records name.  So a
    real run's rows line up with the simulation's.
    """
    start = first_recorded(view) if origin is None else origin
    pilot_ids = pilot_ids or {}
    records = []
    for unit, row in zip(view.units, unit_rows(view), strict=True):
        record_id, name = unit.id, unit.name
        if entries is not None:
            record_id, name = unit.name, entries.get(unit.name, unit.name)
        records.append(_record(row, record_id, name, start, pilot_ids))
    ends = [record.end for record in records if record.end is not None]
    last = max(ends, default=0.0)
    busy: dict[str, float] = {}
    for unit in view.units:
        for run in unit.runs:
            if run.pilot is not None:
                until = run.end if run.end is not None else start + last
                busy[run.pilot] = busy.get(run.pilot, 0.0) + run.cores * (until - run.start)
    # Pilots shared by several services may be up before this one's first submission.
    first = min((u.history[0][1] - start for u in view.units if u.history), default=0.0)
    pilots = tuple(
        _pilot_use(
            pilot, pilot_ids.get(pilot.id, pilot.id), busy.get(pilot.id, 0.0), start, last, first
        )
        for pilot in view.pilots
    )
    return RealRecords(records, pilots, start)


def _record(
    row: Mapping[str, Any], record_id: str, name: str, origin: float, pilot_ids: Mapping[str, str]
) -> UnitRecord:
    """A unit's export row (troy.core.unit_rows) as a record, its times from ``origin``."""
    pilot = row["pilot"]
    return UnitRecord(
        id=record_id,
        name=name,
        pilot=pilot_ids.get(pilot, pilot) if pilot is not None else None,
        cores=row["cores"],
        submit=row["submit"] - origin if row["submit"] is not None else 0.0,
        start=None if row["start"] is None else row["start"] - origin,
        end=None if row["end"] is None else row["end"] - origin,
        state=row["state"],
        tries=row["tries"],
        bytes_in=row["bytes_in"],
        bytes_moved=row["bytes_moved"],
    )


def _pilot_use(
    pilot: PilotView, pilot_id: str, busy: float, origin: float, last: float, first: float = 0.0
) -> PilotUsage:
    """Its slots, seconds up (Running, or the ``first`` submission if later, to its end or
    ``last``), slot-seconds busy."""
    running = next((ts for state, ts in pilot.history if state == State.Running), None)
    ended = next((ts for state, ts in pilot.history if state.is_final), None)
    up = 0.0
    if running is not None:
        until = last if ended is None else min(ended - origin, last)
        up = max(0.0, until - max(running - origin, first))
    return PilotUsage(pilot_id, pilot.slots or 0, busy, up)


def write_results(
    runs: Sequence[tuple[str, ServiceView]], directory: str, coordination: str
) -> list[RealRecords]:
    """Write units.csv, summary.csv, summary.json and run.json of the ``(label, view)`` runs
    (mode real, repetition 0) into ``directory``."""
    writer = ResultWriter(directory)
    results = []
    for label, view in runs:
        result = real_records(view)
        writer.add(result.records, summarize(result.records, result.pilots, label, "real"))
        results.append(result)
    labels = {label: view for label, view in runs}
    writer.close(
        {
            "mode": "real",
            "service": runs[0][1].id if len(runs) == 1 else [view.id for _, view in runs],
            "coordination": coordination,
            "schedulers": {label: view.scheduler_options for label, view in labels.items()},
            "services": {
                label: {
                    "service": view.id,
                    "scheduler": view.scheduler or "?",
                    "origin": result.origin,
                }
                for (label, view), result in zip(runs, results, strict=True)
            },
            "origin": results[0].origin if results else None,
        }
    )
    return results
