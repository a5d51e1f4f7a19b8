"""What `troy report` makes of recorded work-unit services: a summary, figures and exports.

Everything but the ``write_*`` functions is a pure function of a
`ServiceView` and its timeline (troy.core.timeline: one row per pilot slot, a
bar per slot each run took; for a service still running, up to the time
now).  Time runs from the first submission to the last final timestamp; that
span is the makespan.  The figures are the research tools' (troy.sim.figures,
drawn with matplotlib when it is installed), with the Gantt chart and the
utilisation made from the timeline, so a retried unit has a bar per run and
the Gantt's ``<pilot>/<slot>`` rows are the export's ``slot`` column.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from troy.core.timeline import Bar, Timeline, layout
from troy.core.unit_rows import unit_rows
from troy.core.views import PilotView, ServiceView
from troy.model.errors import TroyError
from troy.model.states import State
from troy.model.unit_columns import EXPORT_COLUMNS
from troy.sim.figure_data import Bar as GanttBar
from troy.sim.figure_data import Gantt, RunKey, UnitRow, Utilisation, total_slots, utilisation
from troy.sim.results import percentile

#: A bar's label in the Gantt chart's legend for a run that was sent back to run again.
RUN_AGAIN = "run again"


class ReportError(TroyError):
    """A report could not be made or written (e.g. the output directory is not writable)."""


@dataclass
class PilotSummary:
    """Use of one pilot: ``busy`` slot-seconds over ``active`` seconds of its ``slots``."""

    id: str
    rm: str
    #: None if the pilot did not record its slot count; its rows stand in for it then.
    slots: int | None
    rows: int
    units_run: int
    busy: float
    #: Seconds it was up (Running, or running units) within the makespan.
    active: float
    #: busy / (slots * active); None when that is zero.
    utilisation: float | None


@dataclass
class Summary:
    """The numbers `troy report` prints and writes for one work-unit service."""

    service: str
    units: int
    #: Units per state, in life-cycle order.
    counts: dict[str, int]
    start: float
    end: float
    finished: bool
    makespan: float
    #: Units that started Running at least once; the means are over them.
    ran: int
    #: Submission to (last) start: the export's ``wait`` column.
    mean_wait: float | None
    #: Duration of a unit's last run (Running to final, for a unit run once).
    mean_run: float | None
    #: Busy slot-seconds of all pilots over their slots * active seconds.
    utilisation: float | None
    pilots: list[PilotSummary]
    bucket_seconds: float
    #: Fraction of all pilots' slot-seconds busy in each of equal slices of the makespan.
    buckets: list[float]
    notes: list[str] = field(default_factory=list)
    #: The strategy that placed the units, and the options it ran with.
    scheduler: str | None = None
    scheduler_options: dict[str, Any] = field(default_factory=dict)
    #: Percentiles of the waits (nearest rank, as troy.sim.results); None if none ran.
    p50_wait: float | None = None
    p95_wait: float | None = None
    p99_wait: float | None = None
    #: Bytes the units' last runs staged in, of those moved from another machine, and out.
    bytes_in: int = 0
    bytes_moved: int = 0
    bytes_out: int = 0


def _active(pilot: PilotView | None, bars: list[Bar], start: float, end: float) -> float:
    """Seconds within [start, end] a pilot was up: from its Running (or its first run)
    to its final state (or its last run, or the end)."""
    edges_start = [b.start for b in bars]
    edges_end = [b.end for b in bars]
    if pilot is not None:
        running = [ts for state, ts in pilot.history if state == State.Running]
        if running:
            edges_start.append(running[0])
            edges_end.append(pilot.history[-1][1] if pilot.state.is_final else end)
    if not edges_start:
        return 0.0
    return max(0.0, min(max(edges_end), end) - max(min(edges_start), start))


def summarize(
    view: ServiceView,
    timeline: Timeline,
    buckets: int = 20,
    rows: Sequence[Mapping[str, Any]] | None = None,
) -> Summary:
    """The summary of ``view`` whose layout is ``timeline``, with ``buckets`` time slices;
    ``rows``: its export rows (troy.core.unit_rows), made here when not given."""
    if buckets < 1:
        raise ReportError(f"buckets: need at least 1, not {buckets}")
    start, end = timeline.start, timeline.end
    counts: dict[str, int] = {}
    for state in State:
        number = sum(1 for u in view.units if u.state == state)
        if number:
            counts[str(state)] = number
    if rows is None:
        rows = unit_rows(view, timeline)
    ran = [u for u in view.units if u.runs]
    waits = [row["wait"] for row in rows if row["wait"] is not None]
    lasts = [u.runs[-1] for u in ran if u.runs[-1].end is not None]
    durations = [run.end - run.start for run in lasts if run.end is not None]
    views = {p.id: p for p in view.pilots}
    pilots: list[PilotSummary] = []
    notes: list[str] = []
    capacity = 0.0
    for lane in timeline.pilots:
        bars = [b for b in timeline.bars if b.pilot == lane.id]
        slots = lane.slots if lane.slots is not None else lane.rows
        active = _active(views.get(lane.id), bars, start, end)
        busy = sum(b.end - b.start for b in bars)
        capacity += slots * active
        use = busy / (slots * active) if slots * active > 0 else None
        units_run = len({b.unit_id for b in bars})
        pilots.append(
            PilotSummary(lane.id, lane.rm, lane.slots, lane.rows, units_run, busy, active, use)
        )
        if lane.overflow:
            notes.append(
                f"pilot {lane.id}: the recorded runs overlap more than its {lane.slots} slots;"
                f" {lane.overflow} overflow row(s) drawn"
            )
    total_busy = sum(p.busy for p in pilots)
    return Summary(
        service=view.id,
        units=len(view.units),
        counts=counts,
        start=start,
        end=end,
        finished=timeline.finished,
        makespan=end - start,
        ran=len(ran),
        mean_wait=sum(waits) / len(waits) if waits else None,
        mean_run=sum(durations) / len(durations) if durations else None,
        utilisation=total_busy / capacity if capacity > 0 else None,
        pilots=pilots,
        bucket_seconds=(end - start) / buckets,
        buckets=_buckets(timeline, buckets),
        notes=notes,
        scheduler=view.scheduler,
        scheduler_options=view.scheduler_options,
        p50_wait=percentile(waits, 0.50),
        p95_wait=percentile(waits, 0.95),
        p99_wait=percentile(waits, 0.99),
        bytes_in=sum(row["bytes_in"] for row in rows),
        bytes_moved=sum(row["bytes_moved"] for row in rows),
        bytes_out=sum(row["bytes_out"] for row in rows),
    )


def _buckets(timeline: Timeline, count: int) -> list[float]:
    """Fraction of all pilots' slot-seconds busy in each of ``count`` slices of the span."""
    width = (timeline.end - timeline.start) / count
    slots = sum(p.slots if p.slots is not None else p.rows for p in timeline.pilots)
    if width <= 0 or slots == 0:
        return [0.0] * count
    busy = [0.0] * count
    for bar in timeline.bars:  # in seconds from the start: epoch floats lose microseconds
        start, end = bar.start - timeline.start, bar.end - timeline.start
        for index in range(max(int(start / width), 0), min(int(end / width), count - 1) + 1):
            low, high = index * width, (index + 1) * width
            busy[index] += max(0.0, min(end, high) - max(start, low))
    return [b / (slots * width) for b in busy]


