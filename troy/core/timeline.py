"""A recorded work-unit service as a timeline: one row per pilot slot, a bar per slot taken.

A pure function of a `ServiceView` (plus, for a service still running, the
time now).  Time runs from the first submission (the earliest unit's New) to
the last final timestamp.  Pilots are stacked in the order the service
recorded them; every run of a unit (a retried or lost unit runs more than
once) takes slots of its pilot by troy.model.lanes: greedily in order of
start (then unit id), a run of k cores takes the k lowest slots free over its
whole run.  Agents count their slots, they do not number them, so these slot
numbers are the timeline's: the same in `troy report`'s Gantt chart
(``<pilot id>/<slot>``) and in its export's ``slot`` column.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from troy.core.views import PilotView, ServiceView
from troy.model.lanes import assign_rows
from troy.model.states import State


@dataclass(frozen=True)
class Bar:
    """One slot taken by one run of a unit: a row of the timeline from start to end."""

    unit_id: str
    pilot: str
    #: Row of the whole timeline, 0 at the top (pilots stacked in order).
    row: int
    #: The pilot's slot: the row counted from the pilot's first.
    slot: int
    #: Which run of the unit (0 for the first).
    run: int
    start: float
    #: For a unit still running: the end of the timeline.
    end: float
    #: How the run ended: a final state, Running, or New when it was sent back to run again.
    state: State


@dataclass
class PilotRows:
    """The rows of one pilot: ``rows`` of them from ``first_row``; the last ``overflow``
    are beyond its slots."""

    id: str
    rm: str
    slots: int | None
    first_row: int
    rows: int
    overflow: int = 0


@dataclass
class Timeline:
    """The timeline layout: its time span (epoch seconds), the pilots' rows and the bars."""

    start: float
    end: float
    #: Every unit is final (else the end is the time now or the last recorded event).
    finished: bool
    pilots: list[PilotRows] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)

    @property
    def rows(self) -> int:
        """Rows of all pilots."""
        return sum(p.rows for p in self.pilots)


def bounds(view: ServiceView, now: float | None = None) -> tuple[float, float, bool]:
    """Start, end and whether every unit is final."""
    if not view.units:
        return view.created, view.created, True
    start = min(u.history[0][1] for u in view.units)
    finished = all(u.state.is_final for u in view.units)
    finals = [u.history[-1][1] for u in view.units if u.state.is_final]
    recorded = max(ts for u in view.units for _, ts in u.history)
    if finished:
        return start, max(finals), True
    return start, max(recorded, now if now is not None else recorded), False


def layout(view: ServiceView, now: float | None = None) -> Timeline:
    """Rows per pilot and a bar per slot taken by each run; ``now`` ends running units.

    A pilot of unknown slot count gets as many rows as it needs; one whose
    recorded runs overlap more than its slots gets overflow rows.
    """
    start, end, finished = bounds(view, now)
    timeline = Timeline(start, end, finished)
    pilots: dict[str, PilotView | None] = {p.id: p for p in view.pilots}
    runs: dict[str, list[tuple[float, str, int, float, int, State]]] = {}
    for unit in view.units:
        for index, run in enumerate(unit.runs):
            where = run.pilot or unit.pilot or "?"
            pilots.setdefault(where, None)
            stop = end if run.end is None else run.end
            runs.setdefault(where, []).append(
                (run.start, unit.id, index, stop, run.cores, run.state)
            )
    first_row = 0
    for pilot_id, pilot in pilots.items():
        slots = pilot.slots if pilot is not None else None
        ordered = sorted(runs.get(pilot_id, []))
        taken, rows = assign_rows([(r[0], r[3], r[4]) for r in ordered], slots or 0)
        overflow = rows - slots if slots is not None and rows > slots else 0
        rm = pilot.rm if pilot is not None else "?"
        timeline.pilots.append(PilotRows(pilot_id, rm, slots, first_row, rows, overflow))
        for (run_start, unit_id, index, run_end, _, state), slots_taken in zip(
            ordered, taken, strict=True
        ):
            timeline.bars += [
                Bar(unit_id, pilot_id, first_row + s, s, index, run_start, run_end, state)
                for s in slots_taken
            ]
        first_row += rows
    return timeline
