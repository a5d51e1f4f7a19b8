"""Canceling a pilot always ends its agent, and an agent without coordination backs off (issue 16).

Real local pilots.  Two ways an agent used to survive a cancel: coordination
refusing the control-stream write (cancel raised before it asked the backend),
and a pilot already recorded Failed (cancel returned at once, although the
agent still ran).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis_fixtures import fresh_redis_server

import troy
from troy import State
from troy.model import processes
from troy.model.errors import CoordinationError
from troy.testing.backends import wait_until

pytestmark = pytest.mark.slow

__all__ = ["fresh_redis_server"]  # a fixture, used by name


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, not yet reaped, counts as gone)."""
    return processes.start_time(pid) is not None


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


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds ``pid`` has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_an_agent_whose_coordination_is_gone_backs_off_instead_of_spinning(
    fresh_redis_server: Any, tmp_path: Path
) -> None:
    url = f"{fresh_redis_server.url}?prefix=outage&retry=0"
    pilots = troy.PilotJobService(coordination=url)
    units = troy.WorkUnitService(coordination=url)
    pid = None
    try:
        units.add(pilots)
        _, pid = running_agent(pilots, tmp_path)
        # Claimed units keep running (and ending) through the outage: each end wakes the loop.
        submitted = units.submit(
            [{"executable": "/bin/sleep", "arguments": ["0.3"]} for _ in range(40)]
        )
        wait_until(lambda: any(u.state == State.Running for u in submitted), 30, "a unit to run")
        fresh_redis_server.stop()
        time.sleep(2.0)  # the agent has met the outage by now
        before, started = cpu_seconds(pid), time.monotonic()
        time.sleep(4.0)
        used = (cpu_seconds(pid) - before) / (time.monotonic() - started)
        assert alive(pid)  # it waits for coordination to come back (up to MAX_OUTAGE)
        assert used < 0.15, f"the agent used {100 * used:.0f} % of a core during the outage"
    finally:
        if pid is not None and alive(pid):
            os.killpg(pid, 9)
        units.close()
        pilots.close()