def gantt_of(view: ServiceView, timeline: Timeline, key: RunKey) -> Gantt:
    """``timeline`` as the research Gantt chart: rows ``<pilot>/<slot>``, seconds from its start.

    A bar is labelled by how its run ended: the unit's final state, Running,
    or `RUN_AGAIN` for an earlier run of a unit that was retried or lost.
    """
    labels: list[str] = []
    extra: list[int] = []
    for rows in timeline.pilots:
        for slot in range(rows.rows):
            beyond = slot >= rows.rows - rows.overflow
            labels.append(f"{rows.id}/{slot}{'*' if beyond else ''}")
            if beyond:
                extra.append(rows.first_row + slot)
    origin = timeline.start
    bars = [
        GanttBar(bar.unit_id, bar.row, bar.start - origin, bar.end - origin, _label(bar.state))
        for bar in timeline.bars
    ]
    ran = sum(1 for unit in view.units if unit.runs)
    title = f"{_name(view)}: {ran} of {len(view.units)} units ran"
    if not timeline.finished:
        title += " so far"
    if extra:
        title += "\n* rows beyond a pilot's slots (its recorded runs overlap more)"
    end = max(timeline.end - origin, 0.0)
    return Gantt(title, labels, extra, bars, len(bars), None, end, origin)


def _label(state: State) -> str:
    return RUN_AGAIN if state == State.New else str(state)


def utilisation_of(view: ServiceView, timeline: Timeline, key: RunKey) -> Utilisation:
    """Busy slots over time from the timeline's bars (every run, each slot it took)."""
    busy = [
        UnitRow(bar.unit_id, bar.pilot, 1, timeline.start, bar.start, bar.end, None, "")
        for bar in timeline.bars
    ]
    use = utilisation(key, busy, total_slots([(p.id, p.slots) for p in timeline.pilots]))
    use.title = f"{_name(view)}: {use.title.split(': ', 1)[1]}"  # its own name, not the key's
    return use


def _name(view: ServiceView) -> str:
    """The service and its scheduler, as a figure's title names them."""
    return f"{view.id} ({view.scheduler or '?'})"


