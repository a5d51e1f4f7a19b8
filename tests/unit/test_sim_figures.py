"""The research figures: what each plots (figures.json), checked by hand on small runs.

The figures are drawn with the real matplotlib; their data is checked in the
sidecar, their files only for being PNGs.
"""

from __future__ import annotations

import itertools
import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from troy.cli import main
from troy.model.lanes import assign_rows
from troy.sim.engine import run
from troy.sim.figure_data import (
    ResultsError,
    RunKey,
    UnitRow,
    cdf_points,
    gantt,
    slice_means,
    utilisation,
)
from troy.sim.figures import SKIPPED, write_figures
from troy.sim.model import SimPilot, SimUnit, UnitRecord, Workload
from troy.sim.result import PilotUsage
from troy.sim.results import ResultWriter, Summary, summarize

PNG = b"\x89PNG\r\n\x1a\n"
# Two one-slot pilots, units of 1, 2, 3 and 4 s, round robin: A runs one (0-1) then
# three (1-4), B runs two (0-2) then four (2-6).
ANALYTIC = Workload(
    path="analytic",
    seed=1,
    pilots=(SimPilot("A", 1), SimPilot("B", 1)),
    units=tuple(
        SimUnit(name, name, float(seconds))
        for seconds, name in enumerate(("one", "two", "three", "four"), start=1)
    ),
)


def write_results(directory: Path, runs: list[tuple[list[UnitRecord], Summary]]) -> Path:
    writer = ResultWriter(directory)
    for records, summary in runs:
        writer.add(records, summary)
    writer.close({"workload": "test"})
    return directory


def analytic_run(directory: Path) -> Path:
    result = run(ANALYTIC, "round_robin")
    summary = summarize(result.records, result.pilots, "round_robin", "sim", 0)
    return write_results(directory, [(list(result.records), summary)])


def set_pilots(directory: Path, pilots: list[dict[str, Any]] | None) -> None:
    """Replace each run's pilots (and their slots) in summary.json; None: leave them out."""
    path = directory / "summary.json"
    rows = json.loads(path.read_text())
    for row in rows:
        row.pop("pilots", None)
        if pilots is not None:
            row["pilots"] = pilots
    path.write_text(json.dumps(rows))


