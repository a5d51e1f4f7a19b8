"""A zmq coordination broker hosted by another process: for tests whose clients must use TCP.

Import the fixture into a test module (``from zmq_fixtures import start_host``; pytest
puts tests/ on sys.path).  Connections in the broker's own process reach it over
``inproc://``, without CURVE; only a broker in another process makes a test's
clients go through TCP, as an agent's do.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

#: Opens a connection serve=True and says whether it hosts the broker; then, given a key,
#: writes a record there and exits, else waits to be killed.
HOST = """
import sys, time
from troy.plugins.registry import open_coordination
from troy.plugins.coordination import zmq as plugin
from troy.plugins.coordination import zmq_broker
connection = open_coordination(sys.argv[1], serve=True)
if len(sys.argv) > 2:
    connection.put_record(sys.argv[2], {"from": "child"})
hosting = connection.endpoint in zmq_broker.hosted_endpoints()
print("hosting" if hosting else "client", connection.broker["pid"], flush=True)
if len(sys.argv) == 2:
    time.sleep(600)
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


Start = Callable[..., tuple[subprocess.Popen[str], str, int]]


@pytest.fixture
def start_host() -> Iterator[Start]:
    """Starts a process that opens the URL with serve=True; gives it, 'hosting'/'client', pid."""
    started: list[subprocess.Popen[str]] = []

    def start(url: str, *args: str) -> tuple[subprocess.Popen[str], str, int]:
        process = subprocess.Popen(
            [sys.executable, "-c", HOST, url, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        assert process.stdout is not None
        line = process.stdout.readline().split()
        if not line:
            process.wait()
            pytest.fail(f"host process failed:\n{process.stderr.read() if process.stderr else ''}")
        return process, line[0], int(line[1])

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate()  # closes its pipes
