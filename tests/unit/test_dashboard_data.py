"""What `troy dashboard` makes of recorded units, on made-up views (no server, no run).

The dashboard against a real run, over HTTP and in a browser, is tested in
tests/integration/test_dashboard.py and test_dashboard_browser.py.
"""

from __future__ import annotations

from pathlib import Path

from troy.cli import dashboard_data
from troy.cli.inspect import PilotView, RunView, ServiceView, UnitView
from troy.model.states import State


def unit(
    uid: str, state: State, times: list[float], sandbox: str | None = None, error: str = ""
) -> UnitView:
    """A unit submitted at times[0], Running at times[1], final at times[2] (if given)."""
    history = [(State.New, times[0])]
    runs = []
    if len(times) > 1:
        history.append((State.Running, times[1]))
        end = times[2] if len(times) > 2 else None
        runs.append(RunView("pilot-a", times[1], end, state if end else State.Running))
    if len(times) > 2:
        history.append((state, times[2]))
    return UnitView(
        uid, state, "", "pilot-a", None, history, runs=runs, sandbox=sandbox, error=error
    )


def test_the_default_service_is_the_newest_work_unit_service() -> None:
    listed = [
        {"id": "pjs-1", "kind": "pilotjob"},
        {"id": "wus-1", "kind": "workunit"},
        {"id": "wus-2", "kind": "workunit"},
        {"id": "pjs-2", "kind": "pilotjob"},
    ]
    assert dashboard_data.default_service(listed) == "wus-2"
    assert dashboard_data.default_service(listed[:1]) == "pjs-1"
    assert dashboard_data.default_service([]) is None


def test_the_stderr_tail_is_the_last_bytes_of_the_units_error_file(tmp_path: Path) -> None:
    (tmp_path / "stderr").write_text("x" * 10_000 + "the end\n")
    (tmp_path / "err.txt").write_text("named error file\n")
    default = unit("u.0", State.Failed, [1, 2, 3], sandbox=str(tmp_path))
    tail = dashboard_data.stderr_tail(default, limit=100)
    assert tail["stderr"] == ("x" * 10_000 + "the end\n")[-100:]
    assert tail["note"] == "the last 100 of 10008 bytes"
    assert tail["path"] == str(tmp_path / "stderr")
    named = unit("u.1", State.Failed, [1, 2, 3], sandbox=str(tmp_path), error="err.txt")
    assert dashboard_data.stderr_tail(named) == {
        "path": str(tmp_path / "err.txt"),
        "host": None,
        "stderr": "named error file\n",
        "note": "",
    }


def test_a_stderr_that_cannot_be_read_says_why(tmp_path: Path) -> None:
    never_ran = unit("u.0", State.Failed, [1])
    assert dashboard_data.stderr_tail(never_ran)["note"] == (
        "the unit never started: it has no sandbox"
    )
    gone = unit("u.1", State.Failed, [1, 2, 3], sandbox=str(tmp_path / "removed"))
    tail = dashboard_data.stderr_tail(gone)
    assert tail["stderr"] is None
    assert tail["note"].startswith(f"cannot read {tmp_path / 'removed' / 'stderr'}:")


def test_rates_count_units_finished_recently_and_overall() -> None:
    view = ServiceView("wus-1", "workunit", 0.0)
    view.units = [
        unit("u.0", State.Done, [0, 1, 10]),
        unit("u.1", State.Failed, [0, 1, 90]),
        unit("u.2", State.Done, [0, 1, 95]),
        unit("u.3", State.Running, [0, 1]),
    ]
    rates = dashboard_data._rates(view, now=100.0)
    assert rates["finished"] == 3
    assert rates["recent"] == 2 / 60  # u.1 and u.2 within the last 60 s
    assert rates["overall"] == 3 / 100  # still running: up to now
    view.units.pop()
    assert dashboard_data._rates(view, now=500.0)["overall"] == 3 / 95  # all final: to the last


def test_a_units_row_has_its_wait_and_run_times() -> None:
    row = dashboard_data._unit(unit("u.0", State.Done, [10.0, 12.5, 20.0]))
    assert (row["wait"], row["run"], row["runs"], row["tries"]) == (2.5, 7.5, 1, 0)
    waiting = dashboard_data._unit(unit("u.1", State.New, [10.0]))
    assert (waiting["wait"], waiting["run"], waiting["started"]) == (None, None, None)


def test_a_pilots_resource_is_shown_redacted_with_its_busy_and_free_slots(tmp_path: Path) -> None:
    from troy.plugins.registry import open_coordination

    coordination = open_coordination((tmp_path / "coordination").as_uri(), serve=True)
    try:
        pilot = PilotView(
            "pilot-a", "ssh://me:hunter2@login.example.org/", "", State.Running, "", 4, "/w", []
        )
        view = ServiceView("wus-1", "workunit", 0.0, pilots=[pilot])
        view.units = [unit("u.0", State.Running, [0, 1]), unit("u.1", State.Done, [0, 1, 2])]
        shown = dashboard_data._pilot(coordination, view, pilot, now=10.0)
    finally:
        coordination.close()
    assert "hunter2" not in str(shown)
    assert shown["resource"] == "ssh://me:***@login.example.org/"
    assert (shown["slots"], shown["busy"], shown["free"]) == (4, 1, 3)
    assert shown["heartbeat_age"] is None  # no agent ever wrote one