def sidecar(directory: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((directory / "figures.json").read_text())
    return data


# --- the analytic case -----------------------------------------------------------------------


def test_the_analytic_run_plots_what_is_computed_by_hand(tmp_path: Path) -> None:
    paths = write_figures(analytic_run(tmp_path))

    names = ["gantt-round_robin-sim-0.png", "utilisation-round_robin-sim-0.png"]
    names += ["wait-cdf.png", "makespan.png", "figures.json"]
    assert [path.name for path in paths] == names
    for path in paths[:-1]:
        assert path.read_bytes()[:8] == PNG
    data = sidecar(tmp_path)
    assert sorted(data) == sorted(names[:-1])
    chart = data["gantt-round_robin-sim-0.png"]
    assert chart["rows"] == ["A/0", "B/0"] and chart["extra_rows"] == []
    assert [(b["unit"], b["row"], b["start"], b["end"], b["state"]) for b in chart["bars"]] == [
        ("one", 0, 0.0, 1.0, "Done"),
        ("two", 1, 0.0, 2.0, "Done"),
        ("three", 0, 1.0, 4.0, "Done"),
        ("four", 1, 2.0, 6.0, "Done"),
    ]
    assert (chart["end"], chart["total_bars"], chart["until"]) == (6.0, 4, None)
    assert chart["title"].startswith("round_robin (sim), repetition 0")
    use = data["utilisation-round_robin-sim-0.png"]
    assert (use["steps"], use["slots"]) == ([[0.0, 1.0], [4.0, 0.5], [6.0, 0.0]], 2)
    (line,) = data["wait-cdf.png"]["lines"]
    assert (line["scheduler"], line["mode"], line["waits"]) == ("round_robin", "sim", 4)
    assert line["points"] == [[0.0, 0.5], [1.0, 0.75], [2.0, 1.0]]
    (bar,) = data["makespan.png"]["bars"]
    assert (bar["scheduler"], bar["median"], bar["low"], bar["high"]) == ("round_robin", 6, 6, 6)


def test_without_the_pilots_slots_utilisation_is_busy_cores(tmp_path: Path) -> None:
    set_pilots(analytic_run(tmp_path), None)

    write_figures(tmp_path)

    use = sidecar(tmp_path)["utilisation-round_robin-sim-0.png"]
    assert (use["steps"], use["slots"]) == ([[0.0, 2.0], [4.0, 1.0], [6.0, 0.0]], None)


def test_with_the_pilots_slots_utilisation_is_a_share_of_them(tmp_path: Path) -> None:
    set_pilots(analytic_run(tmp_path), [{"id": "B", "slots": 1}, {"id": "A", "slots": 1}])

    write_figures(tmp_path)

    data = sidecar(tmp_path)
    use = data["utilisation-round_robin-sim-0.png"]
    assert (use["steps"], use["slots"]) == ([[0.0, 1.0], [4.0, 0.5], [6.0, 0.0]], 2)
    assert data["gantt-round_robin-sim-0.png"]["rows"] == ["B/0", "A/0"]  # in the listed order


def test_the_sidecar_is_the_same_byte_for_byte(tmp_path: Path) -> None:
    write_figures(analytic_run(tmp_path / "a"))
    write_figures(analytic_run(tmp_path / "b"))

    first = (tmp_path / "a" / "figures.json").read_bytes()
    assert first == (tmp_path / "b" / "figures.json").read_bytes()
    assert first == (json.dumps(json.loads(first), indent=1, sort_keys=True) + "\n").encode()


# --- repetitions and modes -------------------------------------------------------------------


def ended_at(ends: list[float]) -> list[UnitRecord]:
    return [
        UnitRecord(f"u{i}", "u", "A", 1, 0.0, end - 1.0, end, "Done") for i, end in enumerate(ends)
    ]


def test_makespan_bars_are_median_and_range_with_modes_side_by_side(tmp_path: Path) -> None:
    runs = []
    for scheduler, mode, makespans in [
        ("round_robin", "real", [8.0, 7.0, 9.0]),
        ("round_robin", "sim", [6.0, 6.0, 6.0]),
        ("backfill", "sim", [3.0, 5.0]),
    ]:
        for repetition, makespan in enumerate(makespans):
            records = ended_at([1.0, makespan])
            pilots = (PilotUsage("A", 1, busy=makespan, up=makespan),)
            runs.append((records, summarize(records, pilots, scheduler, mode, repetition)))

    write_figures(write_results(tmp_path, runs))

    data = sidecar(tmp_path)
    bars = [
        (b["scheduler"], b["mode"], b["median"], b["low"], b["high"])
        for b in data["makespan.png"]["bars"]
    ]
    assert bars == [
        ("round_robin", "sim", 6.0, 6.0, 6.0),
        ("round_robin", "real", 8.0, 7.0, 9.0),
        ("backfill", "sim", 4.0, 3.0, 5.0),
    ]
    lines = [(ln["scheduler"], ln["mode"], ln["waits"]) for ln in data["wait-cdf.png"]["lines"]]
    assert lines == [("round_robin", "sim", 6), ("round_robin", "real", 6), ("backfill", "sim", 4)]
    assert "gantt-round_robin-real-2.png" in data and "utilisation-backfill-sim-1.png" in data
    assert len(data) == 2 * 8 + 3  # a Gantt and a utilisation per run, CDF, makespan, comparison
    # waits of each run: 0 and makespan - 1; pooled over repetitions, nearest rank
    compared = [
        (c["scheduler"], c["mode"], c["runs"], c["makespan"], c["p50_wait"], c["p95_wait"],
         c["p99_wait"], c["utilisation"])
        for c in data["comparison.png"]["runs"]
    ]  # fmt: skip
    assert compared == [
        ("round_robin", "sim", 3, 6.0, 0.0, 5.0, 5.0, 1.0),
        ("round_robin", "real", 3, 8.0, 0.0, 8.0, 8.0, 1.0),
        ("backfill", "sim", 2, 4.0, 0.0, 4.0, 4.0, 1.0),
    ]


def test_one_scheduler_and_mode_has_no_comparison(tmp_path: Path) -> None:
    write_figures(analytic_run(tmp_path))

    assert "comparison.png" not in sidecar(tmp_path)
    assert not (tmp_path / "comparison.png").exists()


# --- rows of the Gantt chart -----------------------------------------------------------------


def peak(runs: list[tuple[float, float, int]]) -> int:
    """Most cores busy at once (a run's end frees its cores before a start at that instant)."""
    events = sorted([(end, -cores) for _, end, cores in runs] + [(s, c) for s, _, c in runs])
    busy = best = 0
    for _, change in events:
        busy += change
        best = max(best, busy)
    return best


@pytest.mark.parametrize("seed", range(30))
def test_rows_never_overlap_and_are_as_few_as_possible(seed: int) -> None:
    draw = random.Random(seed)
    runs = []
    for _ in range(draw.randrange(1, 60)):
        start = float(draw.randrange(0, 40))
        runs.append((start, start + draw.choice([0.0, 1.0, 2.5, 7.0]), draw.randrange(1, 5)))
    slots = draw.randrange(0, 12)

    taken, rows = assign_rows(runs, slots)

    spans: dict[int, list[tuple[float, float]]] = {}
    for (start, end, cores), mine in zip(runs, taken, strict=True):
        assert len(set(mine)) == cores and all(0 <= row < rows for row in mine)
        for row in mine:
            spans.setdefault(row, []).append((start, end))
    for row_spans in spans.values():
        row_spans.sort()
        for (_, end), (start, _) in itertools.pairwise(row_spans):
            assert end <= start
    assert rows >= max(slots, peak(runs))
    if all(end > start for start, end, _ in runs):  # a run of no time may need a row of its own
        assert rows == max(slots, peak(runs))


@pytest.mark.parametrize("seed", range(10))
def test_gantt_bars_never_overlap_in_a_row(seed: int) -> None:
    draw = random.Random(seed)
    units = []
    for index in range(200):
        start = draw.uniform(0, 50)
        end = start + draw.uniform(0, 10)
        pilot = draw.choice("PQR")
        units.append(UnitRow(f"u{index}", pilot, draw.randrange(1, 4), 0.0, start, end, start,
                             draw.choice(["Done", "Failed"])))  # fmt: skip

    chart = gantt(RunKey("random", "sim", seed), units, [("P", 4), ("Q", None)])

    by_row: dict[int, list[tuple[float, float]]] = {}
    for bar in chart.bars:
        by_row.setdefault(bar.row, []).append((bar.start, bar.end))
    for spans in by_row.values():
        spans.sort()
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    assert len(chart.bars) == sum(u.cores for u in units)
    assert [label.split("/")[0] for label in chart.rows] == sorted(
        label.split("/")[0] for label in chart.rows
    )  # P, then Q, then R (only in units.csv)


def test_a_pilot_that_ran_more_at_once_than_its_slots_gets_extra_rows(tmp_path: Path) -> None:
    records = [
        UnitRecord("a", "u", "A", 1, 0.0, 0.0, 4.0, "Done"),
        UnitRecord("b", "u", "A", 2, 0.0, 1.0, 3.0, "Failed"),
        UnitRecord("c", "u", "B", 1, 0.0, 0.0, 1.0, "Canceled"),
        UnitRecord("d", "u", None, 1, 0.0, None, None, "Failed"),
    ]
    pilots = (PilotUsage("A", 1, busy=6.0, up=4.0), PilotUsage("B", 1, busy=1.0, up=4.0))
    write_results(tmp_path, [(records, summarize(records, pilots, "s", "real", 0))])
    set_pilots(tmp_path, [{"id": "A", "slots": 1}, {"id": "B", "slots": 2}])

    write_figures(tmp_path)

    chart = sidecar(tmp_path)["gantt-s-real-0.png"]
    assert chart["rows"] == ["A/0", "A/1*", "A/2*", "B/0", "B/1"]
    assert chart["extra_rows"] == [1, 2]
    assert [(b["unit"], b["row"], b["state"]) for b in chart["bars"]] == [
        ("a", 0, "Done"),
        ("c", 3, "Canceled"),
        ("b", 1, "Failed"),
        ("b", 2, "Failed"),
    ]
    assert "rows beyond a pilot's slots" in chart["title"]


def test_a_pilot_of_unknown_slots_gets_the_rows_it_needs_and_none_extra() -> None:
    units = [
        UnitRow("a", "A", 1, 0.0, 0.0, 4.0, 0.0, "Done"),
        UnitRow("b", "A", 2, 0.0, 1.0, 3.0, 1.0, "Done"),
        UnitRow("c", "A", 1, 0.0, 4.0, 5.0, 4.0, "Done"),
    ]

    chart = gantt(RunKey("s", "real", 0), units, [])

    assert (chart.rows, chart.extra_rows) == (["A/0", "A/1", "A/2"], [])
    assert [(b.unit, b.row) for b in chart.bars] == [("a", 0), ("b", 1), ("b", 2), ("c", 0)]


def test_a_huge_run_draws_the_bars_that_start_first_and_says_so() -> None:
    units = [UnitRow(f"u{i}", "A", 1, 0.0, float(i), i + 1.0, float(i), "Done") for i in range(10)]

    chart = gantt(RunKey("s", "sim", 0), units, [("A", 1)], max_bars=4)

    assert [bar.unit for bar in chart.bars] == ["u0", "u1", "u2", "u3"]
    assert (chart.total_bars, chart.until, chart.end) == (10, 4.0, 4.0)
    assert "first 4 of 10 bars drawn: those starting before 4 s" in chart.title


# --- CDF and utilisation of big runs ---------------------------------------------------------


def test_cdf_points_are_one_per_distinct_wait_thinned_beyond_the_limit() -> None:
    assert cdf_points([2.0, 0.0, 1.0, 0.0]) == [(0.0, 0.5), (1.0, 0.75), (2.0, 1.0)]
    points = cdf_points([float(i) for i in range(1000)], max_points=10)
    assert points == [(100.0 * k - 1.0, k / 10) for k in range(1, 11)]


def test_many_steps_become_means_over_equal_slices() -> None:
    assert slice_means([(0.0, 2.0), (4.0, 1.0), (6.0, 0.0)], 3) == [
        (0.0, 2.0),
        (2.0, 2.0),
        (4.0, 1.0),
        (6.0, 0.0),
    ]
    assert slice_means([(0.0, 2.0), (3.0, 0.0), (4.0, 0.0)], 2) == [
        (0.0, 2.0),
        (2.0, 1.0),
        (4.0, 0.0),
    ]
    units = [UnitRow(f"u{i}", "A", 1, 0.0, float(i), i + 0.5, float(i), "Done") for i in range(8)]
    use = utilisation(RunKey("s", "sim", 0), units, slots=2, max_steps=4)
    assert use.slice == 1.875 and len(use.steps) == 5
    assert use.steps[-1] == (7.5, 0.0)
    assert sum(value * use.slice for _, value in use.steps[:-1]) == pytest.approx(8 * 0.5 / 2)


# --- files and errors ------------------------------------------------------------------------


def test_missing_result_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match=r"units\.csv"):
        write_figures(tmp_path)
    analytic_run(tmp_path)
    (tmp_path / "summary.json").write_text('[{"scheduler": "x"}]')
    with pytest.raises(ResultsError, match=r"summary\.json: row 0: bad or missing 'mode'"):
        write_figures(tmp_path)


