"""`troy report` of a real workload: the summary, the timeline, the JSON and the PNG.

These tests run a real workload on a two-slot local pilot and check what
the report says against numbers computed here from the units' own
histories, and the PNG's pixels against the recorded timestamps.  The layout
rules on made-up views and the command's error messages are in
tests/unit/test_report_layout.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from png_pixels import Pixels, decode_png

from troy import PilotJobService, WorkUnitService
from troy.cli import main, report
from troy.model.states import State

# --- a real workload ----------------------------------------------------------------------


@dataclass
class Reported:
    """A finished workload and what `troy report` made of it."""

    service: str
    units: list[Any]
    pilot: Any
    data: dict[str, Any]
    pixels: Pixels
    stdout: str
    output: Path


@pytest.fixture
def reported(
    pilots: PilotJobService,
    units: WorkUnitService,
    coordination_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> Reported:
    units.add(pilots)
    pilot = pilots.create("fork://localhost", {"number_of_processes": 2})
    sleepers = [{"executable": "/bin/sleep", "arguments": ["0.2"]} for _ in range(6)]
    failing = {"executable": "/bin/sh", "arguments": ["-c", "sleep 0.1; exit 3"]}
    wide = {"executable": "/bin/sleep", "arguments": ["0.2"], "number_of_processes": 2}
    submitted = units.submit([*sleepers, failing, wide])
    units.wait(timeout=60)
    pilots.cancel()
    output = tmp_path / "out"
    capsys.readouterr()
    code = main(["report", units.id, "--coordination", coordination_url, "--output", str(output)])
    stdout = capsys.readouterr().out
    assert code == 0, stdout
    data = json.loads((output / f"report-{units.id}.json").read_text())
    pixels = decode_png((output / f"timeline-{units.id}.png").read_bytes())
    return Reported(units.id, submitted, pilot, data, pixels, stdout, output)


def span(r: Reported) -> tuple[float, float]:
    """First submission to last final state, from the units' own histories."""
    return min(u.history[0][1] for u in r.units), max(u.history[-1][1] for u in r.units)


def run_of(unit: Any) -> tuple[float, float]:
    """(Running, final) timestamps of a unit that ran once."""
    running = [ts for state, ts in unit.history if state == State.Running]
    assert len(running) == 1 and unit.state.is_final
    return running[0], unit.history[-1][1]


def x_at(t: float, r: Reported) -> int:
    t0, t1 = span(r)
    plot = report.WIDTH - report.LEFT - report.RIGHT
    return report.LEFT + round((t - t0) * plot / (t1 - t0))


def test_workload_finished_as_planned(reported: Reported) -> None:
    states = [u.state for u in reported.units]
    assert states == [State.Done] * 6 + [State.Failed, State.Done]


def test_bars_follow_the_recorded_timestamps(reported: Reported) -> None:
    bars = reported.data["bars"]
    for unit in reported.units:
        start, end = run_of(unit)
        mine = [b for b in bars if b["unit"] == unit.id]
        assert len(mine) == (2 if unit.id.endswith(".7") else 1)
        for bar in mine:
            assert bar["start"] == pytest.approx(start, abs=1e-6)
            assert bar["end"] == pytest.approx(end, abs=1e-6)
            assert bar["state"] == str(unit.state)
            assert bar["pilot"] == reported.pilot.id
            x0, y0, x1, y1 = bar["rect"]
            assert x0 == x_at(start, reported)
            assert x1 == max(x_at(end, reported), x0 + 1)
            assert y0 == report.TOP + bar["row"] * (report.ROW_HEIGHT + report.ROW_GAP)
            assert y1 - y0 == report.ROW_HEIGHT
    wide = [b["row"] for b in bars if b["unit"].endswith(".7")]
    assert sorted(wide) == [0, 1]  # a 2-core unit takes both rows of the 2-slot pilot


