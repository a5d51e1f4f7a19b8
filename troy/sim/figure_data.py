"""What each research figure plots, computed from a run's result files (no matplotlib here).

Reads ``units.csv`` and ``summary.json`` (troy.sim.results) alone, so simulated,
real and mixed runs, written by any caller, give their figures alike.  Times on
a run's figures are seconds since its first submission (the origin of its
makespan).  Fields read:

``units.csv``
    scheduler, mode, repetition (which run), id, pilot, cores, submit, start,
    end, wait, state
``summary.json``
    per row: scheduler, mode, repetition, makespan, ``units_per_pilot`` (its
    keys: the pilots, also those that ran nothing) and, when present,
    ``pilots``: a list of ``{"id": ..., "slots": ...}`` (the pilots' slot
    counts, in order; without it Gantt rows are as many as the runs needed and
    utilisation is in busy cores, not a fraction of the slots)

Huge runs are bounded: at most `MAX_BARS` Gantt bars (those starting first),
`MAX_POINTS` points per CDF line and `MAX_STEPS` utilisation steps (then the
mean over equal time slices).
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import os
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from troy.model.errors import TroyError
from troy.model.lanes import assign_rows
from troy.sim.results import percentile

#: The most Gantt bars drawn for one run; beyond, those starting first.
MAX_BARS = 10_000
#: The most points of one wait-time CDF line.
MAX_POINTS = 2_000
#: The most steps of one utilisation curve; beyond, means over equal time slices.
MAX_STEPS = 2_000
#: Final states in legend order; other states follow in alphabetical order.
STATES = ("Done", "Failed", "Canceled")
#: Modes in the order they are drawn side by side; others follow in alphabetical order.
MODES = ("sim", "real")

_UNIT_FIELDS = (
    *("scheduler", "mode", "repetition"),
    *("id", "pilot", "cores", "submit", "start", "end", "wait", "state"),
)


class ResultsError(TroyError):
    """A result file is missing or does not read (its message names the file, line and field)."""


@dataclass(frozen=True, slots=True, order=True)
class RunKey:
    """One run: a scheduler, a mode (sim or real) and a repetition."""

    scheduler: str
    mode: str
    repetition: int

    @property
    def stem(self) -> str:
        """``<scheduler>-<mode>-<repetition>``, safe as part of a file name."""
        return f"{_safe(self.scheduler)}-{_safe(self.mode)}-{self.repetition}"


@dataclass(frozen=True, slots=True)
class UnitRow:
    """The columns of a units.csv row that the figures use."""

    id: str
    #: None if it never ran.
    pilot: str | None
    cores: int
    submit: float
    start: float | None
    end: float | None
    wait: float | None
    state: str


@dataclass
class Results:
    """A directory's result files: units per run and summary rows per run."""

    #: In order of first appearance in units.csv.
    units: dict[RunKey, list[UnitRow]]
    #: The rows of summary.json, in its order.
    summaries: dict[RunKey, dict[str, Any]]

    @property
    def runs(self) -> list[RunKey]:
        """Every run of either file: units.csv's order, then summary.json's."""
        return list(dict.fromkeys([*self.units, *self.summaries]))


@dataclass(frozen=True, slots=True)
class Bar:
    """One slot taken by one unit's (last) run: a row of the Gantt chart from start to end."""

    unit: str
    row: int
    start: float
    end: float
    state: str


@dataclass
class Gantt:
    """A run's Gantt chart: rows (``pilot/slot``, row 0 on top) and the bars drawn in them."""

    title: str
    rows: list[str]
    #: Rows beyond their pilot's slots (its recorded runs overlapped more than its slots).
    extra_rows: list[int]
    bars: list[Bar]
    #: Bars of the whole run; more than ``len(bars)`` when capped at `MAX_BARS`.
    total_bars: int
    #: When capped: the bars drawn are those starting before this time; the axis ends here.
    until: float | None
    #: Where the time axis ends.
    end: float
    #: The time (as in the result files) that is 0 on the axis: the run's first submission.
    origin: float


