"""An idle agent does not busy-poll coordination, and still starts a unit sent to it.

A real agent (in a thread of this process) on a real file, redis and zmq
coordination; its connection's ``claim`` and ``wait_for_work`` are counted
(the instance's methods wrapped, the calls passed on).  Where coordination can
block (redis, zmq: contract 1.4) the agent waits there; on files it polls,
backing off to `IDLE_POLL_MAX`.  The bound on claims is counted, not timed: a
loaded machine only makes fewer calls.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from redis_fixtures import RedisServer, redis_server  # noqa: F401 - fixture
from zmq_fixtures import free_port

from troy.agent import agent as agent_module
from troy.agent.agent import Agent
from troy.model import protocol
from troy.plugins.registry import open_coordination

#: Seconds over which the idle agent's calls are counted.
WINDOW = 2.5  # longer than IDLE_WAIT: it looks at least once


def counted(calls: list[tuple[float, Any]], method: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        at = time.monotonic()
        result = method(*args, **kwargs)
        calls.append((at, result))
        return result

    return call


@pytest.fixture(params=["file", "redis", "zmq"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "file":
        return (tmp_path / "coordination").as_uri()
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        return f"{server.url}?prefix=idle-{uuid.uuid4().hex[:12]}&retry=5"
    pytest.importorskip("zmq")
    return f"tcp://127.0.0.1:{free_port()}?journal={quote(str(tmp_path / 'journal'))}"


@pytest.fixture
def running(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Agent, dict[str, list[tuple[float, Any]]]]]:
    for name in ("TROY_PILOT_ID", "TROY_PILOT_DIRECTORY", "PWD", "OLDPWD"):
        monkeypatch.setenv(name, os.environ.get(name, ""))
    monkeypatch.setattr(agent_module, "IDLE_FAST_FOR", 0.1)  # to the slow pace at once
    monkeypatch.setattr(agent_module.signal, "signal", lambda *_: None)  # not the main thread
    manager = open_coordination(url, serve=True)
    manager.put_record(
        protocol.pilot_key("pilot-a"),
        {"description": {"number_of_processes": 1}, "working_directory": str(tmp_path / "p")},
    )
    coordination = open_coordination(url)
    calls: dict[str, list[tuple[float, Any]]] = {"claim": [], "wait_for_work": []}
    for name, seen in calls.items():
        setattr(coordination, name, counted(seen, getattr(coordination, name)))
    agent = Agent(coordination, "pilot-a")
    thread = threading.Thread(target=agent.run, daemon=True)
    thread.start()
    try:
        yield agent, calls
    finally:
        agent.request_stop("Canceled", "Canceled", "test over")
        thread.join(timeout=30)
        coordination.close()
        manager.close()
    assert not thread.is_alive(), "the agent did not stop"


def test_an_idle_agent_looks_a_few_times_a_second_and_still_starts_a_unit(
    running: tuple[Agent, dict[str, list[tuple[float, Any]]]], tmp_path: Path
) -> None:
    agent, calls = running
    time.sleep(0.5)  # running, and past IDLE_FAST_FOR
    began = time.monotonic()
    time.sleep(WINDOW)
    claims = sum(1 for at, _ in calls["claim"] if began <= at < began + WINDOW)
    # Before: a look every IDLE_POLL (0.025 s), about 60 in the window.
    most = WINDOW / agent_module.IDLE_POLL_MAX + 2
    assert claims <= most, f"{claims} claims in {WINDOW} s idle: it polls (at most {most})"
    assert claims >= 1, "the idle agent stopped looking at its queue"
    if any(blocked for _, blocked in calls["wait_for_work"]):  # redis, zmq: it blocked there
        assert claims <= WINDOW / 0.5 + 2, f"{claims} claims in {WINDOW} s blocking idle"

    target = tmp_path / "ran"
    item = {"id": "wu-1", "service": "wus-1", "a": 0,
            "d": {"executable": "/bin/touch", "arguments": [str(target)]}}  # fmt: skip
    open_coordination(agent.coordination.url).enqueue(agent.queue, [item])
    deadline = time.monotonic() + 30
    while not target.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert target.exists(), "a unit sent to the idle agent did not start"
