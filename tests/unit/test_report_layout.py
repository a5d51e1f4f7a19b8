"""`troy report` without a workload: its layout rules on made-up views, the Gantt chart
made of them, and the one-line errors of the command.

What the report makes of a real workload is in tests/integration/test_report.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from troy import PilotJobService, WorkUnitService
from troy.cli import main, report
from troy.core.timeline import layout
from troy.core.views import PilotView, RunView, ServiceView, UnitView
from troy.model.states import State
from troy.sim.figure_data import RunKey

# --- user mistakes ------------------------------------------------------------------------


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("troy: error: ")
    return err


def test_unknown_service_is_one_error_line(
    pilots: PilotJobService, coordination_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "wus-nosuch", "--coordination", coordination_url]) == 2
    assert "no service 'wus-nosuch'" in one_error_line(capsys)


def test_pilot_job_service_is_one_error_line(
    pilots: PilotJobService, coordination_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", pilots.id, "--coordination", coordination_url]) == 2
    assert "is a pilot-job service, not a work-unit service" in one_error_line(capsys)


def test_unwritable_output_is_one_error_line(
    units: WorkUnitService,
    coordination_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    args = ["report", units.id, "--coordination", coordination_url]
    assert main([*args, "--output", str(blocker / "sub")]) == 2
    assert f"cannot write the report into {blocker / 'sub'}" in one_error_line(capsys)
    assert main([*args, "--output", str(tmp_path), "--buckets", "0"]) == 2
    assert "buckets" in one_error_line(capsys)
    assert main([*args, "--output", str(tmp_path), "--csv", str(blocker / "units.csv")]) == 2
    assert f"cannot write the report into {blocker / 'units.csv'}" in one_error_line(capsys)
    assert main([*args, "--output", str(tmp_path), "--json", str(tmp_path)]) == 2
    assert f"cannot write the report into {tmp_path}" in one_error_line(capsys)


WITHOUT_MATPLOTLIB = """\
import sys
sys.modules["matplotlib"] = None  # as if it were not installed: its import fails
from troy.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_without_matplotlib_the_report_prints_its_summary_and_says_what_to_install(
    units: WorkUnitService, coordination_url: str, tmp_path: Path
) -> None:
    import subprocess
    import sys

    from troy.sim.figures import SKIPPED

    args = ["report", units.id, "--coordination", coordination_url, "--output", str(tmp_path)]
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_MATPLOTLIB, *args, "--csv", str(tmp_path / "u.csv")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert "pip install 'troy[plot]'" in SKIPPED
    assert f"{units.id}: 0 units (none)" in done.stdout
    assert done.stdout.endswith(f"  {SKIPPED}\n") and "Traceback" not in done.stderr
    assert (tmp_path / "u.csv").read_text().startswith("id,name,pilot,slot,host,cores,")
    assert not list(tmp_path.glob("*.png")) and not (tmp_path / "figures.json").exists()


