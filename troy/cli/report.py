"""What `troy report` computes from a recorded work-unit service: a summary and a timeline.

Everything here is a pure function of a `ServiceView` (plus, for a service
still running, the time now), except `write_report`, which writes the JSON
and PNG files. Time runs from the first submission (the earliest unit's New
timestamp) to the last final timestamp; that span is the makespan.

The timeline has one row per slot of each pilot, pilots stacked in the
order the service recorded them. Every run of a unit (a retried or lost
unit runs more than once) becomes one `Bar` per slot it took.
"""

from __future__ import annotations

import heapq
import json
import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from troy.cli.png import Canvas, Color
from troy.core.views import PilotView, ServiceView
from troy.model.errors import TroyError
from troy.model.states import State

BACKGROUND: Color = (255, 255, 255)
#: An idle slot row.
LANE: Color = (236, 236, 236)
#: An idle row beyond a pilot's slots (the recorded runs overlapped more than its slots).
OVERFLOW_LANE: Color = (250, 218, 218)
#: Lines between pilots, the time axis and its ticks, and the row tabs in the left margin.
INK: Color = (90, 90, 90)
OVERFLOW_TAB: Color = (214, 39, 40)
#: Bar colour by how the run ended; New: it was sent back to run again (retried or lost).
COLORS: dict[State, Color] = {
    State.Done: (44, 160, 44),
    State.Failed: (214, 39, 40),
    State.Canceled: (150, 150, 150),
    State.Running: (31, 119, 180),
    State.New: (255, 127, 14),
}

WIDTH = 1000
LEFT = 24
RIGHT = 16
TOP = 8
BOTTOM = 8
ROW_HEIGHT = 12
ROW_GAP = 2
TICK = 4
#: Rows are made thinner when a picture would be taller than this.
MAX_ROWS_HEIGHT = 8000


class ReportError(TroyError):
    """A report could not be made or written (e.g. the output directory is not writable)."""


@dataclass(frozen=True)
class Bar:
    """One slot taken by one run of a unit: a row of the timeline from start to end."""

    unit_id: str
    pilot: str
    #: Row of the whole picture, 0 at the top (pilots stacked in order).
    row: int
    start: float
    #: For a unit still running: the end of the timeline.
    end: float
    #: How the run ended (see `COLORS`).
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
    """The timeline layout: its time span, the pilots' rows and the bars in them."""

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
    #: Submission to first Running.
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


