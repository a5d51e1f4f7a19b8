"""A malformed item in a pilot's queue fails its unit with a reason; the agent runs on (issue 17).

Hand-made items go straight into a running pilot's queue through the
coordination API, next to good units: items that name a unit of a work-unit
service (one with no pilot, so only these items can decide its fate) end
Failed with what was wrong, and that service's wait() returns; items without
a usable id or service are dropped; the good units run, and the agent is
still alive at the end.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest
import redis
from redis_fixtures import RedisServer, redis_server  # noqa: F401 - a fixture

import troy
from troy import State
from troy.model import protocol
from troy.plugins.coordination.base import Coordination
from troy.plugins.registry import open_coordination
from troy.testing.backends import running_local_pilot

#: (what the description field says, the description, a word the reason must hold).
BAD_DESCRIPTIONS: list[tuple[str, Any, str]] = [
    ("not a mapping", "echo hi", "'d' must be"),
    ("no executable", {"arguments": ["x"]}, "executable"),
    ("wrong type", {"executable": ["/bin/true"]}, "executable"),
    ("a NUL", {"executable": "/bin/echo", "arguments": ["a\0b"]}, "NUL"),
    ("a lone surrogate", {"executable": "/bin/echo\ud800"}, "surrogate"),
    ("cores = 10**9", {"executable": "/bin/true", "cores": 10**9}, "cores"),
    ("a 10 MB argument", {"executable": "/bin/echo", "arguments": ["x" * 10_000_000]}, "bytes"),
    ("an unknown field", {"executable": "/bin/true", "bogus": 1}, "bogus"),
    ("NaN", {"executable": "/bin/true", "wall_time_limit": float("nan")}, "wall_time_limit"),
    ("a path out of the pilot", {"executable": "/bin/true", "output": "../../x"}, "output"),
]
#: Items with a unit id but a broken envelope: (item without id/service, a word of the reason).
BAD_ENVELOPES: list[tuple[dict[str, Any], str]] = [
    ({"a": "zero"}, "'a'"),
    ({"a": -1}, "'a'"),
    ({"t": "none"}, "'t'"),
]
#: Items without a usable id or service: dropped.
UNUSABLE: list[Any] = [
    [1, 2, 3],
    "a string",
    42,
    None,
    {"service": "x", "d": {"executable": "/bin/true"}},
    {"id": 7, "service": "x", "d": {"executable": "/bin/true"}},
    {"id": "../../etc", "service": "x", "d": {"executable": "/bin/true"}},
    {"id": "wu-nosuch-1", "d": {"executable": "/bin/true"}},
]


@pytest.fixture(params=["file", "redis", "zmq"])
def coordination_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "file":
        yield (tmp_path / "coordination").as_uri()
    elif request.param == "zmq":
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        yield f"tcp://127.0.0.1:{port}?journal={quote(str(tmp_path / 'journal'))}"
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        yield f"{server.url}?prefix=bad-{uuid.uuid4().hex[:8]}"


def file_root(url: str) -> Path | None:
    """The file coordination tree behind ``url`` (the zmq broker's journal is one)."""
    if url.startswith("file:"):
        return Path(url.removeprefix("file://"))
    if url.startswith("tcp:"):
        return Path(unquote(url.partition("journal=")[2]))
    return None


def pending_folder(url: str, queue: str) -> Path:
    root = file_root(url)
    assert root is not None
    pending = root / "queues" / queue / "@pending"
    pending.mkdir(parents=True, exist_ok=True)
    return pending


def bundle_name() -> str:
    """A new bundle's name: a bundle name sorts by its first field (ns)."""
    return f"{time.time_ns():020d}-rogue-000000.000000000.jsonl"


def raw_enqueue(url: str, queue: str, lines: list[bytes]) -> None:
    """Put raw lines into ``queue``, bypassing what the coordination API refuses to write."""
    if file_root(url) is not None:
        data = b"".join(line + b"\n" for line in lines)
        (pending_folder(url, queue) / bundle_name()).write_bytes(data)
    else:
        server, _, query = url.partition("?")
        prefix = query.removeprefix("prefix=")
        client = redis.Redis.from_url(server)
        client.rpush(f"{prefix}:q:{queue}", *lines)
        client.close()


def test_bad_queue_items_fail_alone_and_the_agent_runs_on(
    coordination_url: str, tmp_path: Path
) -> None:
    url = coordination_url
    pilots = troy.PilotJobService(coordination=url)
    good = troy.WorkUnitService(coordination=url)
    orphans = troy.WorkUnitService(coordination=url)  # no pilot: only our items place its units
    coordination: Coordination = open_coordination(url)
    try:
        good.add(pilots)
        pilot, pid = running_local_pilot(pilots, coordination, tmp_path / "pilot", 2)
        queue = protocol.pilot_key(pilot.id)
        first = good.submit([{"executable": "/bin/true"} for _ in range(3)])

        bad_units = orphans.submit(
            [{"executable": "/bin/true"} for _ in BAD_DESCRIPTIONS + BAD_ENVELOPES]
        )
        items: list[dict[str, Any]] = []
        for unit, (_, description, _) in zip(bad_units, BAD_DESCRIPTIONS, strict=False):
            items.append({"id": unit.id, "service": orphans.id, "d": description, "a": 0})
        for unit, (envelope, _) in zip(
            bad_units[len(BAD_DESCRIPTIONS) :], BAD_ENVELOPES, strict=True
        ):
            items.append(
                {"id": unit.id, "service": orphans.id, "d": {"executable": "/bin/true"}, **envelope}
            )
        raw_enqueue(url, queue, [_json(item) for item in items])
        raw_enqueue(url, queue, [_json(value) for value in UNUSABLE])
        raw_enqueue(url, queue, [b"this is not JSON", b'{"id": "wu-half', b"\xff\xfe"])
        if file_root(url) is not None:  # files that are not bundles, in the queue's folder
            raw_enqueue(url, queue, [b"\x00\x01 binary garbage"])
            pending = pending_folder(url, queue)
            os.mkfifo(pending / bundle_name())  # reading it would block for good
            (pending / bundle_name()).mkdir()
            (pending / bundle_name()).symlink_to(pending / "elsewhere.jsonl")
        second = good.submit([{"executable": "/bin/echo", "arguments": ["ok"]} for _ in range(3)])

        good.wait(timeout=60)
        assert [u.state for u in first + second] == [State.Done] * 6
        orphans.wait(timeout=60)
        reasons = {u.id: u.state_detail or "" for u in bad_units}
        assert [u.state for u in bad_units] == [State.Failed] * len(bad_units), reasons
        expected = [word for _, _, word in BAD_DESCRIPTIONS] + [w for _, w in BAD_ENVELOPES]
        for unit, word in zip(bad_units, expected, strict=True):
            assert word in reasons[unit.id], (word, reasons[unit.id])
            assert "Traceback" not in reasons[unit.id]
        assert all(len(reason) < 2000 for reason in reasons.values())

        # Broken control requests are ignored too.
        coordination.append(
            protocol.control_stream(pilot.id),
            [
                {"ev": "cancel", "units": "all"},
                {"ev": "cancel", "units": [1, 2]},
                {"ev": "terminate", "a": "0"},
                {"ev": "terminate", "a": 0, "reason": ["x"]},
                {"ev": "mystery"},
            ],
        )
        time.sleep(0.5)  # the agent reads its control stream every 50 ms
        # The agent is alive and still runs units.
        assert pilot.state == State.Running
        os.kill(pid, 0)
        last = good.submit({"executable": "/bin/true"})
        assert last.wait(timeout=60) == State.Done
    finally:
        pilots.cancel()
        pilots.close()
        good.close()
        orphans.close()
        coordination.close()


def _json(value: Any) -> bytes:
    return json.dumps(value).encode("utf-8", "surrogatepass")