ANALYTIC_YAML = """\
seed: 1
pilots:
  - {name: A, slots: 1}
  - {name: B, slots: 1}
units:
  - {name: one, runtime: 1}
  - {name: two, runtime: 2}
"""


def test_simulate_draws_the_figures_unless_told_not_to(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workload = tmp_path / "w.yaml"
    workload.write_text(ANALYTIC_YAML)

    assert main(["simulate", str(workload), "--out", str(tmp_path / "a")]) == 0
    assert main(["compare", str(workload), "--schedulers", "round_robin,random",
                 "--out", str(tmp_path / "b"), "--no-figures"]) == 0  # fmt: skip

    out = capsys.readouterr().out
    assert f"wait-cdf.png, makespan.png, figures.json to {tmp_path / 'a'}" in out
    assert (tmp_path / "a" / "gantt-round_robin-sim-0.png").read_bytes()[:8] == PNG
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [
        "run.json",
        "summary.csv",
        "summary.json",
        "units.csv",
    ]


BLOCKED = """\
import sys
sys.modules["matplotlib"] = None  # as if it were not installed: its import fails
from troy.cli import main
from troy.sim.figures import FiguresUnavailable, write_figures
try:
    write_figures(sys.argv[2])
except FiguresUnavailable as exc:
    print("raised:", exc)
sys.exit(main(["simulate", sys.argv[1], "--out", sys.argv[2]]))
"""


def test_without_matplotlib_the_figures_are_skipped_with_one_line(tmp_path: Path) -> None:
    workload = tmp_path / "w.yaml"
    workload.write_text(ANALYTIC_YAML)
    out = tmp_path / "out"

    done = subprocess.run(
        [sys.executable, "-c", BLOCKED, str(workload), str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert f"raised: {SKIPPED}\n" in done.stdout
    assert f"\n  {SKIPPED}\n" in done.stdout and "Traceback" not in done.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "run.json",
        "summary.csv",
        "summary.json",
        "units.csv",
    ]
