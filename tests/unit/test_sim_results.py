"""The figures and files a run comes to: units.csv, summary.csv/json, run.json."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from troy.sim.model import UnitRecord
from troy.sim.result import PilotUsage
from troy.sim.results import (
    UNIT_COLUMNS,
    ResultWriter,
    jain,
    percentile,
    summarize,
)

RECORDS = [
    UnitRecord("u.0", "u", "A", 1, 0.0, 0.0, 1.0, "Done", bytes_in=10, bytes_moved=0),
    UnitRecord("u.1", "u", "B", 1, 0.0, 0.0, 2.0, "Done", bytes_in=10, bytes_moved=10),
    UnitRecord("u.2", "u", "A", 1, 0.0, 1.0, 4.0, "Done", tries=1),
    UnitRecord("u.3", "u", "B", 1, 0.0, 2.0, 6.0, "Done"),
    UnitRecord("u.4", "u", None, 8, 0.0, None, None, "Failed"),
]
PILOTS = (PilotUsage("A", slots=1, busy=4.0, up=6.0), PilotUsage("B", slots=1, busy=6.0, up=6.0))


def test_percentiles_are_nearest_rank() -> None:
    assert percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 0.95) == 4.0
    assert percentile([5.0], 0.99) == 5.0
    assert percentile([], 0.5) is None


def test_jain_is_one_when_equal_and_one_over_n_when_one_gets_all() -> None:
    assert jain([3.0, 3.0, 3.0]) == pytest.approx(1.0)
    assert jain([6.0, 0.0, 0.0]) == pytest.approx(1 / 3)
    assert jain([]) is None and jain([0.0, 0.0]) is None


def test_summary_of_the_two_pilot_example() -> None:
    summary = summarize(RECORDS, PILOTS, "round_robin")

    assert (summary.units, summary.done, summary.failed) == (5, 4, 1)
    assert summary.makespan == 6.0
    assert summary.mean_wait == pytest.approx(0.75)  # waits 0, 0, 1, 2
    assert (summary.p50_wait, summary.p95_wait, summary.p99_wait) == (0.0, 2.0, 2.0)
    assert summary.utilisation == pytest.approx(10.0 / 12.0)
    assert summary.bytes_moved == 10
    assert summary.units_per_pilot == {"A": 2, "B": 2}
    assert summary.fairness == pytest.approx(1.0)


def test_a_pilot_that_ran_nothing_counts_against_fairness() -> None:
    pilots = (*PILOTS, PilotUsage("C", slots=1, busy=0.0, up=6.0))

    summary = summarize(RECORDS, pilots, "round_robin")

    assert summary.units_per_pilot == {"A": 2, "B": 2, "C": 0}
    assert summary.fairness == pytest.approx(16 / (3 * 8))


def test_the_files_hold_every_row_and_the_run(tmp_path: Path) -> None:
    writer = ResultWriter(tmp_path / "out")
    for repetition in (0, 1):
        writer.add(RECORDS, summarize(RECORDS, PILOTS, "round_robin", "sim", repetition))
    writer.close({"workload": "w.yaml", "schedulers": {"round_robin": {}}, "seed": 7})

    with (tmp_path / "out" / "units.csv").open() as table:
        rows = list(csv.DictReader(table))
    assert tuple(rows[0]) == UNIT_COLUMNS
    assert len(rows) == 10
    assert rows[2]["wait"] == "1.0" and rows[2]["tries"] == "1" and rows[4]["start"] == ""
    assert {row["repetition"] for row in rows} == {"0", "1"}
    with (tmp_path / "out" / "summary.csv").open() as table:
        summary_rows = list(csv.DictReader(table))
    assert [row["makespan"] for row in summary_rows] == ["6.0", "6.0"]
    summaries = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summaries[1]["units_per_pilot"] == {"A": 2, "B": 2}
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["seed"] == 7 and run["workload"] == "w.yaml"
    assert {"troy", "machine"} <= set(run)


def test_the_same_runs_give_the_same_bytes(tmp_path: Path) -> None:
    def write(directory: Path) -> bytes:
        writer = ResultWriter(directory)
        writer.add(RECORDS, summarize(RECORDS, PILOTS, "round_robin"))
        writer.close({"seed": 1})
        return (directory / "units.csv").read_bytes() + (directory / "summary.csv").read_bytes()

    assert write(tmp_path / "a") == write(tmp_path / "b")
