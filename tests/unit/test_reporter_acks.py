"""The agent's reporter acknowledges claimed items only after their units' events are written."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from troy.agent.reporter import Reporter
from troy.model import protocol
from troy.model.errors import CoordinationError
from troy.plugins.coordination.file import FileCoordination


def claimed_items(root: Path, queue: str, claimer: str) -> int:
    folder = root / "queues" / queue / "@claimed" / claimer
    if not folder.is_dir():
        return 0
    return sum((folder / name).read_bytes().count(b"\n") for name in os.listdir(folder))


def test_a_flush_acknowledges_the_units_it_wrote(tmp_path: Path) -> None:
    coordination = FileCoordination(str(tmp_path), serve=True)
    coordination.enqueue("pilot/p", [{"id": f"u{n}"} for n in range(4)])
    coordination.claim("pilot/p", "agent", 4)
    reporter = Reporter(coordination, threading.Event(), claimed=("pilot/p", "agent"))

    reporter.add("service/s", protocol.unit_state_event("u0", "Running", pilot="p"))
    reporter.add("service/s", protocol.unit_state_event("u1", "Done", pilot="p", exit=0))
    reporter.add("pilot/p", protocol.pilot_state_event("Running", 0))
    assert claimed_items(tmp_path, "pilot/p", "agent") == 4, "acked before the events were written"
    reporter.flush()

    assert claimed_items(tmp_path, "pilot/p", "agent") == 2
    reporter.acknowledge(["u2"])  # handed back to the queue
    reporter.flush()
    assert claimed_items(tmp_path, "pilot/p", "agent") == 1


def test_events_that_could_not_be_written_acknowledge_nothing(tmp_path: Path) -> None:
    coordination = FileCoordination(str(tmp_path), serve=True)
    coordination.enqueue("pilot/p", [{"id": "u0"}])
    coordination.claim("pilot/p", "agent", 1)
    reporter = Reporter(coordination, threading.Event(), claimed=("pilot/p", "agent"))
    (tmp_path / "streams" / "service").mkdir(parents=True)
    (tmp_path / "streams" / "service" / "s").write_text("a file where the stream's folder goes")

    reporter.add("service/s", protocol.unit_state_event("u0", "Done", pilot="p", exit=0))
    with pytest.raises(CoordinationError):
        reporter.flush()

    assert claimed_items(tmp_path, "pilot/p", "agent") == 1
    (tmp_path / "streams" / "service" / "s").unlink()
    reporter.flush()
    assert claimed_items(tmp_path, "pilot/p", "agent") == 0
