"""A finished work-unit service, compacted, replays to the same units and report (issue 16)."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from redis_fixtures import RedisServer, redis_server  # noqa: F401 - a fixture

import troy
from troy import State
from troy.cli import main as troy_main
from troy.core.compaction import compact_unit_service, summarize_unit_events
from troy.model import protocol
from troy.plugins.registry import open_coordination


def run_service(url: str, tmp_path: Path) -> tuple[str, list[tuple[Any, ...]]]:
    """Runs units that succeed, fail, and fail then retry, to the end.

    Returns the service's id and what it showed of each unit (see `shown`).
    """
    pilots = troy.PilotJobService(coordination=url)
    units = troy.WorkUnitService(coordination=url)
    try:
        units.add(pilots)
        pilots.create(
            "fork://localhost",
            {"number_of_processes": 3, "working_directory": str(tmp_path / "pilot")},
        )
        descriptions: list[dict[str, Any]] = []
        for n in range(40):
            if n % 10 == 3:
                descriptions.append({"executable": "/bin/sh", "arguments": ["-c", "exit 3"]})
            elif n % 10 == 7:
                descriptions.append(
                    {"executable": "/bin/sh", "arguments": ["-c", "exit 4"], "retries": 2}
                )
            else:
                descriptions.append({"executable": "/bin/echo", "arguments": [str(n)]})
        submitted = units.submit(descriptions)
        units.wait(timeout=120)
        assert all(u.state.is_final for u in submitted)
        return units.id, shown(submitted)
    finally:
        pilots.cancel()
        pilots.close()
        units.close()


def shown(units: list[troy.WorkUnit]) -> list[tuple[Any, ...]]:
    return [
        (u.id, u.state, u.state_detail, u.exit_code, u.pilot, u.sandbox, u.tries, u.history)
        for u in units
    ]


def unit_states(url: str, service_id: str) -> list[tuple[Any, ...]]:
    """What a service reconnecting by id shows of each unit."""
    with troy.WorkUnitService(id=service_id, coordination=url) as units:
        return shown(units.list())


def report(url: str, service_id: str, output: Path, capsys: pytest.CaptureFixture[str]) -> Any:
    assert troy_main(["report", service_id, "--coordination", url, "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    files = {name: (output / name).read_bytes() for name in sorted(os.listdir(output))}
    return printed, files


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(params=["file", "redis", "zmq"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        return f"{server.url}?prefix=compaction-{uuid.uuid4().hex[:8]}"
    if request.param == "zmq":
        pytest.importorskip("zmq")
        journal = quote(str(tmp_path / "journal"))
        return f"tcp://127.0.0.1:{free_port()}?journal={journal}"
    return (tmp_path / "coordination").as_uri()


def test_a_compacted_service_replays_to_the_same_units_and_report(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Compared with what the service showed as it ran: a service reconnecting to the
    # stream before compaction replays events in the order it reads them, and loses
    # the earlier runs and tries of a retried unit whose later Pending it reads first.
    service_id, before = run_service(url, tmp_path)
    report_before = report(url, service_id, tmp_path / "report", capsys)
    coordination = open_coordination(url, serve=True)
    events_before, _ = coordination.read(protocol.service_key(service_id))

    assert compact_unit_service(coordination, service_id) is True

    events_after, _ = coordination.read(protocol.service_key(service_id))
    assert len(events_after) <= len(events_before)
    assert sum(1 for e in events_after if e.get("ev") == "unit") == 40
    assert unit_states(url, service_id) == before
    assert report(url, service_id, tmp_path / "report", capsys) == report_before
    assert any(state == State.Failed for _, state, *_ in before)
    # Compacting again changes nothing.
    assert compact_unit_service(coordination, service_id) is True
    assert coordination.read(protocol.service_key(service_id))[0] == events_after


def test_a_service_with_units_not_final_is_not_compacted() -> None:
    events = [
        {"ev": "unit", "id": "wu.0", "d": {"executable": "/bin/true"}, "ts": 1.0},
        {"ev": "state", "id": "wu.0", "s": "Pending", "ts": 2.0, "a": 0, "pilot": "p"},
    ]
    assert summarize_unit_events(events) is None


def test_the_summary_keeps_only_what_moves_a_unit() -> None:
    unit = {"ev": "unit", "id": "wu.0", "d": {"executable": "/bin/true"}, "ts": 1.0}
    pending = {"ev": "state", "id": "wu.0", "s": "Pending", "ts": 2.0, "a": 0, "pilot": "p"}
    running = {"ev": "state", "id": "wu.0", "s": "Running", "ts": 3.0, "a": 0, "sandbox": "/s"}
    done = {"ev": "state", "id": "wu.0", "s": "Done", "ts": 4.0, "a": 0, "exit": 0}
    stale = {"ev": "state", "id": "wu.0", "s": "Pending", "ts": 2.5, "a": 0, "pilot": "p"}
    add = {"ev": "add", "pjs": "pjs.1"}

    summary = summarize_unit_events([add, unit, done, stale, running, pending])

    assert summary == [
        add,
        {**unit, "state": pending},
        {**running, **done, "run": 3.0},
    ]
    assert summarize_unit_events(summary) == summary
