"""What a run (simulated or real) comes to: the per-unit table and the summary figures.

The same files for ``troy simulate``, ``troy compare`` and, later, a real run,
so one script can read them all:

``units.csv``
    one row per unit: id, name, scheduler, mode (sim or real), repetition,
    pilot, cores, submit, start, end, wait, run, state, tries, bytes_in,
    bytes_moved (troy.model.unit_columns says what each holds; `troy report
    --csv` exports a real run with the same names, and more)
``summary.csv`` / ``summary.json``
    one row per scheduler, mode and repetition: makespan, mean / p50 / p95 /
    p99 wait, utilisation, bytes moved, units per pilot, and Jain's fairness
    index of the per-pilot load
``run.json``
    what produced them: the workload, the schedulers and their options, the
    seeds, troy's version and the machine
"""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from troy.model.unit_columns import RESEARCH_COLUMNS
from troy.sim.model import UnitRecord
from troy.sim.result import PilotUsage

#: The columns of units.csv, in order (their meanings: troy.model.unit_columns).
UNIT_COLUMNS = RESEARCH_COLUMNS


@dataclass(frozen=True, slots=True)
class Summary:
    """The figures of one run: a row of summary.csv."""

    scheduler: str
    mode: str
    repetition: int
    units: int
    done: int
    failed: int
    makespan: float
    mean_wait: float | None
    p50_wait: float | None
    p95_wait: float | None
    p99_wait: float | None
    #: Busy slot-seconds over the slot-seconds the pilots were up (None without pilots).
    utilisation: float | None
    bytes_moved: int
    #: Units that ran (last) on each pilot, by pilot id.
    units_per_pilot: dict[str, int]
    #: Jain's index of the units per pilot: 1 when equal, 1/n when one pilot got them all.
    fairness: float | None
    #: The pilots, in order: ``{"id", "slots"}`` each (summary.json only).
    pilots: list[dict[str, Any]]


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The ``fraction`` percentile of ``values`` (nearest rank; None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def jain(values: Sequence[float]) -> float | None:
    """Jain's fairness index (sum x)^2 / (n * sum x^2); None for no values or all zero."""
    squares = sum(value * value for value in values)
    if not values or squares == 0:
        return None
    return sum(values) ** 2 / (len(values) * squares)


def summarize(
    records: Sequence[UnitRecord],
    pilots: Sequence[PilotUsage],
    scheduler: str,
    mode: str = "sim",
    repetition: int = 0,
) -> Summary:
    """The figures of one run from its unit records and its pilots' use (in their order)."""
    waits = [r.wait for r in records if r.wait is not None]
    ends = [r.end for r in records if r.end is not None]
    start = min((r.submit for r in records), default=0.0)
    per_pilot = {use.id: 0 for use in pilots}
    for record in records:
        if record.pilot is not None and record.start is not None:
            per_pilot[record.pilot] = per_pilot.get(record.pilot, 0) + 1
    capacity = sum(use.slots * use.up for use in pilots)
    busy = sum(use.busy for use in pilots)
    return Summary(
        scheduler=scheduler,
        mode=mode,
        repetition=repetition,
        units=len(records),
        done=sum(1 for r in records if r.state == "Done"),
        failed=sum(1 for r in records if r.state != "Done"),
        makespan=(max(ends) - start) if ends else 0.0,
        mean_wait=sum(waits) / len(waits) if waits else None,
        p50_wait=percentile(waits, 0.50),
        p95_wait=percentile(waits, 0.95),
        p99_wait=percentile(waits, 0.99),
        utilisation=busy / capacity if capacity > 0 else None,
        bytes_moved=sum(r.bytes_moved for r in records),
        units_per_pilot=per_pilot,
        fairness=jain([float(count) for count in per_pilot.values()]),
        pilots=[{"id": use.id, "slots": use.slots} for use in pilots],
    )


def unit_rows(
    records: Iterable[UnitRecord], scheduler: str, mode: str, repetition: int
) -> Iterable[dict[str, Any]]:
    """The units.csv rows of one run."""
    for r in records:
        yield {
            "id": r.id,
            "name": r.name,
            "scheduler": scheduler,
            "mode": mode,
            "repetition": repetition,
            "pilot": r.pilot or "",
            "cores": r.cores,
            "submit": _number(r.submit),
            "start": _number(r.start),
            "end": _number(r.end),
            "wait": _number(r.wait),
            "run": _number(r.run),
            "state": r.state,
            "tries": r.tries,
            "bytes_in": r.bytes_in,
            "bytes_moved": r.bytes_moved,
        }


def _number(value: float | None) -> str:
    # repr of a float is exact and the same on every machine: the files compare byte for byte.
    return "" if value is None else repr(float(value))


class ResultWriter:
    """Writes units.csv as runs finish, then summary.csv, summary.json and run.json."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._units = (self.directory / "units.csv").open("w", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._units, fieldnames=UNIT_COLUMNS, lineterminator="\n")
        self._writer.writeheader()
        self.summaries: list[Summary] = []

    def add(self, records: Sequence[UnitRecord], summary: Summary) -> None:
        """One run: its units and its summary."""
        self._writer.writerows(unit_rows(records, summary.scheduler, summary.mode,
                                         summary.repetition))  # fmt: skip
        self.summaries.append(summary)

    def close(self, run: Mapping[str, Any]) -> None:
        """Write the summaries and run.json (``run`` describes what produced them)."""
        self._units.close()
        rows = [asdict(summary) for summary in self.summaries]
        columns = [f for f in rows[0] if f not in ("units_per_pilot", "pilots")] if rows else []
        with (self.directory / "summary.csv").open("w", newline="", encoding="utf-8") as out:
            writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n",
                                    extrasaction="ignore")  # fmt: skip
            writer.writeheader()
            for row in rows:
                writer.writerow({k: "" if v is None else v for k, v in row.items()})
        _write_json(self.directory / "summary.json", rows)
        _write_json(self.directory / "run.json", {**run, "troy": _troy_version(), **machine()})


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _troy_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("troy")
    except PackageNotFoundError:
        return "unknown"


def machine() -> dict[str, Any]:
    """Where it ran: enough to tell two machines' figures apart."""
    return {
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        }
    }