@dataclass
class Utilisation:
    """A run's busy cores over time: a step function, each value holding until the next time."""

    title: str
    #: All pilots' slots, if summary.json says them; the values are then fractions of them.
    slots: int | None
    steps: list[tuple[float, float]]
    #: When the steps were more than `MAX_STEPS`: the width of the slices averaged over.
    slice: float | None
    origin: float


@dataclass
class CdfLine:
    """The wait times of one scheduler and mode, all repetitions pooled."""

    scheduler: str
    mode: str
    waits: int
    #: (wait, fraction of the waits at most that long), one per distinct wait (or a subset).
    points: list[tuple[float, float]]


@dataclass
class MakespanBar:
    """One scheduler and mode: the median makespan over repetitions and its range."""

    scheduler: str
    mode: str
    median: float
    low: float
    high: float
    makespans: list[float] = field(default_factory=list)


def read_results(directory: str | os.PathLike[str]) -> Results:
    """units.csv and summary.json of ``directory``; ResultsError if one is missing or bad."""
    folder = Path(directory)
    return Results(_read_units(folder / "units.csv"), _read_summaries(folder / "summary.json"))


def _read_units(path: Path) -> dict[RunKey, list[UnitRow]]:
    runs: dict[RunKey, list[UnitRow]] = {}
    try:
        with path.open(newline="", encoding="utf-8") as text:
            reader = csv.reader(text)
            header = next(reader, None)
            if header is None:
                raise ResultsError(f"{path}: empty, expected a header line")
            missing = [name for name in _UNIT_FIELDS if name not in header]
            if missing:
                raise ResultsError(f"{path}: missing column(s) {', '.join(missing)}")
            at = {name: header.index(name) for name in _UNIT_FIELDS}
            for line, row in enumerate(reader, start=2):
                if not row:
                    continue
                try:
                    key = RunKey(row[at["scheduler"]], row[at["mode"]],
                                 _int(row, at, "repetition"))  # fmt: skip
                    unit = UnitRow(
                        id=row[at["id"]],
                        pilot=row[at["pilot"]] or None,
                        cores=_int(row, at, "cores"),
                        submit=_float(row, at, "submit") or 0.0,
                        start=_float(row, at, "start"),
                        end=_float(row, at, "end"),
                        wait=_float(row, at, "wait"),
                        state=row[at["state"]],
                    )
                except (ValueError, IndexError) as exc:
                    raise ResultsError(f"{path}:{line}: {exc}") from None
                runs.setdefault(key, []).append(unit)
    except OSError as exc:
        raise ResultsError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return runs


def _int(row: list[str], at: Mapping[str, int], name: str) -> int:
    try:
        return int(row[at[name]])
    except ValueError:
        raise ValueError(f"{name}: expected a whole number, got {row[at[name]]!r}") from None


def _float(row: list[str], at: Mapping[str, int], name: str) -> float | None:
    text = row[at[name]]
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name}: expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {text!r}")
    return value


