"""Runs survive what breaks in practice: a dead agent, a dead client, a lost service.

Real processes throughout.  Each test runs with every coordination plugin it
applies to; servers are started by the tests themselves (see
tests/redis_fixtures.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis_fixtures import RedisServer, free_port, fresh_redis_server, shared_server

import troy
from troy import State
from troy.testing.backends import wait_until

pytestmark = pytest.mark.slow

__all__ = ["fresh_redis_server"]  # a fixture, used by name


@pytest.fixture(params=["file", "redis", "zmq"])
def coordination_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same run through every coordination plugin, each against a real service."""
    if request.param == "file":
        return (tmp_path / "coordination").as_uri()
    if request.param == "redis":
        server = shared_server()
        return f"{server.url}?prefix=faults-{uuid.uuid4().hex[:8]}"
    return f"tcp://127.0.0.1:{free_port()}?journal={tmp_path / 'journal'}"


def sleepers(count: int, seconds: float) -> list[dict[str, object]]:
    return [{"executable": "/bin/sleep", "arguments": [str(seconds)]} for _ in range(count)]


def assert_each_done_once(units: list[troy.WorkUnit]) -> None:
    assert Counter(u.state for u in units) == {State.Done: len(units)}
    for unit in units:
        assert [s for s, _ in unit.history].count(State.Done) == 1, unit.history


@contextlib.contextmanager
def services(url: str) -> Iterator[tuple[troy.PilotJobService, troy.WorkUnitService]]:
    """A pilot-job service attached to a work-unit service, both closed afterwards."""
    with (
        troy.PilotJobService(coordination=url) as pilots,
        troy.WorkUnitService(coordination=url) as units,
    ):
        units.add(pilots)
        yield pilots, units


def two_pilots(pilots: troy.PilotJobService, tmp_path: Path) -> list[troy.PilotJob]:
    """Two local pilots of two slots each."""
    return [
        pilots.create(
            "fork://localhost",
            {"number_of_processes": 2, "working_directory": str(tmp_path / name)},
        )
        for name in ("first", "second")
    ]


def test_units_of_a_killed_agent_run_on_the_other_pilot(
    coordination_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TROY_HEARTBEAT_TIMEOUT", "3")
    with services(coordination_url) as (pilots, units):
        first, second = two_pilots(pilots, tmp_path)
        submitted = units.submit(sleepers(200, 0.2))
        wait_until(lambda: sum(u.state == State.Done for u in submitted) >= 40, 60, "40 Done")
        assert first.handle is not None
        os.kill(first.handle["pid"], signal.SIGKILL)
        units.wait(timeout=120)
        assert first.state == State.Failed
        assert_each_done_once(submitted)
        moved = [u for u in submitted if u.tries]
        assert moved, "some units must have been lost with the agent and run again"
        assert all(u.pilot == second.id for u in moved)
        assert all(t["kind"] == "lost" and first.id in t["why"] for u in moved for t in u.tries)
        pilots.cancel()


CLIENT = """
import json, sys, time, troy
url, directory = sys.argv[1], sys.argv[2]
pilots = troy.PilotJobService(coordination=url)
units = troy.WorkUnitService(coordination=url)
units.add(pilots)
pilots.create("fork://localhost", {"number_of_processes": 2, "working_directory": directory})
submitted = units.submit([{"executable": "/bin/sleep", "arguments": ["0.1"]}] * 120)
print(json.dumps({"units": units.id, "pilots": pilots.id, "ids": [u.id for u in submitted]}),
      flush=True)
time.sleep(600)
"""


def test_a_new_process_finishes_the_run_of_a_killed_client(
    coordination_url: str, tmp_path: Path
) -> None:
    client = subprocess.Popen(
        [sys.executable, "-c", CLIENT, coordination_url, str(tmp_path / "pilot")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert client.stdout is not None
        started = json.loads(client.stdout.readline())
        time.sleep(1.5)  # some units run, some are done, most wait
    finally:
        client.kill()
        client.wait()
    with troy.WorkUnitService(id=started["units"], coordination=coordination_url) as units:
        units.wait(timeout=120)
        seen = units.list()
        assert sorted(u.id for u in seen) == sorted(started["ids"])
        assert_each_done_once(seen)
    with troy.PilotJobService(id=started["pilots"], coordination=coordination_url) as pilots:
        pilots.cancel()


def test_a_redis_restart_mid_run_loses_nothing(
    fresh_redis_server: RedisServer, tmp_path: Path
) -> None:
    url = f"{fresh_redis_server.url}?prefix=restart&retry=30"
    with services(url) as (pilots, units):
        pilots.create(
            "fork://localhost", {"number_of_processes": 2, "working_directory": str(tmp_path)}
        )
        submitted = units.submit(sleepers(100, 0.1))
        wait_until(lambda: sum(u.state == State.Done for u in submitted) >= 20, 60, "20 Done")
        fresh_redis_server.stop()  # appendonly, fsync always: everything written survives
        time.sleep(1.0)
        fresh_redis_server.start()
        units.wait(timeout=120)
        assert_each_done_once(submitted)
        pilots.cancel()
    # and a new process sees the same
    with troy.WorkUnitService(id=units.id, coordination=url) as again:
        assert_each_done_once(again.list())


def test_unreachable_service_at_submit_is_a_clear_error_and_records_nothing(
    fresh_redis_server: RedisServer,
) -> None:
    url = f"{fresh_redis_server.url}?prefix=down&retry=1"
    units = troy.WorkUnitService(coordination=url)
    units.submit({"executable": "/bin/true"})
    fresh_redis_server.stop()
    started = time.monotonic()
    with pytest.raises(troy.CoordinationError, match=f"127.0.0.1:{fresh_redis_server.port}"):
        units.submit([{"executable": "/bin/true"}] * 10)
    assert time.monotonic() - started < 10
    assert len(units.list()) == 1
    units.close()
    fresh_redis_server.start()
    with troy.WorkUnitService(id=units.id, coordination=url) as again:
        assert len(again.list()) == 1
    with pytest.raises(troy.CoordinationError, match=re.escape("127.0.0.1:1")):
        troy.WorkUnitService(coordination="redis://127.0.0.1:1/0?retry=1")


def test_units_of_a_silent_agent_run_elsewhere_and_its_late_reports_change_nothing(
    coordination_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stopped agent is alive to its backend: only the heartbeat tells it is gone.
    monkeypatch.setenv("TROY_HEARTBEAT_TIMEOUT", "2")
    with services(coordination_url) as (pilots, units):
        silent, other = two_pilots(pilots, tmp_path)
        submitted = units.submit(sleepers(60, 0.2))
        wait_until(lambda: sum(u.state == State.Done for u in submitted) >= 10, 60, "10 Done")
        assert silent.handle is not None
        pid = silent.handle["pid"]
        os.kill(pid, signal.SIGSTOP)
        try:
            wait_until(lambda: silent.state == State.Failed, 30, "the silent pilot Failed")
            assert "heartbeat lapsed" in silent.state_detail
        finally:
            os.kill(pid, signal.SIGCONT)  # it wakes up, reports late, reads terminate, goes
        units.wait(timeout=120)
        assert_each_done_once(submitted)
        late = [u for u in submitted if u.tries]
        assert late and all(u.pilot == other.id for u in late)
        assert all("heartbeat lapsed" in t["why"] for u in late for t in u.tries)
        time.sleep(1.0)  # the woken agent's reports are for old attempts: nothing moves
        assert_each_done_once(submitted)
        assert all(u.pilot == other.id for u in late)
        pilots.cancel()