def to_json(summary: Summary, timeline: Timeline) -> dict[str, Any]:
    """The report as plain data: the summary, the pilots' rows and every bar (epoch seconds)."""
    return {
        "service": summary.service,
        "summary": asdict(summary),
        "pilots": [asdict(p) for p in timeline.pilots],
        "bars": [
            {
                "unit": bar.unit_id,
                "pilot": bar.pilot,
                "row": bar.row,
                "slot": bar.slot,
                "run": bar.run,
                "start": bar.start,
                "end": bar.end,
                "state": str(bar.state),
            }
            for bar in timeline.bars
        ],
    }


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} s"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def summary_lines(summary: Summary, levels: int = 4) -> list[str]:
    """The summary for people: a few lines and the buckets as a small bar chart."""
    counts = ", ".join(f"{n} {s}" for s, n in summary.counts.items()) or "none"
    so_far = "" if summary.finished else " so far (units still running)"
    lines = [
        f"{summary.service}: {summary.units} units ({counts})",
        f"  makespan     {_seconds(summary.makespan)}{so_far}",
        f"  mean wait    {_seconds(summary.mean_wait)} (submit to (last) Running,"
        f" {summary.ran} ran)",
        f"  wait         p50 {_seconds(summary.p50_wait)}, p95 {_seconds(summary.p95_wait)},"
        f" p99 {_seconds(summary.p99_wait)}",
        f"  mean run     {_seconds(summary.mean_run)} (Running to final)",
        f"  utilisation  {_percent(summary.utilisation)} of the pilots' slots while they were up",
        f"  bytes        {summary.bytes_in} staged in, {summary.bytes_moved} of them moved"
        f" from another machine; {summary.bytes_out} staged out",
    ]
    if summary.scheduler is not None:
        options = json.dumps(summary.scheduler_options, sort_keys=True)
        lines.insert(1, f"  scheduler    {summary.scheduler} {options}")
    for pilot in summary.pilots:
        slots = (
            f"{pilot.slots} slots" if pilot.slots is not None else f"? slots ({pilot.rows} rows)"
        )
        lines.append(
            f"  pilot {pilot.id} on {pilot.rm}: {slots}, {pilot.units_run} units run,"
            f" {pilot.busy:.2f} slot-s busy in {pilot.active:.2f} s up,"
            f" {_percent(pilot.utilisation)} busy"
        )
    lines += [f"  note: {note}" for note in summary.notes]
    lines.append(
        f"  busy slots over time ({len(summary.buckets)} slices of"
        f" {_seconds(summary.bucket_seconds)}; {100 // levels}% a step):"
    )
    heights = [min(levels, round(b * levels)) for b in summary.buckets]
    for level in range(levels, 0, -1):
        cells = "".join("#" if h >= level else " " for h in heights)
        lines.append(f"  {100 * level // levels:>4}% |{cells}|")
    lines.append(f"        +{'-' * len(heights)}+")
    return lines


@dataclass
class Report:
    """One service's report: its summary, timeline and export rows, and its JSON file."""

    view: ServiceView
    summary: Summary
    timeline: Timeline
    rows: list[dict[str, Any]]
    json_path: str


def make_report(view: ServiceView, now: float | None = None, buckets: int = 20) -> Report:
    """The report of ``view`` (not written yet: ``json_path`` is empty)."""
    timeline = layout(view, now)
    rows = unit_rows(view, timeline)
    return Report(view, summarize(view, timeline, buckets, rows), timeline, rows, "")


def write_report(report: Report, directory: str) -> str:
    """Write report-<id>.json of ``report`` into ``directory``; its path."""
    path = os.path.join(directory, f"report-{report.view.id}.json")
    data = to_json(report.summary, report.timeline)
    data["files"] = {"json": path}
    with writing(directory):
        os.makedirs(directory, exist_ok=True)
        with open(path, "w", encoding="utf-8") as text:
            json.dump(data, text, indent=1)
            text.write("\n")
    report.json_path = path
    return path


def write_csv(reports: Sequence[Report], path: str) -> None:
    """The export rows of ``reports`` as CSV (EXPORT_COLUMNS; an unknown value is empty)."""
    with writing(path), open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for report in reports:
            writer.writerows(
                {k: "" if v is None else _csv_value(v) for k, v in row.items()}
                for row in report.rows
            )


def _csv_value(value: Any) -> Any:
    # repr of a float is exact: epoch seconds keep their microseconds.
    return repr(value) if isinstance(value, float) else value


def write_json(reports: Sequence[Report], path: str) -> None:
    """``{"columns", "summaries", "units"}``: the summaries and every export row, as JSON."""
    data = {
        "columns": list(EXPORT_COLUMNS),
        "summaries": [asdict(report.summary) for report in reports],
        "units": [row for report in reports for row in report.rows],
    }
    with writing(path), open(path, "w", encoding="utf-8") as out:
        json.dump(data, out, indent=1)
        out.write("\n")


class writing:
    """Turns an OSError while writing ``where`` into a one-line ReportError."""

    def __init__(self, where: str) -> None:
        self.where = where

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, _: Any) -> None:
        if isinstance(exc, OSError):
            reason = exc.strerror or exc
            raise ReportError(f"cannot write the report into {self.where}: {reason}") from exc
