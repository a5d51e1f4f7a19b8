"""A recorded work-unit service as rows: one plain dict per unit, for CSV, JSON and pandas.

The rows of `troy report --csv/--json` and `WorkUnitService.records()`, with
the columns of troy.model.unit_columns.EXPORT_COLUMNS in that order.  Times
are epoch seconds; what is not known is None.  The research tools' units.csv
rows of a real run (troy.cli.real_records) are made from these, shifted to
the run's start, so both tables say the same of a unit.
"""

from __future__ import annotations

from typing import Any

from troy.core.timeline import Timeline, layout
from troy.core.views import ServiceView, UnitView


def unit_rows(view: ServiceView, timeline: Timeline | None = None) -> list[dict[str, Any]]:
    """One row per unit of ``view``, in submission order; ``timeline`` numbers the slots."""
    laid = timeline if timeline is not None else layout(view)
    slots: dict[tuple[str, int], int] = {}
    for bar in laid.bars:
        key = (bar.unit_id, bar.run)
        slots[key] = min(slots.get(key, bar.slot), bar.slot)
    return [unit_row(unit, slots.get((unit.id, len(unit.runs) - 1))) for unit in view.units]


def unit_row(unit: UnitView, slot: int | None = None) -> dict[str, Any]:
    """The row of one unit; ``slot``: where its last run is on the timeline."""
    submit = unit.history[0][1] if unit.history else None
    last = unit.runs[-1] if unit.runs else None
    start = last.start if last is not None else None
    end = last.end if last is not None else None
    staged_in = [t for t in unit.transfers if t.get("dir") == "in"]
    staged_out = [t for t in unit.transfers if t.get("dir") == "out"]
    moved = sum(_bytes(t) for t in staged_in if not t.get("local", True))
    return {
        "id": unit.id,
        "name": unit.name,
        "pilot": last.pilot if last is not None else unit.pilot,
        "slot": slot,
        "host": last.host if last is not None else None,
        "cores": unit.cores,
        "submit": submit,
        "start": start,
        "end": end,
        "wait": None if start is None or submit is None else start - submit,
        "run": None if start is None or end is None else end - start,
        "state": str(unit.state),
        "exit_code": unit.exit_code,
        "tries": max(0, len(unit.runs) - 1),
        "bytes_in": sum(_bytes(t) for t in staged_in),
        "bytes_out": sum(_bytes(t) for t in staged_out),
        "bytes_moved": moved,
        "local": all(t.get("local", True) for t in staged_in) if staged_in else None,
    }


def _bytes(transfer: dict[str, Any]) -> int:
    return int(transfer.get("bytes") or 0)
