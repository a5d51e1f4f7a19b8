"""An agent out of touch with coordination starts no unit (troy.agent.agent).

An agent that has not beaten and read its control stream for half its
heartbeat timeout (it was stopped, or cut off) may have been given up for
lost, and its units placed again: a unit it starts then could run alongside
its own re-run.  In process, with a real file coordination and real units.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from troy.agent.agent import Agent
from troy.agent.slots import Job
from troy.model import protocol
from troy.plugins.coordination.base import Coordination
from troy.plugins.registry import open_coordination


@pytest.fixture
def agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Agent]:
    # The agent sets these in its own environment: let monkeypatch restore them.
    for name in ("TROY_PILOT_ID", "TROY_PILOT_DIRECTORY", "PWD", "OLDPWD"):
        monkeypatch.setenv(name, os.environ.get(name, ""))
    coordination = open_coordination((tmp_path / "coordination").as_uri(), serve=True)
    coordination.put_record(
        protocol.pilot_key("pilot-a"),
        {
            "description": {"number_of_processes": 1},
            "working_directory": str(tmp_path / "pilot"),
            "heartbeat": {"interval": 0.1, "timeout": 0.6},
        },
    )
    (tmp_path / "pilot").mkdir()
    yield Agent(coordination, "pilot-a")
    coordination.close()


def toucher(path: Path) -> Job:
    return Job("wu-1", "wus-1", {"executable": "/bin/touch", "arguments": [str(path)]}, 1, 1)


def queued(coordination: Coordination, queue: str) -> list[tuple[str, int]]:
    return [(item["id"], item["a"]) for item in coordination.claim(queue, "test", 10)]


def test_a_unit_waits_while_the_agent_is_out_of_touch_and_goes_back_if_it_stops(
    agent: Agent, tmp_path: Path
) -> None:
    agent._in_touch_since -= 10  # as after a long SIGSTOP: the last beat is old
    later = threading.Timer(0.3, agent.request_stop, ("Failed", "lost", "given up for lost"))
    later.start()
    started = time.monotonic()
    agent._execute(toucher(tmp_path / "ran"))
    assert time.monotonic() - started >= 0.25, "it did not wait for the agent's verdict"
    assert not (tmp_path / "ran").exists(), "a unit started while the agent was out of touch"
    assert queued(agent.coordination, agent.queue) == [("wu-1", 1)]  # back, unstarted


def test_a_unit_starts_once_the_agent_is_in_touch_again(agent: Agent, tmp_path: Path) -> None:
    agent._in_touch_since -= 10
    later = threading.Timer(0.3, lambda: setattr(agent, "_in_touch_since", time.monotonic()))
    later.start()
    agent._execute(toucher(tmp_path / "ran"))
    assert (tmp_path / "ran").exists()
    assert queued(agent.coordination, agent.queue) == []
