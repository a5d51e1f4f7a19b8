"""`troy report` of a real workload: the summary, the timeline, the figures and the exports.

These tests run a real workload on a two-slot local pilot and check what
the report says against numbers computed here from the units' own
histories; the figures by what matplotlib's Axes hold (bars, colours, tick
labels, legend), never by their pixels.  The layout rules on made-up views
and the command's error messages are in tests/unit/test_report_layout.py.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

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
    args = ["report", units.id, "--coordination", coordination_url, "--output", str(output)]
    code = main([*args, "--csv", str(output / "units-export.csv"),
                 "--json", str(output / "units-export.json")])  # fmt: skip
    stdout = capsys.readouterr().out
    assert code == 0, stdout
    data = json.loads((output / f"report-{units.id}.json").read_text())
    return Reported(units.id, submitted, pilot, data, stdout, output)


def span(r: Reported) -> tuple[float, float]:
    """First submission to last final state, from the units' own histories."""
    return min(u.history[0][1] for u in r.units), max(u.history[-1][1] for u in r.units)


def run_of(unit: Any) -> tuple[float, float]:
    """(Running, final) timestamps of a unit that ran once."""
    running = [ts for state, ts in unit.history if state == State.Running]
    assert len(running) == 1 and unit.state.is_final
    return running[0], unit.history[-1][1]


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
            assert (bar["slot"], bar["run"]) == (bar["row"], 0)  # one pilot: rows are its slots
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


def test_the_gantt_chart_draws_each_bar_in_its_row_and_state_colour(reported: Reported) -> None:
    from matplotlib.collections import PolyCollection
    from matplotlib.colors import to_rgba

    from troy.sim.figures import COLORS, draw_gantt

    figures = json.loads((reported.output / "figures.json").read_text())
    chart = figures["gantt-round_robin-real-0.png"]
    t0, _ = span(reported)
    assert chart["origin"] == pytest.approx(t0, abs=1e-6)
    assert chart["rows"] == [f"{reported.pilot.id}/0", f"{reported.pilot.id}/1"]
    drawn = {(b["unit"], b["row"]): b for b in chart["bars"]}
    for bar in reported.data["bars"]:  # the sidecar's bars are the timeline's, from t0
        mine = drawn[bar["unit"], bar["row"]]
        assert mine["start"] == pytest.approx(bar["start"] - t0, abs=1e-6)
        assert mine["end"] == pytest.approx(bar["end"] - t0, abs=1e-6)
        assert mine["state"] == bar["state"]
    assert len(drawn) == len(reported.data["bars"]) == 9

    # What matplotlib holds: the same bars, rows, labels and colours.
    view, timeline, key = reported_timeline(reported)
    gantt = report.gantt_of(view, timeline, key)
    axes = draw_gantt(gantt).axes[0]
    [boxes] = [c for c in axes.collections if isinstance(c, PolyCollection)]
    assert len(boxes.get_paths()) == len(gantt.bars)
    for path, color, bar in zip(boxes.get_paths(), boxes.get_facecolors(), gantt.bars,
                                strict=True):  # fmt: skip
        xs, ys = path.vertices[:, 0], path.vertices[:, 1]
        assert (xs.min(), xs.max()) == pytest.approx((bar.start, bar.end))
        assert (ys.min() + ys.max()) / 2 == pytest.approx(bar.row)  # centred on its row
        assert tuple(color) == pytest.approx(to_rgba(COLORS[bar.state]))
    assert [t.get_text() for t in axes.get_yticklabels()] == chart["rows"]
    assert [t.get_text() for t in axes.get_legend().get_texts()] == ["Done", "Failed"]
    assert axes.get_xlabel() == "seconds since the first submission"
    assert axes.get_xlim() == pytest.approx((0.0, chart["end"]))


def reported_timeline(reported: Reported) -> tuple[Any, Any, Any]:
    from troy.core import timeline, views
    from troy.plugins.registry import open_coordination
    from troy.sim.figure_data import RunKey

    run = json.loads((reported.output / "run.json").read_text())
    coordination = open_coordination(run["coordination"])
    try:
        view = views.service_view(coordination, reported.service)
    finally:
        coordination.close()
    return view, timeline.layout(view), RunKey("round_robin", "real", 0)


