"""troy's first multi-host run: Redis on one host, a pilot's agent on another.

The hosts are Linux network namespaces with addresses of their own on a
bridge (ip netns + veth, as root): units submitted from this (the root)
namespace must run in the agent's namespace, coordinated through a Redis
server that lives in a third one.  Skipped, saying why, where namespaces
cannot be made.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis_fixtures import require_redis_server

import troy
from troy import State

pytestmark = [pytest.mark.redis, pytest.mark.slow]

TAG = f"{os.getpid() % 100000}"
BRIDGE = f"trbr{TAG}"
SUBNET = f"10.77.{os.getpid() % 200 + 20}"
HOSTS = {
    "redis": (f"troy-redis-{TAG}", f"{SUBNET}.2"),
    "agent": (f"troy-agent-{TAG}", f"{SUBNET}.3"),
}
REDIS_PORT = 6391
PASSWORD = "troy-two-hosts"


def ip(*args: str, namespace: str | None = None) -> None:
    command = (
        ["ip", *args] if namespace is None else ["ip", "netns", "exec", namespace, "ip", *args]
    )
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {result.stderr.strip()}")


def teardown() -> None:
    for namespace, _ in HOSTS.values():
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
    subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)


@pytest.fixture(scope="module")
def hosts() -> Iterator[dict[str, tuple[str, str]]]:
    """Two namespaces on a bridge with this one: {role: (namespace, address)}."""
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    if shutil.which("ip") is None:
        pytest.skip("iproute2's ip is not installed")
    try:
        ip("link", "add", BRIDGE, "type", "bridge")
        ip("addr", "add", f"{SUBNET}.1/24", "dev", BRIDGE)
        ip("link", "set", BRIDGE, "up")
        for index, (namespace, address) in enumerate(HOSTS.values()):
            outside, inside = f"tv{index}o{TAG}", f"tv{index}i{TAG}"
            ip("netns", "add", namespace)
            ip("link", "add", outside, "type", "veth", "peer", "name", inside)
            ip("link", "set", inside, "netns", namespace)
            ip("link", "set", outside, "master", BRIDGE)
            ip("link", "set", outside, "up")
            ip("addr", "add", f"{address}/24", "dev", inside, namespace=namespace)
            ip("link", "set", inside, "up", namespace=namespace)
            ip("link", "set", "lo", "up", namespace=namespace)
    except RuntimeError as exc:
        teardown()
        pytest.skip(f"cannot make network namespaces here: {exc}")
    yield HOSTS
    teardown()


@pytest.fixture
def redis_in_namespace(hosts: dict[str, tuple[str, str]], tmp_path: Path) -> Iterator[str]:
    """A Redis server on the 'redis' host; its URL as the other hosts reach it."""
    executable = require_redis_server()
    namespace, address = hosts["redis"]
    server = subprocess.Popen(
        ["ip", "netns", "exec", namespace, executable, "--bind", address,
         "--port", str(REDIS_PORT), "--dir", str(tmp_path), "--requirepass", PASSWORD,
         "--save", "", "--appendonly", "no", "--daemonize", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection((address, REDIS_PORT), timeout=0.2).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"redis-server in {namespace} did not come up")
            time.sleep(0.05)
    # Reached from other hosts, Redis wants a password (protected mode otherwise).
    yield f"redis://:{PASSWORD}@{address}:{REDIS_PORT}/0?prefix=two-hosts&retry=10"
    server.terminate()
    server.wait(10)


def network_namespace(namespace: str | None = None) -> str:
    command = ["readlink", "/proc/self/ns/net"]
    if namespace is not None:
        command = ["ip", "netns", "exec", namespace, *command]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


def test_units_submitted_here_run_on_the_agents_host(
    hosts: dict[str, tuple[str, str]], redis_in_namespace: str, tmp_path: Path
) -> None:
    agent_namespace, agent_address = hosts["agent"]
    with (
        troy.PilotJobService(coordination=redis_in_namespace) as pilots,
        troy.WorkUnitService(coordination=redis_in_namespace) as units,
    ):
        units.add(pilots)
        # The local backend starts the agent through the pilot's executable: on the other host.
        pilot = pilots.create(
            "fork://localhost",
            {
                "executable": "ip",
                "arguments": ["netns", "exec", agent_namespace],
                "number_of_processes": 2,
                "working_directory": str(tmp_path / "pilot"),
            },
        )
        script = "readlink /proc/self/ns/net; ip -o -4 addr show | grep -o 'inet [0-9.]*'"
        submitted = units.submit(
            [{"executable": "/bin/sh", "arguments": ["-c", script], "output": "where"}] * 10
        )
        units.wait(timeout=60)
        assert [u.state for u in submitted] == [State.Done] * 10, pilot.state_detail
        there = network_namespace(agent_namespace)
        assert there != network_namespace()
        for unit in submitted:
            assert unit.sandbox is not None
            lines = Path(unit.sandbox, "where").read_text().splitlines()
            assert lines[0] == there
            assert f"inet {agent_address}" in lines[1:]
        pilots.cancel()
        assert pilot.state == State.Canceled