def test_rows_never_overlap_in_time(reported: Reported) -> None:
    bars = reported.data["bars"]
    assert {b["row"] for b in bars} <= {0, 1}
    assert reported.data["pilots"][0]["rows"] == 2
    assert reported.data["pilots"][0]["overflow"] == 0
    for a in bars:
        for b in bars:
            if a is not b and a["row"] == b["row"]:
                assert a["end"] <= b["start"] or b["end"] <= a["start"], (a, b)


def test_png_pixels_show_each_bar_in_its_state_colour(reported: Reported) -> None:
    pixels, bars = reported.pixels, reported.data["bars"]
    image = reported.data["image"]
    height = report.TOP + 2 * (report.ROW_HEIGHT + report.ROW_GAP) + 1 + report.TICK + report.BOTTOM
    assert (len(pixels[0]), len(pixels)) == (image["width"], image["height"]) == (1000, height)
    right = report.LEFT + image["plot_width"]

    def expected(x: int, y: int) -> tuple[int, int, int]:
        covering = [b for b in bars if b["rect"][0] <= x < b["rect"][2]]
        covering = [b for b in covering if b["rect"][1] <= y < b["rect"][3]]
        if covering:
            return report.COLORS[State(covering[-1]["state"])]
        return report.LANE if report.LEFT <= x < right else report.BACKGROUND

    idle = 0
    for bar in bars:
        x0, y0, x1, y1 = bar["rect"]
        middle = (y0 + y1) // 2
        assert pixels[middle][(x0 + x1) // 2] == report.COLORS[State(bar["state"])], bar
        for x in (x0 - 1, x1):  # just before its start, just after its end
            assert pixels[middle][x] == expected(x, middle), (bar, x)
            idle += pixels[middle][x] in (report.LANE, report.BACKGROUND)
    assert idle >= 2  # at least each row's first start follows the pilot's start-up
    first = min(b["rect"][0] for b in bars)
    assert pixels[report.TOP + 5][first - 1] == report.LANE
    assert report.COLORS[State.Failed] in {p for row in pixels for p in row}
    axis = image["axis"]
    assert pixels[axis][report.LEFT] == report.INK
    for x in image["ticks"]:
        assert pixels[axis + 2][x] == report.INK


def test_summary_matches_the_unit_histories(reported: Reported) -> None:
    summary = reported.data["summary"]
    t0, t1 = span(reported)
    runs = {u.id: run_of(u) for u in reported.units}
    cores = {u.id: (2 if u.id.endswith(".7") else 1) for u in reported.units}
    waits = [runs[u.id][0] - u.history[0][1] for u in reported.units]
    durations = [end - start for start, end in runs.values()]
    assert summary["makespan"] == pytest.approx(t1 - t0, abs=1e-6)
    assert summary["finished"] is True
    assert summary["counts"] == {"Done": 7, "Failed": 1}
    assert summary["ran"] == 8
    assert summary["mean_wait"] == pytest.approx(sum(waits) / 8, abs=1e-6)
    assert summary["mean_run"] == pytest.approx(sum(durations) / 8, abs=1e-6)
    busy = sum(cores[i] * (end - start) for i, (start, end) in runs.items())
    pilot_up = next(ts for state, ts in reported.pilot.history if state == State.Running)
    first_run = min(start for start, _ in runs.values())
    active = t1 - max(t0, min(pilot_up, first_run))  # canceled after the last unit
    (pilot,) = summary["pilots"]
    assert (pilot["id"], pilot["slots"], pilot["units_run"]) == (reported.pilot.id, 2, 8)
    assert pilot["busy"] == pytest.approx(busy, abs=1e-6)
    assert pilot["active"] == pytest.approx(active, abs=1e-6)
    assert pilot["utilisation"] == pytest.approx(busy / (2 * active), abs=1e-6)
    assert summary["utilisation"] == pytest.approx(busy / (2 * active), abs=1e-6)
    width = (t1 - t0) / 20
    assert summary["bucket_seconds"] == pytest.approx(width, abs=1e-6)
    for index, fraction in enumerate(summary["buckets"]):
        low, high = index * width, (index + 1) * width  # seconds from t0
        used = sum(
            cores[i] * max(0.0, min(end - t0, high) - max(start - t0, low))
            for i, (start, end) in runs.items()
        )
        assert fraction == pytest.approx(used / (2 * width), abs=1e-6), index
    assert summary["notes"] == []


def test_printed_summary_names_the_numbers_and_files(reported: Reported) -> None:
    out = reported.stdout
    summary = reported.data["summary"]
    assert f"{reported.service}: 8 units (7 Done, 1 Failed)" in out
    assert f"makespan     {summary['makespan']:.3f} s" in out
    assert f"mean wait    {summary['mean_wait']:.3f} s" in out
    assert f"mean run     {summary['mean_run']:.3f} s" in out
    assert f"{100 * summary['utilisation']:.0f}%" in out
    assert f"pilot {reported.pilot.id} on fork://localhost: 2 slots, 8 units run" in out
    chart = [line for line in out.splitlines() if line.rstrip().endswith("|")]
    assert len(chart) == 4 and all(len(line.split("|")[1]) == 20 for line in chart)
    assert str(reported.output / f"report-{reported.service}.json") in out
    assert str(reported.output / f"timeline-{reported.service}.png") in out


def test_retried_unit_has_a_bar_per_run(
    pilots: PilotJobService, units: WorkUnitService, coordination_url: str
) -> None:
    units.add(pilots)
    pilot = pilots.create("fork://localhost", {"number_of_processes": 1})
    script = "echo run >> runs; [ $(wc -l < runs) -ge 2 ] || exit 3"
    unit = units.submit({"executable": "/bin/sh", "arguments": ["-c", script], "retries": 1})
    assert unit.wait(timeout=60) == State.Done
    from troy.core import views
    from troy.plugins.registry import open_coordination

    coordination = open_coordination(coordination_url)
    try:
        view = views.service_view(coordination, units.id)
    finally:
        coordination.close()
    (seen,) = view.units
    assert [(r.pilot, r.state) for r in seen.runs] == [
        (pilot.id, State.New),
        (pilot.id, State.Done),
    ]
    running = [ts for state, ts in unit.history if state == State.Running]
    assert [r.start for r in seen.runs] == pytest.approx(running)
    timeline = report.layout(view)
    assert [(b.row, b.state) for b in timeline.bars] == [(0, State.New), (0, State.Done)]
    assert report.summarize(view, timeline).pilots[0].units_run == 1


def test_report_writes_the_tables_of_troy_compare(reported: Reported) -> None:
    import csv

    with (reported.output / "units.csv").open() as stream:
        table = {row["id"]: row for row in csv.DictReader(stream)}
    assert set(table) == {unit.id for unit in reported.units}
    first_unit = reported.units[0]
    origin = first_unit.history[0][1] - float(table[first_unit.id]["submit"])
    for unit in reported.units:
        row = table[unit.id]
        start, end = run_of(unit)
        assert row["mode"] == "real" and row["scheduler"] == "round_robin"
        assert row["state"] == str(unit.state) and row["pilot"] == reported.pilot.id
        assert float(row["start"]) == pytest.approx(start - origin, abs=1e-6)
        assert float(row["end"]) == pytest.approx(end - origin, abs=1e-6)
        assert row["tries"] == "0" and row["cores"] == str(unit.description.cores)
    [summary] = json.loads((reported.output / "summary.json").read_text())
    first, last = span(reported)
    assert summary["makespan"] == pytest.approx(last - first, abs=1e-6)
    assert (summary["done"], summary["failed"]) == (7, 1)
    assert summary["units_per_pilot"] == {reported.pilot.id: 8}
    assert summary["makespan"] == pytest.approx(reported.data["summary"]["makespan"], abs=1e-3)
    run = json.loads((reported.output / "run.json").read_text())
    assert run["mode"] == "real" and run["service"] == reported.service
    assert "tables" in reported.stdout
    figures = json.loads((reported.output / "figures.json").read_text())
    gantt = figures["gantt-round_robin-real-0.png"]
    assert {bar["unit"] for bar in gantt["bars"]} == {unit.id for unit in reported.units}
    assert gantt["rows"] == [f"{reported.pilot.id}/0", f"{reported.pilot.id}/1"]