def test_empty_service_reports_without_units(
    units: WorkUnitService,
    coordination_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["report", units.id, "--coordination", coordination_url, "--output", str(tmp_path)]
    assert main(args) == 0
    data = json.loads((tmp_path / f"report-{units.id}.json").read_text())
    assert (data["summary"]["units"], data["bars"], data["summary"]["mean_wait"]) == (0, [], None)
    assert "0 units (none)" in capsys.readouterr().out


KEY = RunKey("round_robin", "real", 0)


# --- layout rules on made-up views ---------------------------------------------------------


def pilot_view(pilot_id: str, slots: int | None, up: float = 0.0) -> PilotView:
    history = [(State.Pending, 0.0), (State.Running, up), (State.Canceled, 100.0)]
    return PilotView(pilot_id, "fork://localhost", "local", State.Canceled, "", slots, "/", history)


def unit_view(
    unit_id: str, pilot: str, start: float, end: float | None, cores: int = 1
) -> UnitView:
    state = State.Running if end is None else State.Done
    history = [(State.New, 0.0), (State.Pending, 0.0), (State.Running, start)]
    if end is not None:
        history.append((State.Done, end))
    run = RunView(pilot, start, end, state, cores)
    return UnitView(unit_id, state, "", pilot, None, history, cores, [run])


def test_runs_overlapping_more_than_the_slots_get_overflow_rows() -> None:
    view = ServiceView("wus-x", "workunit", 0.0, [pilot_view("p", 1)])
    view.units = [unit_view("wus-x.0", "p", 1.0, 5.0), unit_view("wus-x.1", "p", 2.0, 4.0)]
    timeline = layout(view)
    assert [(b.unit_id, b.row) for b in timeline.bars] == [("wus-x.0", 0), ("wus-x.1", 1)]
    assert (timeline.pilots[0].rows, timeline.pilots[0].overflow) == (2, 1)
    summary = report.summarize(view, timeline, buckets=5)
    assert summary.notes and "overflow" in summary.notes[0]
    assert summary.pilots[0].utilisation == pytest.approx(6.0 / (1 * 5.0))  # over 100%
    gantt = report.gantt_of(view, timeline, KEY)
    assert (gantt.rows, gantt.extra_rows) == (["p/0", "p/1*"], [1])
    assert "rows beyond a pilot's slots" in gantt.title


def test_pilot_of_unknown_slots_gets_its_max_concurrent_cores_as_rows() -> None:
    view = ServiceView("wus-y", "workunit", 0.0, [pilot_view("p", None)])
    view.units = [
        unit_view("wus-y.0", "p", 0.0, 2.0),
        unit_view("wus-y.1", "p", 1.0, 3.0, cores=2),  # 3 cores at once from 1.0 to 2.0
        unit_view("wus-y.2", "p", 2.0, 4.0),  # takes row 0, freed by wus-y.0 at 2.0
    ]
    timeline = layout(view)
    assert (timeline.pilots[0].rows, timeline.pilots[0].overflow) == (3, 0)
    assert [(b.unit_id, b.row) for b in timeline.bars] == [
        ("wus-y.0", 0),
        ("wus-y.1", 1),
        ("wus-y.1", 2),
        ("wus-y.2", 0),
    ]
    summary = report.summarize(view, timeline, buckets=4)  # slices of one second
    assert summary.buckets == pytest.approx([1 / 3, 1.0, 1.0, 1 / 3])
    assert summary.utilisation == pytest.approx(8.0 / (3 * 4.0))


def test_running_unit_ends_at_now_and_is_blue() -> None:
    view = ServiceView("wus-z", "workunit", 0.0, [pilot_view("p", 2)], scheduler="round_robin")
    view.units = [unit_view("wus-z.0", "p", 1.0, 3.0), unit_view("wus-z.1", "p", 2.0, None)]
    timeline = layout(view, now=10.0)
    assert (timeline.start, timeline.end, timeline.finished) == (0.0, 10.0, False)
    running = timeline.bars[1]
    assert (running.end, running.state) == (10.0, State.Running)
    summary = report.summarize(view, timeline)
    assert summary.makespan == 10.0 and summary.mean_run == pytest.approx(2.0)
    lines = report.summary_lines(summary)
    assert "so far" in next(line for line in lines if "makespan" in line)
    gantt = report.gantt_of(view, timeline, KEY)
    assert [(b.start, b.end, b.state) for b in gantt.bars] == [
        (1.0, 3.0, "Done"),
        (2.0, 10.0, "Running"),
    ]
    assert gantt.end == 10.0
    assert gantt.title == "wus-z (round_robin): 2 of 2 units ran so far"


def test_pilots_are_stacked_with_a_line_between_them() -> None:
    view = ServiceView("wus-s", "workunit", 0.0, [pilot_view("a", 1), pilot_view("b", 2)])
    view.units = [unit_view("wus-s.0", "b", 0.0, 1.0), unit_view("wus-s.1", "a", 0.0, 1.0)]
    timeline = layout(view)
    assert [(p.id, p.first_row, p.rows) for p in timeline.pilots] == [("a", 0, 1), ("b", 1, 2)]
    assert {b.unit_id: b.row for b in timeline.bars} == {"wus-s.1": 0, "wus-s.0": 1}
    gantt = report.gantt_of(view, timeline, KEY)
    assert gantt.rows == ["a/0", "b/0", "b/1"]
    assert [(b.unit, b.row) for b in gantt.bars] == [("wus-s.1", 0), ("wus-s.0", 1)]
