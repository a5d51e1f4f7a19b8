"""What `troy dashboard` makes of recorded units, on made-up views (no server, no run).

The dashboard against a real run, over HTTP and in a browser, is tested in
tests/integration/test_dashboard.py and test_dashboard_browser.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from troy.cli import dashboard_data
from troy.core.views import PilotView, RunView, ServiceView, UnitView
from troy.model import protocol, secrets
from troy.model.states import State
from troy.plugins.registry import open_coordination


@pytest.fixture
def coordination(tmp_path: Path) -> Iterator[Any]:
    """A real, empty file coordination."""
    opened = open_coordination((tmp_path / "coordination").as_uri(), serve=True)
    yield opened
    opened.close()


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


def test_the_stderr_tail_is_what_the_agent_recorded(coordination: Any, tmp_path: Path) -> None:
    (tmp_path / "stderr").write_text("the file, not the record\n")
    failed = unit("u.0", State.Failed, [1, 2, 3], sandbox=str(tmp_path))
    record = {"id": "u.0", "a": 0, "exit": 3, "stdout": "out\n", "stderr": "y" * 50 + "boom\n"}
    coordination.put_record(protocol.unit_tail_key("pilot-a", "u.0"), record)
    tail = dashboard_data.stderr_tail(coordination, failed, limit=20)
    assert tail["stderr"] == ("y" * 50 + "boom\n")[-20:]
    assert tail["note"] == "as its agent recorded it (exit code 3)"
    assert tail["path"] == str(tmp_path / "stderr")
    coordination.put_record(
        protocol.unit_tail_key("pilot-a", "u.0"), {**record, "stdout": "both\n", "stderr": ""}
    )
    tail = dashboard_data.stderr_tail(coordination, failed)
    assert tail["stderr"] == "both\n"
    assert tail["note"].endswith("; its stderr and stdout are one file")


def test_without_a_record_the_stderr_tail_is_the_end_of_the_units_error_file(
    coordination: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # scrub() takes out every secret this process met: start from none (tests remember some).
    monkeypatch.setattr(secrets, "_known", set())
    filler = "".join(f"line {n}\n" for n in range(1_500))
    (tmp_path / "stderr").write_text(filler + "the end\n")
    (tmp_path / "err.txt").write_text("named error file, password postgres://me:pw@db/x\n")
    default = unit("u.0", State.Failed, [1, 2, 3], sandbox=str(tmp_path))
    tail = dashboard_data.stderr_tail(coordination, default, limit=100)
    assert tail["stderr"] == (filler + "the end\n")[-100:]
    assert tail["note"] == f"from {tmp_path / 'stderr'}, its last 100 characters"
    named = unit("u.1", State.Failed, [1, 2, 3], sandbox=str(tmp_path), error="err.txt")
    tail = dashboard_data.stderr_tail(coordination, named)
    assert tail["path"] == str(tmp_path / "err.txt")
    assert tail["stderr"] == "named error file, password postgres://me:***@db/x\n"  # scrubbed
    assert tail["note"] == f"from {tmp_path / 'err.txt'}"


def test_a_stderr_that_cannot_be_read_says_why(coordination: Any, tmp_path: Path) -> None:
    never_ran = unit("u.0", State.Failed, [1])
    assert dashboard_data.stderr_tail(coordination, never_ran)["note"] == (
        "the unit never started: it has no sandbox"
    )
    gone = unit("u.1", State.Failed, [1, 2, 3], sandbox=str(tmp_path / "removed"))
    tail = dashboard_data.stderr_tail(coordination, gone)
    assert tail["stderr"] is None
    assert tail["note"].startswith(f"cannot read {tmp_path / 'removed' / 'stderr'}:")
    elsewhere = unit("u.2", State.Failed, [1, 2, 3], sandbox="/scratch/u.2")
    elsewhere.runs[-1].host = "node17"
    tail = dashboard_data.stderr_tail(coordination, elsewhere)
    assert tail["stderr"] is None
    assert tail["note"] == (
        "its agent recorded no stderr, and its file is on node17, which this dashboard"
        " cannot read: look at /scratch/u.2/stderr there"
    )


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


def test_a_pilots_resource_is_shown_redacted_with_its_busy_and_free_slots(
    coordination: Any,
) -> None:
    pilot = PilotView(
        "pilot-a", "ssh://me:hunter2@login.example.org/", "", State.Running, "", 4, "/w", []
    )
    view = ServiceView("wus-1", "workunit", 0.0, pilots=[pilot])
    view.units = [unit("u.0", State.Running, [0, 1]), unit("u.1", State.Done, [0, 1, 2])]
    shown = dashboard_data._pilot(coordination, view, pilot, now=10.0)
    assert "hunter2" not in str(shown)
    assert shown["resource"] == "ssh://me:***@login.example.org/"
    assert (shown["slots"], shown["busy"], shown["free"]) == (4, 1, 3)
    assert shown["heartbeat_age"] is None  # no agent ever wrote one


def test_the_timeline_sends_at_most_max_bars_the_latest_ending(
    coordination: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dashboard_data, "MAX_BARS", 2)
    view = ServiceView("wus-1", "workunit", 0.0)
    view.units = [unit(f"u.{i}", State.Done, [0, i, i + 0.5]) for i in range(5)]
    monkeypatch.setattr(dashboard_data.views, "service_view", lambda c, s: view)  # a made-up run
    data = dashboard_data.snapshot(coordination, "wus-1", now=10.0)
    assert [b["unit"] for b in data["timeline"]["bars"]] == ["u.3", "u.4"]
    assert data["timeline"]["bars_total"] == 5
