"""Read recorded jobs to replay: the Standard Workload Format, and troy's own ``units.csv``.

SWF (the Parallel Workloads Archive's format, https://www.cs.huji.ac.il/labs/parallel/workload/swf.html):
lines starting with ``;`` are comments, every other non-blank line is one job
of 18 whitespace-separated numbers.  A job's submit time is field 2, its run
time field 4, its processors field 5 (allocated) or, where that is -1, field 8
(requested); field 9 (requested time, seconds), if positive, becomes its
``wall_time_limit`` (in minutes, as in unit descriptions).  Jobs whose run
time is negative (-1: unknown, e.g. cancelled before they ran) or whose
processors are not positive are skipped.  Other fields are not read.

CSV: the ``units.csv`` troy writes (`troy.sim.model.UnitRecord`), with a
header naming at least ``id, name, cores, submit, start, end``; a job's run
time is end - start.  Rows with an empty start or end (units that never ran)
are skipped.  A file of several runs (columns ``scheduler``, ``mode``,
``repetition``) is replayed for one run: the one `run` selects, else the
run of the first row.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from dataclasses import dataclass

from troy.model.documents import read_text
from troy.model.errors import BadWorkload

SWF_FIELDS = 18
CSV_COLUMNS = ("id", "name", "cores", "submit", "start", "end")
RUN_COLUMNS = ("scheduler", "mode", "repetition")
_SWF_NAMES = {
    2: "submit time",
    4: "run time",
    5: "allocated processors",
    8: "requested processors",
    9: "requested time",
}


@dataclass(frozen=True, slots=True)
class TraceJob:
    """One job of a trace, as recorded (`submit` not yet shifted)."""

    #: Its line in the trace file.
    line: int
    submit: float
    runtime: float
    cores: int
    #: Minutes (SWF's requested time), or None.
    wall_time_limit: float | None = None


@dataclass(frozen=True, slots=True)
class Trace:
    """The jobs to replay, and how many lines of jobs were skipped."""

    jobs: list[TraceJob]
    skipped: int


def read_swf(path: str, context: str = "") -> Trace:
    """The jobs of the SWF file `path`; BadWorkload naming its line and field if one is bad.

    `context` is added to messages (which workload entry reads the trace).
    """
    jobs: list[TraceJob] = []
    skipped = 0
    for number, text in enumerate(read_text(path, "trace", BadWorkload).splitlines(), 1):
        text = text.strip()
        if not text or text.startswith(";"):
            continue
        parts = text.split()
        if len(parts) != SWF_FIELDS:
            message = f"expected {SWF_FIELDS} whitespace-separated fields, got {len(parts)}"
            raise BadWorkload(path, number, None, message + context)

        values: dict[int, float] = {}
        for index in _SWF_NAMES:
            value = _number(parts[index - 1])
            if value is None:
                name = f"field {index} ({_SWF_NAMES[index]})"
                message = f"expected a number, got {parts[index - 1]!r}"
                raise BadWorkload(path, number, name, message + context)
            values[index] = value
        submit, runtime, processors, requested = values[2], values[4], values[5], values[9]
        if processors == -1:
            processors = values[8]
        if runtime < 0 or processors <= 0:
            skipped += 1
            continue
        if not processors.is_integer():
            index = 5 if parts[4] != "-1" else 8
            name = f"field {index} ({_SWF_NAMES[index]})"
            message = f"expected a whole number of processors, got {parts[index - 1]!r}"
            raise BadWorkload(path, number, name, message + context)
        limit = requested / 60.0 if requested > 0 else None
        jobs.append(TraceJob(number, submit, runtime, int(processors), limit))
    return Trace(jobs, skipped)


def read_units_csv(path: str, run: Mapping[str, str] | None = None, context: str = "") -> Trace:
    """The units of troy's ``units.csv`` at `path` that ran, for one run (see the module)."""
    lines = read_text(path, "trace", BadWorkload).splitlines(keepends=True)
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        raise BadWorkload(path, None, None, "the CSV file is empty" + context) from None
    columns = {name.strip(): index for index, name in enumerate(header)}
    missing = [name for name in CSV_COLUMNS if name not in columns]
    if missing:
        message = (
            f"missing column(s) {', '.join(missing)}; expected at least {', '.join(CSV_COLUMNS)}"
        )
        raise BadWorkload(path, 1, None, message + context)
    for name in run or {}:
        if name not in columns:
            raise BadWorkload(path, 1, None, f"no column '{name}' to select a run by" + context)
    chosen = dict(run) if run else None
    jobs: list[TraceJob] = []
    skipped = 0
    for row in reader:
        number = reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            message = f"expected {len(header)} columns as in the header, got {len(row)}"
            raise BadWorkload(path, number, None, message + context)
        if chosen is None:
            chosen = {name: row[columns[name]] for name in RUN_COLUMNS if name in columns}
        if any(row[columns[name]] != value for name, value in chosen.items()):
            continue

        cells: dict[str, float | None] = {}
        for name in CSV_COLUMNS[2:]:
            text = row[columns[name]].strip()
            cells[name] = None if not text else _number(text)
            if text and cells[name] is None:
                message = f"expected a number, got {text!r}"
                raise BadWorkload(path, number, name, message + context)
        start, end = cells["start"], cells["end"]
        if start is None or end is None:
            skipped += 1
            continue
        if end < start:
            message = f"end {end:g} is before start {start:g}"
            raise BadWorkload(path, number, "end", message + context)
        submit, cores = cells["submit"], cells["cores"]
        if submit is None:
            raise BadWorkload(path, number, "submit", "expected a number, got ''" + context)
        if cores is None or not cores.is_integer() or cores < 1:
            text = row[columns["cores"]]
            message = f"expected a positive whole number, got {text!r}"
            raise BadWorkload(path, number, "cores", message + context)
        jobs.append(TraceJob(number, submit, end - start, int(cores)))
    return Trace(jobs, skipped)


def _number(text: str) -> float | None:
    """`text` as a finite float, else None."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
