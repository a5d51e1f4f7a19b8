"""Canceling a pilot always ends its agent (issue 16: "cancel always signals").

Real local pilots.  Two ways an agent used to survive a cancel: coordination
refusing the control-stream write (cancel raised before it asked the backend),
and a pilot already recorded Failed (cancel returned at once, although the
agent still ran).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import troy
from troy import State
from troy.model.errors import CoordinationError
from troy.testing.backends import wait_until

pytestmark = pytest.mark.slow


def alive(pid: int) -> bool:
    """True while ``pid`` runs (not yet reaped counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


@pytest.fixture
def pilots(tmp_path: Path) -> Iterator[troy.PilotJobService]:
    service = troy.PilotJobService(coordination=(tmp_path / "coordination").as_uri())
    yield service
    service.close()


def running_agent(pilots: troy.PilotJobService, tmp_path: Path) -> tuple[troy.PilotJob, int]:
    pilot = pilots.create("fork://localhost", {"working_directory": str(tmp_path / "p")})
    wait_until(lambda: pilot.state == State.Running, 60, "the pilot to run")
    pid = (pilot.handle or {}).get("pid")
    assert isinstance(pid, int) and alive(pid)
    return pilot, pid


def test_cancel_ends_the_agent_even_when_coordination_cannot_be_written(
    pilots: troy.PilotJobService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pilot, pid = running_agent(pilots, tmp_path)
    manager: Any = pilots._manager
    written = manager.coordination.append

    def refuse_control(stream: str, events: Any) -> None:
        if stream.endswith("/control"):  # the fault: the disk under TROY_HOME is full
            raise CoordinationError("cannot append to stream file: No space left on device")
        written(stream, events)

    monkeypatch.setattr(manager.coordination, "append", refuse_control)

    with pytest.raises(CoordinationError, match="No space left"):
        pilot.cancel()

    wait_until(lambda: not alive(pid), 30, "the agent to end")  # the backend ended its job


def test_cancel_of_a_pilot_recorded_failed_ends_its_agent_that_still_runs(
    pilots: troy.PilotJobService, tmp_path: Path
) -> None:
    pilot, pid = running_agent(pilots, tmp_path)
    # As the manager records a pilot it gave up for lost (its heartbeat stopped).
    pilots._manager._record_state(pilot, State.Failed, "no heartbeat for 60 s")
    assert pilot.state == State.Failed and alive(pid)

    pilot.cancel()

    wait_until(lambda: not alive(pid), 30, "the agent to end")
    assert pilot.state == State.Failed  # the record stays as it was: canceling changes no state
    assert os.path.isdir(tmp_path / "p")
