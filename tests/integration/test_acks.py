"""Agents acknowledge the queue items of units whose state they reported (issue 16).

Without acks every claimed item stays in the claimer's storage for good: the
``@claimed`` folders of the file plugin (and of the zmq journal) and the
``claimed`` lists of Redis grow with every unit ever run.
"""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path
from urllib.parse import quote

import redis
from redis_fixtures import RedisServer, redis_server  # noqa: F401 - a fixture

import troy
from troy import State
from troy.plugins.registry import open_coordination
from troy.testing.backends import wait_until


def claimed_file_items(root: Path) -> int:
    """Items in every ``@claimed`` folder below a file coordination directory."""
    count = 0
    for folder, _, names in os.walk(root / "queues"):
        if f"{os.sep}@claimed{os.sep}" in folder + os.sep or folder.endswith("@claimed"):
            count += sum(Path(folder, name).read_bytes().count(b"\n") for name in names)
    return count


def run_units(url: str, tmp_path: Path, count: int) -> None:
    pilots = troy.PilotJobService(coordination=url)
    units = troy.WorkUnitService(coordination=url)
    try:
        units.add(pilots)
        pilots.create(
            "fork://localhost",
            {"number_of_processes": 4, "working_directory": str(tmp_path / "pilot")},
        )
        submitted = units.submit([{"executable": "/bin/true"} for _ in range(count)])
        units.wait(timeout=120)
        assert [u.state for u in submitted] == [State.Done] * count
    finally:
        pilots.cancel()
        pilots.close()
        units.close()


def test_after_units_ran_no_claimed_item_is_left_with_file_coordination(
    tmp_path: Path,
) -> None:
    root = tmp_path / "coordination"
    run_units(root.as_uri(), tmp_path, 300)

    # The pilot is canceled: its agent has written (and acknowledged) all it will.
    wait_until(lambda: claimed_file_items(root) == 0, 30, "claimed items to be acknowledged")


def test_after_units_ran_no_claimed_item_is_left_with_redis(
    tmp_path: Path,
    redis_server: RedisServer,  # noqa: F811
) -> None:
    prefix = f"acks-{uuid.uuid4().hex[:8]}"
    run_units(f"{redis_server.url}?prefix={prefix}", tmp_path, 300)
    client = redis.Redis(host="127.0.0.1", port=redis_server.port)

    def left() -> int:
        keys = client.keys(f"{prefix}:claimed:*")
        lists = [key for key in keys if not key.endswith(b":base")]
        return sum(1 for key in lists for item in client.lrange(key, 0, -1) if item)

    wait_until(lambda: left() == 0, 30, "claimed items to be acknowledged")


def test_after_units_ran_no_claimed_item_is_left_with_zmq(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    journal = tmp_path / "journal"
    run_units(f"tcp://127.0.0.1:{port}?journal={quote(str(journal))}", tmp_path, 300)

    # The broker's journal is a file coordination directory.
    wait_until(lambda: claimed_file_items(journal) == 0, 30, "claimed items to be acknowledged")


def test_the_file_helper_counts_claimed_items(tmp_path: Path) -> None:
    coordination = open_coordination((tmp_path / "c").as_uri(), serve=True)
    coordination.enqueue("q", [{"id": "a"}, {"id": "b"}])
    coordination.claim("q", "me", 2)
    assert claimed_file_items(tmp_path / "c") == 2
