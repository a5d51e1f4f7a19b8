"""What only the zmq coordination plugin does: who hosts the broker, outages, retries, URLs.

Everything every coordination plugin must do is in tests/conformance/.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import zmq_fixtures
from zmq_fixtures import Start, free_port

from troy.model.errors import CoordinationError
from troy.plugins.coordination import zmq as plugin
from troy.plugins.coordination import zmq_broker
from troy.plugins.coordination import zmq_curve as curve
from troy.plugins.coordination.base import DEFAULT_RETRY
from troy.plugins.registry import open_coordination

zmq = pytest.importorskip("zmq")
start_host = zmq_fixtures.start_host


def _items(first: int, count: int) -> list[dict[str, Any]]:
    return [{"id": f"u{i:05d}"} for i in range(first, first + count)]


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"tcp://127.0.0.1:{free_port()}?journal={quote(str(tmp_path / 'journal'))}"


Connect = Callable[..., "plugin.ZmqCoordination"]


@pytest.fixture
def connect() -> Iterator[Connect]:
    opened: list[plugin.ZmqCoordination] = []

    def connect(url: str, serve: bool = False) -> plugin.ZmqCoordination:
        opened.append(open_coordination(url, serve=serve))
        return opened[-1]

    yield connect
    for connection in opened:
        connection.close()


def _kill(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait()


# -- who hosts the broker -----------------------------------------------------------


def test_a_second_process_with_serve_becomes_a_client(
    url: str, connect: Connect, start_host: Start
) -> None:
    manager = connect(url, serve=True)
    assert manager.endpoint in zmq_broker.hosted_endpoints()

    process, role, broker_pid = start_host(url, "t/from-child")
    process.wait()

    assert (role, broker_pid) == ("client", os.getpid())
    assert manager.get_record("t/from-child") == {"from": "child"}


def test_connections_of_one_process_share_its_broker(url: str, connect: Connect) -> None:
    first, second = connect(url, serve=True), connect(url, serve=True)
    first.put_record("t/r", {"v": 1})

    assert second.get_record("t/r") == {"v": 1}
    assert zmq_broker.hosted_endpoints().count(first.endpoint) == 1


def test_the_journal_is_a_file_coordination_directory(
    url: str, tmp_path: Path, connect: Connect
) -> None:
    manager = connect(url, serve=True)
    manager.put_record("t/r", {"v": 1})
    manager.append("t/s", [{"n": 0}])

    journal = open_coordination((tmp_path / "journal").as_uri(), serve=True)

    assert journal.get_record("t/r") == {"v": 1}
    assert journal.read("t/s")[0] == [{"n": 0}]


def test_an_agent_never_hosts_and_fails_fast_without_a_broker(url: str) -> None:
    started = time.monotonic()
    with pytest.raises(CoordinationError, match=r"tcp://127\.0\.0\.1:\d+"):
        open_coordination(url)
    assert time.monotonic() - started < plugin.OPEN_TIMEOUT + 1
    assert plugin.parse_url(url).endpoint not in zmq_broker.hosted_endpoints()


# -- outages --------------------------------------------------------------------------


def test_a_call_gives_up_after_the_retry_window_naming_the_endpoint(
    url: str, connect: Connect, start_host: Start
) -> None:
    host, role, _ = start_host(url + "&retry=1")
    assert role == "hosting"
    agent = connect(url + "&retry=1")
    agent.put_record("t/r", {"v": 1})
    _kill(host)

    started = time.monotonic()
    with pytest.raises(CoordinationError, match=r"tcp://127\.0\.0\.1:\d+"):
        agent.get_record("t/r")

    assert 0.9 < time.monotonic() - started < 2.5


def test_a_client_keeps_working_when_the_host_process_is_killed_and_restarted(
    url: str, connect: Connect, start_host: Start
) -> None:
    host, role, _ = start_host(url)
    assert role == "hosting"
    agent, other = connect(url), connect(url)
    agent.put_record("t/pilot", {"state": "Running"})
    agent.append("t/events", [{"n": 0}])
    other.append("t/events", [{"n": 1}])
    agent.enqueue("t/q", _items(0, 10))
    assert agent.claim("t/q", "c1", 2) == _items(0, 2)
    _kill(host)

    during_gap: list[Any] = []
    call = threading.Thread(target=lambda: during_gap.append(agent.claim("t/q", "c1", 3)))
    call.start()
    time.sleep(1.0)
    assert call.is_alive(), "the call did not wait for the broker to come back"
    _, role, _ = start_host(url)
    call.join(timeout=DEFAULT_RETRY)

    assert role == "hosting"
    assert during_gap == [_items(2, 3)]
    assert agent.get_record("t/pilot") == {"state": "Running"}
    assert sorted(e["n"] for e in agent.read("t/events")[0]) == [0, 1]
    assert agent.read("t/events", skip_own=True)[0] == [{"n": 1}]
    assert other.claim("t/q", "c2", 100) == _items(5, 5)


def test_a_manager_takes_over_the_broker_when_its_host_exits(
    url: str, connect: Connect, start_host: Start
) -> None:
    host, _, host_pid = start_host(url)
    manager = connect(url, serve=True)
    assert manager.broker["pid"] == host_pid
    manager.enqueue("t/q", _items(0, 3))
    _kill(host)

    assert manager.claim("t/q", "c1", 10) == _items(0, 3)
    assert manager.endpoint in zmq_broker.hosted_endpoints()


# -- retried requests -----------------------------------------------------------------


def keyed_dealer(url: str) -> Any:
    """A bare DEALER socket to the broker of ``url``, with the client keys of its key file."""
    address = plugin.parse_url(url)
    dealer = zmq.Context.instance().socket(zmq.DEALER)
    dealer.linger = 0
    curve.use_client_keys(dealer, curve.read_keys(address.key_file).for_client())
    dealer.connect(address.endpoint)
    return dealer


def request(
    dealer: Any, connection: str, number: int, op: str, args: list[Any], wait: float = 2.0
) -> tuple[bytes, Any] | None:
    body = json.dumps(args).encode()
    dealer.send_multipart(
        [zmq_broker.PROTOCOL, connection.encode(), str(number).encode(), op.encode(), body]
    )
    if not dealer.poll(int(wait * 1000)):
        return None
    rid, status, payload = dealer.recv_multipart()
    assert rid == str(number).encode()
    return status, json.loads(payload) if status == b"ok" else payload.decode()


def test_a_repeated_request_gets_the_same_reply_without_running_twice(
    url: str, connect: Connect
) -> None:
    manager = connect(url, serve=True)
    dealer = keyed_dealer(url)
    try:
        assert request(dealer, "host-1-abc", 1, "enqueue", ["t/q", _items(0, 4)]) == (b"ok", None)
        assert request(dealer, "host-1-abc", 1, "enqueue", ["t/q", _items(0, 4)]) == (b"ok", None)
        first = request(dealer, "host-1-abc", 2, "claim", ["t/q", "c1", 2])
        again = request(dealer, "host-1-abc", 2, "claim", ["t/q", "c1", 2])
        stale = request(dealer, "host-1-abc", 1, "enqueue", ["t/q", _items(0, 4)], wait=0.5)
    finally:
        dealer.close()

    assert first == again == (b"ok", _items(0, 2))
    assert stale is None
    assert manager.claim("t/q", "c2", 100) == _items(2, 2)


def test_a_lost_reply_is_retried_and_the_request_runs_once(
    url: str, connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = connect(url, serve=True)
    receive = plugin.ZmqCoordination._receive
    dropped: list[bytes] = []

    def lose_first_reply(dealer: Any, rid: bytes, timeout: float) -> tuple[bytes, bytes] | None:
        reply = receive(dealer, rid, timeout)
        if not dropped:
            dropped.append(rid)
            return None
        return reply

    monkeypatch.setattr(plugin.ZmqCoordination, "_receive", staticmethod(lose_first_reply))
    manager.commit("t/s", [{"n": 0}], {"t/q": _items(0, 3)})
    monkeypatch.undo()

    assert dropped
    assert manager.read("t/s")[0] == [{"n": 0}]
    assert manager.claim("t/q", "c1", 100) == _items(0, 3)


def test_a_successor_broker_answers_a_retried_request_without_running_it_again(
    url: str, connect: Connect, start_host: Start
) -> None:
    # The client's view of a broker that ran a request and died before its reply arrived:
    # the request ran, the client never saw the reply, and sends it again to a successor.
    host, role, _ = start_host(url)
    assert role == "hosting"
    dealer = keyed_dealer(url)
    try:
        enqueue = ["t/q", _items(0, 4)]
        assert request(dealer, "host-1-abc", 1, "enqueue", enqueue) == (b"ok", None)
        assert request(dealer, "host-1-abc", 2, "allocate", ["t/ids", 10]) == (b"ok", 0)
        _kill(host)
        _, role, _ = start_host(url)
        assert role == "hosting"
        again = request(dealer, "host-1-abc", 2, "allocate", ["t/ids", 10], wait=10)
        older = request(dealer, "host-1-abc", 1, "enqueue", enqueue, wait=0.5)
    finally:
        dealer.close()

    assert again == (b"ok", 0), "the successor ran the retried allocate again"
    assert older is None
    client = connect(url)
    assert client.claim("t/q", "c", 100) == _items(0, 4), "the successor ran an enqueue twice"
    assert client.allocate("t/ids", 1) == 10


# -- URLs and installation ------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "endpoint", "journal", "retry"),
    [
        ("tcp://127.0.0.1:5757", "tcp://127.0.0.1:5757", "zmq/127.0.0.1_5757", DEFAULT_RETRY),
        ("tcp://node7:6000/?retry=2.5", "tcp://node7:6000", "zmq/node7_6000", 2.5),
        ("tcp://[::1]:5757?journal=/j%20x", "tcp://[::1]:5757", "/j x", DEFAULT_RETRY),
    ],
)
def test_urls(url: str, endpoint: str, journal: str, retry: float, troy_home: Path) -> None:
    address = plugin.parse_url(url)

    assert address.endpoint == endpoint
    assert address.journal == str(troy_home / journal)
    assert address.retry == retry


@pytest.mark.parametrize(
    "url",
    [
        "tcp://127.0.0.1",
        "tcp://:5757",
        "tcp://127.0.0.1:5757/path",
        "tcp://127.0.0.1:5757?jornal=/x",
        "tcp://127.0.0.1:5757?retry=soon",
        "tcp://127.0.0.1:5757?retry=-1",
        "tcp://127.0.0.1:99999",
    ],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(CoordinationError):
        plugin.parse_url(url)


def test_without_pyzmq_opening_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plugin, "zmq", None)

    with pytest.raises(CoordinationError, match=r"pip install troy\[zmq\]"):
        open_coordination("tcp://127.0.0.1:5757")