def _read_summaries(path: Path) -> dict[RunKey, dict[str, Any]]:
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ResultsError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ResultsError(f"{path}: not JSON: {exc}") from None
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise ResultsError(f"{path}: expected a list of objects, one per run")
    summaries: dict[RunKey, dict[str, Any]] = {}
    for index, row in enumerate(rows):
        try:
            key = RunKey(str(row["scheduler"]), str(row["mode"]), int(row["repetition"]))
            float(row["makespan"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ResultsError(f"{path}: row {index}: bad or missing {exc}") from None
        summaries[key] = row
        _pilots(path, index, row)  # checked now, used later
    return summaries


def _pilots(path: Path | str, index: int, row: Mapping[str, Any]) -> list[tuple[str, int | None]]:
    """The summary row's ``pilots`` as (id, slots), then its ``units_per_pilot`` keys."""
    known: dict[str, int | None] = {}
    listed = row.get("pilots") or []
    if not isinstance(listed, list):
        raise ResultsError(f"{path}: row {index}: pilots: expected a list")
    for pilot in listed:
        slots = pilot.get("slots") if isinstance(pilot, dict) else None
        if (
            not isinstance(pilot, dict)
            or "id" not in pilot
            or not (slots is None or (isinstance(slots, int) and slots >= 0))
        ):
            raise ResultsError(
                f"{path}: row {index}: pilots: expected {{'id': ..., 'slots': n}}, got {pilot!r}"
            )
        known[str(pilot["id"])] = slots
    counts = row.get("units_per_pilot") or {}
    if isinstance(counts, dict):  # summary.json sorts its keys: put P.10 after P.9 again
        for pilot_id in sorted(map(str, counts), key=natural):
            known.setdefault(pilot_id, None)
    return list(known.items())


def natural(text: str) -> tuple[tuple[int, int | str], ...]:
    """A sort key that orders the numbers in ``text`` by value: P.2 before P.10."""
    return tuple((0, int(part)) if part.isdigit() else (1, part)
                 for part in re.split(r"(\d+)", text) if part)  # fmt: skip


def pilots_of(results: Results, key: RunKey) -> list[tuple[str, int | None]]:
    """A run's pilots in order, with their slots where summary.json says them.

    summary.json's pilots come first (``pilots``, then ``units_per_pilot``),
    then those only units.csv names, in order of appearance.
    """
    summary = results.summaries.get(key)
    known = dict(_pilots("summary.json", 0, summary) if summary is not None else [])
    for unit in results.units.get(key, []):
        if unit.start is not None:
            known.setdefault(unit.pilot or "?", None)
    return list(known.items())


def total_slots(pilots: Sequence[tuple[str, int | None]]) -> int | None:
    """The slots of all pilots, or None if one is not known (or there are none)."""
    if not pilots or any(slots is None for _, slots in pilots):
        return None
    return sum(slots or 0 for _, slots in pilots)


def _origin(units: Sequence[UnitRow]) -> float:
    return min((u.submit for u in units), default=0.0)


def _horizon(units: Sequence[UnitRow]) -> float:
    """The last time recorded: a unit that started and did not end runs until then."""
    times = [t for u in units for t in (u.start, u.end) if t is not None]
    return max(times, default=0.0)


def _label(key: RunKey) -> str:
    return f"{key.scheduler} ({key.mode}), repetition {key.repetition}"


def gantt(
    key: RunKey,
    units: Sequence[UnitRow],
    pilots: Sequence[tuple[str, int | None]],
    max_bars: int = MAX_BARS,
) -> Gantt:
    """The Gantt chart of one run: rows per pilot slot (troy.model.lanes), a bar per slot taken.

    ``pilots`` gives the order of the pilots and their slots (None: as many rows
    as needed); a pilot that ran nothing and whose slots are not known has no row.
    """
    origin, horizon = _origin(units), _horizon(units)
    ran: dict[str, list[UnitRow]] = {}
    for unit in units:
        if unit.start is not None:
            ran.setdefault(unit.pilot or "?", []).append(unit)
    order = dict(pilots)
    for pilot_id in ran:
        order.setdefault(pilot_id, None)
    labels: list[str] = []
    extra: list[int] = []
    spans_of: list[tuple[float, int, str, float, str]] = []  # (start, row, unit, end, state)
    for pilot_id, slots in order.items():
        runs = sorted(ran.get(pilot_id, []), key=lambda u: (u.start, u.id))
        spans = [(u.start or 0.0, horizon if u.end is None else u.end, u.cores) for u in runs]
        taken, rows = assign_rows(spans, slots or 0)
        first = len(labels)
        for slot in range(rows):
            beyond = slots is not None and slot >= slots
            labels.append(f"{pilot_id}/{slot}{'*' if beyond else ''}")
            if beyond:
                extra.append(first + slot)
        for unit, (start, end, _), unit_rows in zip(runs, spans, taken, strict=True):
            spans_of += [
                (start - origin, first + row, unit.id, max(end, start) - origin, unit.state)
                for row in unit_rows
            ]
    spans_of.sort(key=lambda span: (span[0], span[1]))
    total = len(spans_of)
    until: float | None = None
    if total > max_bars:
        until = spans_of[max_bars][0]
        spans_of = [s for s in spans_of[:max_bars] if s[0] < until] or spans_of[:max_bars]
    bars = [Bar(unit, row, start, end, state) for start, row, unit, end, state in spans_of]
    end = until if until is not None else horizon - origin
    title = f"{_label(key)}: {sum(len(r) for r in ran.values())} of {len(units)} units ran"
    if until is not None:
        title += f"\nfirst {len(bars)} of {total} bars drawn: those starting before {until:.6g} s"
    if extra:
        title += "\n* rows beyond a pilot's slots (its recorded runs overlap more)"
    return Gantt(title, labels, extra, bars, total, until, max(end, 0.0), origin)


def busy_steps(units: Sequence[UnitRow]) -> list[tuple[float, int]]:
    """Busy cores over time from the units' starts and ends, from the first submission.

    Each (time, cores) holds until the next; only changes are kept, the last is
    0 at the last end.  A unit that started and did not end runs until the last
    time recorded.
    """
    origin, horizon = _origin(units), _horizon(units)
    deltas: dict[float, int] = {}
    for unit in units:
        if unit.start is None:
            continue
        end = max(horizon if unit.end is None else unit.end, unit.start)
        deltas[unit.start] = deltas.get(unit.start, 0) + unit.cores
        deltas[end] = deltas.get(end, 0) - unit.cores
    steps: list[tuple[float, int]] = []
    busy = 0
    for time in sorted(deltas):
        busy += deltas[time]
        if not steps or steps[-1][1] != busy:
            steps.append((time - origin, busy))
    if steps and steps[0][0] > 0:
        steps.insert(0, (0.0, 0))
    return steps


def slice_means(steps: Sequence[tuple[float, float]], count: int) -> list[tuple[float, float]]:
    """The step function averaged over ``count`` equal slices of [0, its last time], then 0."""
    end = steps[-1][0] if steps else 0.0
    if end <= 0 or count < 1:
        return list(steps)
    width = end / count
    sums = [0.0] * count
    for (start, value), (stop, _) in itertools.pairwise(steps):
        low = min(max(int(start / width), 0), count - 1)
        high = min(int(stop / width), count - 1)
        for index in range(low, high + 1):
            overlap = min(stop, (index + 1) * width) - max(start, index * width)
            if overlap > 0:
                sums[index] += value * overlap
    return [(index * width, total / width) for index, total in enumerate(sums)] + [(end, 0.0)]


def utilisation(
    key: RunKey, units: Sequence[UnitRow], slots: int | None, max_steps: int = MAX_STEPS
) -> Utilisation:
    """Busy cores over time of one run, as a fraction of ``slots`` when known (and not 0)."""
    steps: list[tuple[float, float]] = [(t, float(busy)) for t, busy in busy_steps(units)]
    width: float | None = None
    if len(steps) > max_steps:
        steps = slice_means(steps, max_steps)
        width = steps[-1][0] / max_steps
    scale = slots if slots else None
    if scale is not None:
        steps = [(t, value / scale) for t, value in steps]
    what = f"busy share of {scale} slots" if scale is not None else "busy cores"
    title = f"{_label(key)}: {what}"
    if width is not None:
        title += f"\nmeans over {max_steps} slices of {width:.6g} s"
    return Utilisation(title, scale, steps, width, _origin(units))


def cdf_points(values: Iterable[float], max_points: int = MAX_POINTS) -> list[tuple[float, float]]:
    """(value, fraction of values at most it) per distinct value; evenly thinned beyond
    ``max_points`` (the last always kept)."""
    ordered = sorted(values)
    count = len(ordered)
    points = [
        (value, (index + 1) / count)
        for index, value in enumerate(ordered)
        if index + 1 == count or ordered[index + 1] != value
    ]
    if len(points) > max_points:
        step = len(points) / max_points
        points = [points[math.ceil((k + 1) * step) - 1] for k in range(max_points)]
    return points


def _ordered_modes(modes: Iterable[str]) -> list[str]:
    unique = set(modes)
    return [m for m in MODES if m in unique] + sorted(unique - set(MODES))


def wait_cdf(results: Results, max_points: int = MAX_POINTS) -> list[CdfLine]:
    """One line per scheduler and mode (schedulers in order of appearance), repetitions pooled."""
    waits: dict[tuple[str, str], list[float]] = {}
    for key in results.runs:
        pooled = waits.setdefault((key.scheduler, key.mode), [])
        pooled += [u.wait for u in results.units.get(key, []) if u.wait is not None]
    schedulers = list(dict.fromkeys(scheduler for scheduler, _ in waits))
    return [
        CdfLine(scheduler, mode, len(pooled), cdf_points(pooled, max_points))
        for scheduler in schedulers
        for mode in _ordered_modes(m for s, m in waits if s == scheduler)
        for pooled in [waits[scheduler, mode]]
        if pooled
    ]


def makespans(results: Results) -> list[MakespanBar]:
    """One bar per scheduler and mode of summary.json: the median, min and max makespan."""
    values: dict[tuple[str, str], list[float]] = {}
    for key, row in results.summaries.items():
        values.setdefault((key.scheduler, key.mode), []).append(float(row["makespan"]))
    schedulers = list(dict.fromkeys(scheduler for scheduler, _ in values))
    return [
        MakespanBar(scheduler, mode, statistics.median(spans), min(spans), max(spans), spans)
        for scheduler in schedulers
        for mode in _ordered_modes(m for s, m in values if s == scheduler)
        for spans in [values[scheduler, mode]]
    ]


@dataclass
class Compared:
    """One scheduler and mode in the comparison figure: its runs' figures side by side."""

    scheduler: str
    mode: str
    #: Repetitions pooled (the values are medians over them, the waits pooled).
    runs: int
    makespan: float
    #: Percentiles of the pooled waits (nearest rank); None when no unit ran.
    p50_wait: float | None
    p95_wait: float | None
    p99_wait: float | None
    #: Median share of the pilots' slots busy; None when summary.json does not say it.
    utilisation: float | None
    bytes_moved: float


def comparison(results: Results) -> list[Compared]:
    """One entry per scheduler and mode of summary.json, in `makespans` order."""
    waits: dict[tuple[str, str], list[float]] = {}
    rows: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for key, row in results.summaries.items():
        rows.setdefault((key.scheduler, key.mode), []).append(row)
        pooled = waits.setdefault((key.scheduler, key.mode), [])
        pooled += [u.wait for u in results.units.get(key, []) if u.wait is not None]
    compared = []
    for bar in makespans(results):
        group = rows[bar.scheduler, bar.mode]
        pooled = waits[bar.scheduler, bar.mode]
        uses = [float(r["utilisation"]) for r in group if r.get("utilisation") is not None]
        moved = [float(r.get("bytes_moved") or 0) for r in group]
        compared.append(
            Compared(
                bar.scheduler,
                bar.mode,
                len(group),
                bar.median,
                percentile(pooled, 0.50),
                percentile(pooled, 0.95),
                percentile(pooled, 0.99),
                statistics.median(uses) if uses else None,
                statistics.median(moved),
            )
        )
    return compared


def modes_of(bars: Sequence[MakespanBar]) -> list[str]:
    """The modes of ``bars`` in drawing order (sim, real, then others)."""
    return _ordered_modes(bar.mode for bar in bars)


def state_order(states: Iterable[str]) -> list[str]:
    """``states`` once each: Done, Failed, Canceled, then others alphabetically."""
    unique = set(states)
    return [s for s in STATES if s in unique] + sorted(unique - set(STATES))


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.]+", "_", text) or "_"