def test_utilisation_and_wait_cdf_plot_the_recorded_runs(reported: Reported) -> None:
    figures = json.loads((reported.output / "figures.json").read_text())
    t0, _ = span(reported)
    use = figures["utilisation-round_robin-real-0.png"]
    assert use["slots"] == 2
    runs = [run_of(u) for u in reported.units]
    cores = [2 if u.id.endswith(".7") else 1 for u in reported.units]
    for at, share in use["steps"]:  # busy share of the 2 slots at each step's time
        busy = sum(c for (start, end), c in zip(runs, cores, strict=True)
                   if start - t0 <= at + 1e-9 < end - t0 - 1e-9)  # fmt: skip
        assert share == pytest.approx(busy / 2), at
    [line] = figures["wait-cdf.png"]["lines"]
    waits = sorted(start - u.history[0][1] for u, (start, _) in zip(reported.units, runs,
                                                                     strict=True))  # fmt: skip
    assert [w for w, _ in line["points"]] == pytest.approx(sorted(set(waits)), abs=1e-6)
    assert line["points"][-1][1] == 1.0


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
    ordered = sorted(waits)
    assert summary["p50_wait"] == pytest.approx(ordered[3], abs=1e-6)  # nearest rank of 8
    assert summary["p95_wait"] == summary["p99_wait"] == pytest.approx(ordered[7], abs=1e-6)
    assert (summary["bytes_in"], summary["bytes_moved"], summary["bytes_out"]) == (0, 0, 0)


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
    assert (
        f"wait         p50 {summary['p50_wait']:.3f} s, p95 {summary['p95_wait']:.3f} s,"
        f" p99 {summary['p99_wait']:.3f} s" in out
    )
    assert "bytes        0 staged in, 0 of them moved from another machine; 0 staged out" in out
    assert str(reported.output / f"report-{reported.service}.json") in out
    assert str(reported.output / "units-export.csv") in out
    assert "gantt-round_robin-real-0.png" in out


def test_retried_unit_has_a_bar_per_run(
    pilots: PilotJobService, units: WorkUnitService, coordination_url: str
) -> None:
    units.add(pilots)
    pilot = pilots.create("fork://localhost", {"number_of_processes": 1})
    script = "echo run >> runs; [ $(wc -l < runs) -ge 2 ] || exit 3"
    unit = units.submit({"executable": "/bin/sh", "arguments": ["-c", script], "retries": 1})
    assert unit.wait(timeout=60) == State.Done
    from troy.core import views
    from troy.core.timeline import layout
    from troy.plugins.registry import open_coordination
    from troy.sim.figure_data import RunKey

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
    timeline = layout(view)
    assert [(b.row, b.run, b.state) for b in timeline.bars] == [
        (0, 0, State.New),
        (0, 1, State.Done),
    ]
    assert report.summarize(view, timeline).pilots[0].units_run == 1
    key = RunKey("round_robin", "real", 0)
    assert [b.state for b in report.gantt_of(view, timeline, key).bars] == ["run again", "Done"]
    [row] = units.records()
    assert (row["tries"], row["slot"], row["state"]) == (1, 0, "Done")
    assert row["start"] == pytest.approx(running[1], abs=1e-6)


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


# --- exports: troy report --csv/--json and WorkUnitService.records() ----------------------


def test_csv_json_and_records_are_the_same_rows_of_the_unit_histories(
    reported: Reported, units: WorkUnitService
) -> None:
    import csv
    import socket

    from troy.model.unit_columns import EXPORT_COLUMNS, RESEARCH_COLUMNS

    records = units.records()
    exported = json.loads((reported.output / "units-export.json").read_text())
    with (reported.output / "units-export.csv").open() as stream:
        reader = csv.DictReader(stream)
        assert tuple(reader.fieldnames or ()) == EXPORT_COLUMNS
        table = list(reader)
    assert exported["columns"] == list(EXPORT_COLUMNS)
    assert exported["units"] == records
    assert [list(row) for row in records] == [list(EXPORT_COLUMNS)] * 8
    assert [s["p95_wait"] for s in exported["summaries"]] == [reported.data["summary"]["p95_wait"]]
    for unit, row, line in zip(reported.units, records, table, strict=True):
        start, end = run_of(unit)
        assert row["id"] == line["id"] == unit.id
        assert (row["submit"], row["start"], row["end"]) == (unit.history[0][1], start, end)
        assert float(line["start"]) == start  # epoch seconds, exactly
        assert row["wait"] == pytest.approx(start - unit.history[0][1])
        assert row["run"] == pytest.approx(end - start)
        assert (row["state"], row["pilot"], row["host"]) == (
            str(unit.state),
            reported.pilot.id,
            socket.gethostname(),
        )
        assert row["exit_code"] == unit.exit_code == (3 if unit.state == State.Failed else 0)
        assert line["exit_code"] == str(unit.exit_code)
        assert (row["tries"], row["bytes_in"], row["bytes_out"], row["local"]) == (0, 0, 0, None)
        assert line["local"] == ""  # unknown is empty in CSV
        assert row["cores"] == unit.description.cores
        bars = [b for b in reported.data["bars"] if b["unit"] == unit.id]
        assert row["slot"] == min(b["slot"] for b in bars)
    # Where the research tools' units.csv has a column too, it says the same (from t0).
    with (reported.output / "units.csv").open() as stream:
        research = {r["id"]: r for r in csv.DictReader(stream)}
    shared = (set(EXPORT_COLUMNS) & set(RESEARCH_COLUMNS)) - {"submit", "start", "end"}
    for row in records:
        for name in sorted(shared):
            value = research[row["id"]][name]
            if isinstance(row[name], float):
                assert float(value) == pytest.approx(row[name], abs=1e-6), name
            else:
                assert value == ("" if row[name] is None else str(row[name])), name