def _bounds(view: ServiceView, now: float | None) -> tuple[float, float, bool]:
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

    Runs are placed greedily in order of start (then unit id); a unit of k
    cores takes the k lowest rows free over its whole run. A pilot of unknown
    slot count gets as many rows as it needs; one whose recorded runs overlap
    more than its slots gets overflow rows.
    """
    start, end, finished = _bounds(view, now)
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
        placed, rows = _place(sorted(runs.get(pilot_id, [])), slots or 0)
        overflow = rows - slots if slots is not None and rows > slots else 0
        rm = pilot.rm if pilot is not None else "?"
        timeline.pilots.append(PilotRows(pilot_id, rm, slots, first_row, rows, overflow))
        for unit_id, row, run_start, run_end, state in placed:
            timeline.bars.append(Bar(unit_id, pilot_id, first_row + row, run_start, run_end, state))
        first_row += rows
    return timeline


def _place(
    runs: list[tuple[float, str, int, float, int, State]], slots: int
) -> tuple[list[tuple[str, int, float, float, State]], int]:
    """Greedy rows for runs sorted by start: (unit, row, start, end, state) each, and the
    number of rows used (at least ``slots``)."""
    free = list(range(slots))  # a heap: lowest free row first
    busy: list[tuple[float, list[int]]] = []  # (end, rows) of runs still holding rows
    rows = slots
    placed: list[tuple[str, int, float, float, State]] = []
    for run_start, unit_id, _, run_end, cores, state in runs:
        while busy and busy[0][0] <= run_start:
            for row in heapq.heappop(busy)[1]:
                heapq.heappush(free, row)
        taken = [heapq.heappop(free) for _ in range(min(cores, len(free)))]
        while len(taken) < cores:  # more overlap than rows: add one
            taken.append(rows)
            rows += 1
        heapq.heappush(busy, (run_end, taken))
        placed += [(unit_id, row, run_start, run_end, state) for row in sorted(taken)]
    return placed, rows


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


def summarize(view: ServiceView, timeline: Timeline, buckets: int = 20) -> Summary:
    """The summary of ``view`` whose layout is ``timeline``, with ``buckets`` time slices."""
    if buckets < 1:
        raise ReportError(f"buckets: need at least 1, not {buckets}")
    start, end = timeline.start, timeline.end
    counts: dict[str, int] = {}
    for state in State:
        number = sum(1 for u in view.units if u.state == state)
        if number:
            counts[str(state)] = number
    ran = [u for u in view.units if u.runs]
    waits = [u.runs[0].start - u.history[0][1] for u in ran]
    lasts = [u.runs[-1] for u in ran if u.runs[-1].end is not None]
    durations = [run.end - run.start for run in lasts if run.end is not None]
    views = {p.id: p for p in view.pilots}
    pilots: list[PilotSummary] = []
    notes: list[str] = []
    capacity = 0.0
    for rows in timeline.pilots:
        bars = [b for b in timeline.bars if b.pilot == rows.id]
        slots = rows.slots if rows.slots is not None else rows.rows
        active = _active(views.get(rows.id), bars, start, end)
        busy = sum(b.end - b.start for b in bars)
        capacity += slots * active
        use = busy / (slots * active) if slots * active > 0 else None
        units_run = len({b.unit_id for b in bars})
        pilots.append(
            PilotSummary(rows.id, rows.rm, rows.slots, rows.rows, units_run, busy, active, use)
        )
        if rows.overflow:
            notes.append(
                f"pilot {rows.id}: the recorded runs overlap more than its {rows.slots} slots;"
                f" {rows.overflow} overflow row(s) drawn"
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


@dataclass
class Picture:
    """Where the timeline goes on the PNG: pixel rectangles [x0, x1) by [y0, y1)."""

    width: int
    height: int
    #: The timeline's start is at column ``left``, its end ``plot_width`` columns further.
    left: int
    plot_width: int
    row_height: int
    row_gap: int
    #: Top pixel row of each timeline row.
    row_tops: list[int]
    #: Pixel rows of the lines between pilots.
    separators: list[int]
    axis: int
    tick_seconds: float
    #: Pixel columns of the ticks below the axis, one every ``tick_seconds`` from the start.
    ticks: list[int]
    #: One rectangle (x0, y0, x1, y1) per bar of the timeline, in the same order.
    rects: list[tuple[int, int, int, int]]


def x_of(t: float, start: float, end: float, plot_width: int, left: int = LEFT) -> int:
    """The pixel column of time ``t`` on a picture of [start, end]."""
    if end <= start:
        return left
    return left + round((t - start) * plot_width / (end - start))


def _tick_seconds(span: float) -> float:
    """A step of 1, 2 or 5 times 10^k seconds giving at most about ten ticks."""
    if span <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(span / 10))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= span / 10)


def picture(timeline: Timeline, width: int = WIDTH) -> Picture:
    """The pixel geometry of ``timeline`` on a PNG ``width`` pixels wide."""
    pitch = ROW_HEIGHT + ROW_GAP
    if timeline.rows * pitch > MAX_ROWS_HEIGHT:
        pitch = max(1, MAX_ROWS_HEIGHT // timeline.rows)
    gap = min(ROW_GAP, pitch // 3)
    tops: list[int] = []
    lines: list[int] = []
    cursor = TOP
    for index, rows in enumerate(timeline.pilots):
        tops += [cursor + r * pitch for r in range(rows.rows)]
        cursor += rows.rows * pitch
        if index < len(timeline.pilots) - 1:
            lines.append(cursor)
            cursor += 1 + max(gap, 1)
    axis = cursor
    plot_width = width - LEFT - RIGHT
    start, end = timeline.start, timeline.end
    rects = []
    for bar in timeline.bars:
        x0 = x_of(bar.start, start, end, plot_width)
        x1 = max(x_of(bar.end, start, end, plot_width), x0 + 1)
        top = tops[bar.row]
        rects.append((x0, top, x1, top + pitch - gap))
    step = _tick_seconds(end - start)
    count = int((end - start) / step + 1e-9) + 1 if end > start else 1
    ticks = [
        min(x_of(start + k * step, start, end, plot_width), LEFT + plot_width - 1)
        for k in range(count)
    ]
    height = axis + 1 + TICK + BOTTOM
    return Picture(
        width, height, LEFT, plot_width, pitch - gap, gap, tops, lines, axis, step, ticks, rects
    )


def render(timeline: Timeline, geometry: Picture) -> bytes:
    """The timeline drawn as a PNG file."""
    canvas = Canvas(geometry.width, geometry.height, BACKGROUND)
    right = geometry.left + geometry.plot_width
    for rows in timeline.pilots:
        for row in range(rows.first_row, rows.first_row + rows.rows):
            beyond = row - rows.first_row >= rows.rows - rows.overflow
            top, bottom = geometry.row_tops[row], geometry.row_tops[row] + geometry.row_height
            canvas.fill(geometry.left, top, right, bottom, OVERFLOW_LANE if beyond else LANE)
            tab = OVERFLOW_TAB if beyond else INK
            canvas.fill(geometry.left - 8, top, geometry.left - 2, bottom, tab)
    for bar, (x0, y0, x1, y1) in zip(timeline.bars, geometry.rects, strict=True):
        canvas.fill(x0, y0, x1, y1, COLORS[bar.state])
    for y in geometry.separators:
        canvas.fill(geometry.left - 8, y, right, y + 1, INK)
    canvas.fill(geometry.left, geometry.axis, right, geometry.axis + 1, INK)
    for x in geometry.ticks:
        canvas.fill(x, geometry.axis + 1, x + 1, geometry.axis + 1 + TICK, INK)
    return canvas.to_png()


def to_json(summary: Summary, timeline: Timeline, geometry: Picture) -> dict[str, Any]:
    """The report as plain data: the summary, the picture's geometry and every bar."""
    return {
        "service": summary.service,
        "summary": asdict(summary),
        "pilots": [asdict(p) for p in timeline.pilots],
        "image": {
            **{key: value for key, value in asdict(geometry).items() if key != "rects"},
            "start": timeline.start,
            "end": timeline.end,
            "colors": {str(state): list(color) for state, color in COLORS.items()},
        },
        "bars": [
            {
                "unit": bar.unit_id,
                "pilot": bar.pilot,
                "row": bar.row,
                "start": bar.start,
                "end": bar.end,
                "state": str(bar.state),
                "rect": list(rect),
            }
            for bar, rect in zip(timeline.bars, geometry.rects, strict=True)
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
        f"  mean wait    {_seconds(summary.mean_wait)} (submit to Running, {summary.ran} ran)",
        f"  mean run     {_seconds(summary.mean_run)} (Running to final)",
        f"  utilisation  {_percent(summary.utilisation)} of the pilots' slots while they were up",
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
    """A written report: the summary and the files it went to."""

    summary: Summary
    json_path: str
    png_path: str


def write_report(
    view: ServiceView, directory: str, now: float | None = None, buckets: int = 20
) -> Report:
    """Write report-<id>.json and timeline-<id>.png for ``view`` into ``directory``."""
    timeline = layout(view, now)
    summary = summarize(view, timeline, buckets)
    geometry = picture(timeline)
    json_path = os.path.join(directory, f"report-{view.id}.json")
    png_path = os.path.join(directory, f"timeline-{view.id}.png")
    data = to_json(summary, timeline, geometry)
    data["files"] = {"json": json_path, "png": png_path}
    try:
        os.makedirs(directory, exist_ok=True)
        with open(png_path, "wb") as out:
            out.write(render(timeline, geometry))
        with open(json_path, "w", encoding="utf-8") as text:
            json.dump(data, text, indent=1)
            text.write("\n")
    except OSError as exc:
        raise ReportError(
            f"cannot write the report into {directory}: {exc.strerror or exc}"
        ) from exc
    return Report(summary, json_path, png_path)
