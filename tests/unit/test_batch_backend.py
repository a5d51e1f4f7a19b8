"""The batch-backend template (troy.plugins.backends.batch): what every batch backend inherits.

A tiny subclass with a scripted resource manager (`ScriptedBatch`: submit,
query and remove record their calls; query gives the job records of a
script in turn) checks the template's own logic: the handle, the bootstrap's
use and ship modes, the state cache, the tail of the agent's stderr, telling
a wall-time end from a cancel, and cancel's grace.  The real backends' calls
to their resource managers are tested with them (test_saga_backend.py,
test_condor_backend.py).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest

from troy.model.description import PilotJobDescription
from troy.model.errors import BackendError
from troy.model.states import State
from troy.plugins.backends import bootstrap
from troy.plugins.backends.base import PilotLaunch
from troy.plugins.backends.batch import ERROR_TAIL, BatchBackend

AGENT = [sys.executable, "-m", "troy.agent", "--coordination", "file:///c", "--pilot", "p-1"]
#: The scripted resource manager's job records, and the pilot states they map to.
RECORDS = {
    "queued": (State.Pending, "queued"),
    "running": (State.Running, ""),
    "exited": (State.Failed, "agent job exited"),
    "killed": (State.Canceled, "killed by the resource manager"),
    "removed": (State.Canceled, "removed"),
}


class ScriptedBatch(BatchBackend):
    """A batch backend whose resource manager gives the job records of ``script`` in turn."""

    name: ClassVar[str] = "scripted"
    cancel_grace: ClassVar[float] = 0.5
    cancel_poll: ClassVar[float] = 0.01
    state_cache: ClassVar[float] = 60.0
    missing_job: ClassVar[str] = "job {job_id} is gone"

    def __init__(self, rm: str = "scripted://", script: list[Any] | None = None) -> None:
        super().__init__(rm)
        #: Records query gives in turn (None: no such job); the last one stays.
        self.script: list[Any] = script or ["queued"]
        self.calls: list[tuple[Any, ...]] = []
        #: What remove leaves in the script, or an error it raises.
        self.after_remove: Any = "removed"

    def submit(
        self, launch: PilotLaunch, arguments: list[str], wheels: Sequence[Path]
    ) -> dict[str, Any]:
        self.calls.append(("submit", arguments, list(wheels)))
        return {"job_id": "j-1"}

    def query(self, handle: dict[str, Any], look_back: bool) -> Any:
        self.calls.append(("query", handle["job_id"], look_back))
        return self.script.pop(0) if len(self.script) > 1 else self.script[0]

    def remove(self, handle: dict[str, Any]) -> None:
        self.calls.append(("remove", handle["job_id"]))
        if isinstance(self.after_remove, BaseException):
            raise self.after_remove
        self.script = [self.after_remove]

    def job_state(self, record: Any) -> tuple[State, str]:
        return RECORDS[record]

    def called(self, name: str) -> int:
        return sum(1 for call in self.calls if call[0] == name)


class TimeoutIsCancel(ScriptedBatch):
    timeout_is_cancel: ClassVar[bool] = True


@pytest.fixture(autouse=True)
def no_cached_states() -> None:
    ScriptedBatch._states.clear()
    TimeoutIsCancel._states.clear()


def launch_of(description: dict[str, Any], directory: str = "/scratch/p-1") -> PilotLaunch:
    return PilotLaunch("p-1", "scripted://", PilotJobDescription(description), directory, AGENT)


def handle(**fields: Any) -> dict[str, Any]:
    return {
        "job_id": "j-1",
        "working_directory": "/nonexistent",
        "submitted": time.time(),
        **fields,
    }


# -- launch and the bootstrap ------------------------------------------------------------------
def test_the_handle_is_the_jobs_fields_and_what_state_needs() -> None:
    backend = ScriptedBatch()
    before = time.time()
    launched = backend.launch(launch_of({"agent_python": "/opt/py/bin/python3", "walltime": 5}))
    assert launched.pop("submitted") >= before
    assert launched == {"job_id": "j-1", "working_directory": "/scratch/p-1", "wall_time_limit": 5}


def test_use_mode_submits_the_bootstrap_with_the_named_python() -> None:
    backend = ScriptedBatch()
    backend.launch(launch_of({"agent_python": "/opt/py/bin/python3"}))
    assert backend.calls == [("submit", bootstrap.use_arguments("/opt/py/bin/python3", AGENT), [])]


def test_ship_mode_copies_the_wheel_into_the_working_directory_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TROY_AGENT_PYTHON", raising=False)
    backend = ScriptedBatch()
    launch = launch_of({}, directory=str(tmp_path))
    backend.launch(launch)
    wheel = bootstrap.troy_wheel()
    shipped = tmp_path / ".troy" / wheel.digest / wheel.path.name
    assert shipped.read_bytes() == wheel.path.read_bytes()
    # The plugin packages installed here that an agent may load travel the same way.
    plugins = bootstrap.plugin_wheels()
    placed = [(p, str(tmp_path / ".troy" / p.digest / p.path.name)) for p in plugins]
    for plugin, where in placed:
        assert Path(where).read_bytes() == plugin.path.read_bytes()
    expected = bootstrap.ship_arguments(str(tmp_path), wheel, str(shipped), AGENT, placed)
    assert backend.calls == [("submit", expected, [wheel.path, *(p.path for p in plugins)])]
    shipped.write_bytes(b"left alone")  # there already: not copied again
    backend.launch(launch)
    assert shipped.read_bytes() == b"left alone"
    assert list(shipped.parent.iterdir()) == [shipped]  # no partial copy left behind


# -- state ---------------------------------------------------------------------------------
def test_the_state_is_asked_once_per_cache_period(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = ScriptedBatch(script=["queued", "running"])
    assert backend.state(handle()) == (State.Pending, "queued")
    assert backend.state(handle()) == (State.Pending, "queued")  # cached
    assert backend.calls == [("query", "j-1", True)]
    monkeypatch.setattr(ScriptedBatch, "state_cache", 0.0)
    assert backend.state(handle()) == (State.Running, "")
    assert backend.calls[1:] == [("query", "j-1", True)]


def test_each_backend_class_has_its_own_cache() -> None:
    ScriptedBatch(script=["running"]).state(handle())
    other = TimeoutIsCancel(script=["queued"])
    assert other.state(handle()) == (State.Pending, "queued")
    assert other.called("query") == 1


def test_jobs_are_cached_apart_by_the_fields_that_name_them() -> None:
    backend = ScriptedBatch(script=["running", "queued", "exited"])
    assert backend.state(handle()) == (State.Running, "")
    assert backend.state(handle(job_id="j-2")) == (State.Pending, "queued")
    assert backend.state(handle(server="b")) == (State.Failed, "agent job exited")
    assert backend.state(handle(submitted=0.0, wall_time_limit=9)) == (State.Running, "")  # j-1


def test_a_job_the_resource_manager_does_not_know_is_unknown() -> None:
    assert ScriptedBatch(script=[None]).state(handle()) == (State.Unknown, "job j-1 is gone")


def test_a_failed_job_ends_its_detail_with_the_agents_stderr(tmp_path: Path) -> None:
    (tmp_path / "agent.err").write_text("x" * ERROR_TAIL + "\nImportError: no module named troy\n")
    state, detail = ScriptedBatch(script=["exited"]).state(handle(working_directory=str(tmp_path)))
    assert state == State.Failed
    assert detail.startswith("agent job exited: x")
    assert detail.endswith("x\nImportError: no module named troy")
    assert len(detail) == len("agent job exited: ") + ERROR_TAIL - 1  # the tail, stripped


def test_without_stderr_a_failed_job_keeps_its_detail() -> None:
    assert ScriptedBatch(script=["exited"]).state(handle()) == (State.Failed, "agent job exited")


def test_only_a_failed_job_reads_the_stderr(tmp_path: Path) -> None:
    (tmp_path / "agent.err").write_text("a warning\n")
    backend = ScriptedBatch(script=["killed"])
    assert backend.state(handle(working_directory=str(tmp_path))) == RECORDS["killed"]


@pytest.mark.parametrize(
    ("ran", "limit", "state"),
    [
        (61, 1, (State.Done, "wall time limit of 1 min reached")),
        (57, 1, (State.Done, "wall time limit of 1 min reached")),  # within the slack
        (10, 1, RECORDS["killed"]),
        (7200, None, RECORDS["killed"]),
        (91, 1.5, (State.Done, "wall time limit of 1.5 min reached")),
    ],
)
def test_a_cancel_after_the_wall_time_is_an_end_where_the_two_look_alike(
    ran: float, limit: float | None, state: tuple[State, str]
) -> None:
    job = handle(submitted=time.time() - ran, wall_time_limit=limit)
    assert TimeoutIsCancel(script=["killed"]).state(job) == state


def test_a_cancel_stays_a_cancel_where_the_resource_manager_tells_them_apart() -> None:
    job = handle(submitted=time.time() - 7200, wall_time_limit=1)
    assert ScriptedBatch(script=["killed"]).state(job) == RECORDS["killed"]


# -- cancel ---------------------------------------------------------------------------------
def test_cancel_gives_a_running_agent_time_to_stop_by_itself() -> None:
    backend = ScriptedBatch(script=["running", "running", "exited"])
    backend.cancel(handle())
    assert backend.calls == [("query", "j-1", False)] * 3  # afresh, not the history
    assert backend.called("remove") == 0


def test_cancel_removes_a_running_job_after_the_grace() -> None:
    backend = ScriptedBatch(script=["running"])
    started = time.monotonic()
    backend.cancel(handle())
    assert time.monotonic() - started >= ScriptedBatch.cancel_grace
    assert backend.calls[-1] == ("remove", "j-1")
    assert backend.called("query") > 2


def test_cancel_removes_a_queued_job_at_once() -> None:
    backend = ScriptedBatch(script=["queued"])
    backend.cancel(handle())
    assert backend.calls == [("query", "j-1", False), ("remove", "j-1")]


def test_cancel_waits_in_the_states_the_backend_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        ScriptedBatch, "cancel_waits_for", frozenset({State.Pending, State.Running})
    )
    backend = ScriptedBatch(script=["queued", "running", "exited"])
    backend.cancel(handle())
    assert backend.called("query") == 3
    assert backend.called("remove") == 0


@pytest.mark.parametrize("record", ["exited", "killed", None])
def test_cancel_of_an_ended_job_does_nothing(record: str | None) -> None:
    backend = ScriptedBatch(script=[record])
    backend.cancel(handle())
    backend.cancel(handle())  # idempotent
    assert backend.calls == [("query", "j-1", False)] * 2


def test_a_job_that_ends_while_it_is_removed_is_no_error() -> None:
    backend = ScriptedBatch(script=["queued", None])
    backend.after_remove = BackendError("no such job")
    backend.cancel(handle())
    assert [call[0] for call in backend.calls] == ["query", "remove", "query"]


def test_a_removal_that_fails_on_a_live_job_is_an_error() -> None:
    backend = ScriptedBatch(script=["queued"])
    backend.after_remove = BackendError("permission denied")
    with pytest.raises(BackendError, match="permission denied"):
        backend.cancel(handle())


def test_cancel_forgets_the_cached_state() -> None:
    backend = ScriptedBatch(script=["queued"])
    assert backend.state(handle()) == (State.Pending, "queued")
    backend.cancel(handle())
    assert backend.state(handle()) == RECORDS["removed"]