def test_records_of_a_service_with_a_unit_still_waiting(
    pilots: PilotJobService, units: WorkUnitService
) -> None:
    units.add(pilots)
    pilot = pilots.create("fork://localhost", {"number_of_processes": 1})
    first = units.submit({"executable": "/bin/sleep", "arguments": ["30"]})
    waiting = units.submit({"executable": "/bin/true", "name": "second"})
    deadline = time.time() + 30
    while first.state != State.Running and time.time() < deadline:
        time.sleep(0.1)
    assert first.state == State.Running

    running, queued = units.records()

    assert (running["state"], running["pilot"], running["end"], running["run"]) == (
        "Running",
        pilot.id,
        None,
        None,
    )
    assert running["slot"] == 0 and running["wait"] is not None
    assert (queued["id"], queued["name"], queued["start"], queued["slot"]) == (
        waiting.id,
        "second",
        None,
        None,
    )
    assert queued["state"] in ("New", "Pending") and queued["host"] is None
    units.cancel()


# --- several services: compared ---------------------------------------------------------


def test_report_of_two_services_compares_them(
    pilots: PilotJobService,
    coordination_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import csv

    pilots.create("fork://localhost", {"number_of_processes": 2})
    ids = []
    for count in (2, 4):
        with WorkUnitService(coordination=coordination_url) as service:
            service.add(pilots)
            service.submit([{"executable": "/bin/sleep", "arguments": ["0.1"]}] * count)
            service.wait(timeout=60)
            ids.append(service.id)
    output = tmp_path / "both"
    csv_path = tmp_path / "both.csv"
    args = ["report", *ids, "--coordination", coordination_url, "--output", str(output)]

    assert main([*args, "--csv", str(csv_path)]) == 0

    out = capsys.readouterr().out
    assert f"{ids[0]}: 2 units (2 Done)" in out and f"{ids[1]}: 4 units (4 Done)" in out
    with csv_path.open() as stream:
        assert [row["id"].rsplit(".", 1)[0] for row in csv.DictReader(stream)] == [ids[0]] * 2 + [
            ids[1]
        ] * 4
    summaries = json.loads((output / "summary.json").read_text())
    assert [(s["scheduler"], s["units"]) for s in summaries] == [(ids[0], 2), (ids[1], 4)]
    figures = json.loads((output / "figures.json").read_text())
    for service, count in zip(ids, (2, 4), strict=True):  # a file per run, its label made safe
        gantt = figures[f"gantt-{service.replace('-', '_')}-real-0.png"]
        assert gantt["title"] == f"{service} (round_robin): {count} of {count} units ran"
        use = figures[f"utilisation-{service.replace('-', '_')}-real-0.png"]
        assert use["title"] == f"{service} (round_robin): busy share of 2 slots"
    lines = figures["wait-cdf.png"]["lines"]
    assert [(line["scheduler"], line["waits"]) for line in lines] == [(ids[0], 2), (ids[1], 4)]
    bars = figures["makespan.png"]["bars"]
    assert [bar["scheduler"] for bar in bars] == ids
    run = json.loads((output / "run.json").read_text())
    assert [run["services"][i]["service"] for i in ids] == ids
    compared = figures["comparison.png"]["runs"]
    with (output / "units.csv").open() as stream:
        table = list(csv.DictReader(stream))
    waits = {i: sorted(float(r["wait"]) for r in table if r["scheduler"] == i) for i in ids}
    for entry, summary in zip(compared, summaries, strict=True):
        mine = waits[entry["scheduler"]]
        assert entry["makespan"] == summary["makespan"]
        assert entry["utilisation"] == summary["utilisation"]
        assert (entry["p50_wait"], entry["p99_wait"]) == (mine[len(mine) // 2 - 1], mine[-1])

    # What matplotlib holds: a group per run in each panel, the legend the percentiles.
    from troy.sim.figure_data import Compared
    from troy.sim.figures import draw_comparison

    spans, percentiles, uses = draw_comparison([Compared(**e) for e in compared]).axes
    labels = [f"{service} (real)" for service in ids]
    for axes in (spans, percentiles, uses):
        assert [t.get_text() for t in axes.get_xticklabels()] == labels
    assert [p.get_height() for p in spans.patches] == [e["makespan"] for e in compared]
    assert [p.get_height() for p in uses.patches] == pytest.approx(
        [100 * e["utilisation"] for e in compared]
    )
    heights = [p.get_height() for p in percentiles.patches]  # p50 of each run, then p95, p99
    assert heights == [e[f"{n}_wait"] for n in ("p50", "p95", "p99") for e in compared]
    assert [t.get_text() for t in percentiles.get_legend().get_texts()] == ["p50", "p95", "p99"]
