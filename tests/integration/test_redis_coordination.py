"""The redis coordination plugin: what is special about it, against real Redis servers.

The conformance suite (tests/conformance/test_redis_coordination.py) says what it
shares with every coordination plugin; these tests cover URLs, passwords, outages
and restarts, the atomicity of commit, and retries after a lost reply.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis_fixtures import (  # noqa: F401 - fixtures
    RedisServer,
    free_port,
    fresh_redis_server,
    redis_server,
    running_server,
)

from troy.model.errors import CoordinationError
from troy.plugins.coordination.base import DEFAULT_RETRY
from troy.plugins.coordination.redis import RedisCoordination
from troy.plugins.registry import for_url, open_coordination

pytestmark = pytest.mark.redis

redis = pytest.importorskip("redis")


def _items(first: int, count: int, tag: str = "u") -> list[dict[str, Any]]:
    return [{"id": f"{tag}{i:05d}", "n": i} for i in range(first, first + count)]


def _ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["id"] for item in items]


@pytest.fixture
def prefix() -> str:
    return f"special-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def url(redis_server: RedisServer, prefix: str) -> str:  # noqa: F811
    return f"{redis_server.url}?prefix={prefix}&retry=5"


@pytest.fixture
def coordination(url: str) -> Iterator[RedisCoordination]:
    connection = RedisCoordination(url)
    yield connection
    connection.close()


def _raw(server: RedisServer, db: int = 0) -> Any:
    return redis.Redis(host="127.0.0.1", port=server.port, db=db)


def _lose_replies(
    monkeypatch: pytest.MonkeyPatch,
    coordination: RedisCoordination,
    error: type[Exception],
    times: int = 1,
    after: bool = True,
) -> list[str]:
    """Make the next ``times`` commands fail with ``error`` after (or before) the server ran
    them: as when a reply is lost.  Returns the names of the commands that failed."""
    client = coordination._client
    original = client.execute_command
    failed: list[str] = []

    def execute(*args: Any, **options: Any) -> Any:
        if len(failed) < times:
            failed.append(str(args[0]))
            if after:
                original(*args, **options)
            raise error("injected: reply lost")
        return original(*args, **options)

    monkeypatch.setattr(client, "execute_command", execute)
    return failed


# -- URLs --------------------------------------------------------------------------------
def test_url_options_are_parsed(redis_server: RedisServer) -> None:  # noqa: F811
    connection = RedisCoordination(f"{redis_server.url.rsplit('/', 1)[0]}/3?prefix=a/b&retry=2.5")
    try:
        assert (connection.host, connection.port, connection.db) == (
            "127.0.0.1",
            redis_server.port,
            3,
        )
        assert connection.prefix == "a/b"
        assert connection.retry == 2.5
        connection.put_record("k", {"v": 1})
    finally:
        connection.close()
    assert _raw(redis_server, db=3).get("a/b:rec:k") == b'{"v":1}'
    assert _raw(redis_server, db=0).get("a/b:rec:k") is None


def test_defaults(redis_server: RedisServer) -> None:  # noqa: F811
    connection = RedisCoordination(f"redis://127.0.0.1:{redis_server.port}")
    try:
        assert (connection.db, connection.prefix, connection.retry) == (0, "troy", DEFAULT_RETRY)
    finally:
        connection.close()


@pytest.mark.parametrize(
    "query, complaint",
    [
        ("prefix=a:b", "prefix"),
        ("prefix=", "prefix"),
        ("retry=soon", "retry"),
        ("retry=-1", "retry"),
        ("retry=nan", "retry"),
        ("colour=red", "unknown option"),
        ("retry=1&retry=2", "twice"),
        ("ssl_ca_certs=/x", "unknown option"),
    ],
)
def test_bad_options_are_refused(
    redis_server: RedisServer,  # noqa: F811
    query: str,
    complaint: str,
) -> None:
    with pytest.raises(CoordinationError, match=complaint):
        RedisCoordination(f"{redis_server.url}?{query}")


def test_a_path_that_is_no_database_number_is_refused(
    redis_server: RedisServer,  # noqa: F811
) -> None:
    with pytest.raises(CoordinationError, match="database number"):
        RedisCoordination(f"redis://127.0.0.1:{redis_server.port}/zero")


def test_both_schemes_select_the_plugin() -> None:
    assert for_url("coordination", "redis://h:1/0") is RedisCoordination
    assert for_url("coordination", "rediss://h:1/0") is RedisCoordination


def test_importing_the_plugin_does_not_import_redis_py() -> None:
    # The registry imports plugins to learn their URL schemes: that must stay cheap.
    code = "import sys, troy.plugins.coordination.redis; print('redis' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_without_redis_py_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(CoordinationError, match=r"pip install troy\[redis\]"):
        RedisCoordination("redis://127.0.0.1:1/0")


# -- passwords -----------------------------------------------------------------------------
def test_a_password_is_used_but_never_shown() -> None:
    password = "Sup3r-s3cret"
    with running_server({"--requirepass": password}) as server:
        good = RedisCoordination(f"redis://:{password}@127.0.0.1:{server.port}/0?prefix=pw")
        try:
            good.put_record("k", {"v": 1})
            assert good.get_record("k") == {"v": 1}
            assert password not in repr(good)
            assert "***" in repr(good)
        finally:
            good.close()

        wrong = "Wr0ng-s3cret"
        with pytest.raises(CoordinationError) as refused:
            RedisCoordination(f"redis://:{wrong}@127.0.0.1:{server.port}/0")
        assert wrong not in str(refused.value)
        assert f"127.0.0.1:{server.port}" in str(refused.value)

        with pytest.raises(CoordinationError) as missing:
            RedisCoordination(f"redis://127.0.0.1:{server.port}/0")
        assert f"127.0.0.1:{server.port}" in str(missing.value)

        # An outage in the middle of use: the message names the server, not the password.
        connection = RedisCoordination(
            f"redis://default:{password}@127.0.0.1:{server.port}/0?retry=0.2"
        )
        server.stop()
        with pytest.raises(CoordinationError) as down:
            connection.get_record("k")
        assert password not in str(down.value)
        assert password not in repr(connection)
        connection.close()


def test_a_percent_encoded_password_is_decoded() -> None:
    with running_server({"--requirepass": "p@ss:w/rd"}) as server:
        connection = RedisCoordination(f"redis://:p%40ss%3Aw%2Frd@127.0.0.1:{server.port}/0")
        try:
            connection.put_record("k", {"v": 1})
            assert "p%40ss" not in repr(connection)
            assert "p@ss" not in repr(connection)
        finally:
            connection.close()


# -- outages -------------------------------------------------------------------------------
def test_no_server_fails_at_once_naming_host_and_port() -> None:
    port = free_port()
    started = time.monotonic()
    with pytest.raises(CoordinationError, match=f"127.0.0.1:{port}"):
        open_coordination(f"redis://:secret@127.0.0.1:{port}/0")
    assert time.monotonic() - started < 3


def test_a_server_that_never_answers_fails_within_3_seconds() -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(CoordinationError, match=f"127.0.0.1:{port}"):
            RedisCoordination(f"redis://127.0.0.1:{port}/0")
        assert time.monotonic() - started < 3


def test_tls_to_a_plain_server_fails_naming_host_and_port(
    redis_server: RedisServer,  # noqa: F811
) -> None:
    started = time.monotonic()
    with pytest.raises(CoordinationError, match=f"127.0.0.1:{redis_server.port}"):
        RedisCoordination(f"rediss://127.0.0.1:{redis_server.port}/0?ssl_cert_reqs=none")
    assert time.monotonic() - started < 3


def test_a_call_rides_out_a_server_restart(
    fresh_redis_server: RedisServer,  # noqa: F811
) -> None:
    server = fresh_redis_server
    connection = RedisCoordination(f"{server.url}?prefix=restart&retry=30")
    connection.enqueue("q", _items(0, 10))
    connection.append("s", [{"n": 0}])
    connection.put_record("r", {"v": 1})

    server.stop()
    restart = threading.Timer(1.0, server.start)
    restart.start()
    try:
        started = time.monotonic()
        claimed = connection.claim("q", "c1", 4)
        waited = time.monotonic() - started
    finally:
        restart.join()

    assert waited > 0.5, "the claim should have waited for the server"
    assert claimed == _items(0, 4)
    # Nothing written before the restart was lost (append-only file, fsync always).
    assert connection.get_record("r") == {"v": 1}
    assert connection.read("s")[0] == [{"n": 0}]
    assert connection.claim("q", "c1", 100) == _items(4, 6)
    connection.close()


def test_a_write_during_an_outage_lands_once(
    fresh_redis_server: RedisServer,  # noqa: F811
) -> None:
    server = fresh_redis_server
    connection = RedisCoordination(f"{server.url}?prefix=outage&retry=30")
    server.stop()
    restart = threading.Timer(1.0, server.start)
    restart.start()
    try:
        connection.commit("s", [{"n": 0}], {"q": _items(0, 3)})
    finally:
        restart.join()

    assert connection.read("s")[0] == [{"n": 0}]
    assert connection.claim("q", "c1", 100) == _items(0, 3)
    connection.close()


def test_with_retry_1_a_call_gives_up_after_about_1_second(
    fresh_redis_server: RedisServer,  # noqa: F811
) -> None:
    server = fresh_redis_server
    connection = RedisCoordination(f"{server.url}?prefix=down&retry=1")
    server.stop()

    started = time.monotonic()
    with pytest.raises(CoordinationError, match=f"127.0.0.1:{server.port}"):
        connection.claim("q", "c1", 10)
    elapsed = time.monotonic() - started

    assert 0.9 <= elapsed < 2.5
    connection.close()


def test_a_server_loading_its_data_is_waited_for(
    coordination: RedisCoordination, monkeypatch: pytest.MonkeyPatch
) -> None:
    coordination.put_record("r", {"v": 1})
    failed = _lose_replies(monkeypatch, coordination, redis.BusyLoadingError, 3, after=False)

    assert coordination.get_record("r") == {"v": 1}
    assert failed == ["GET"] * 3


def test_a_refusal_is_not_retried(
    coordination: RedisCoordination, monkeypatch: pytest.MonkeyPatch
) -> None:
    _lose_replies(monkeypatch, coordination, redis.AuthenticationError, 100, after=False)
    started = time.monotonic()
    with pytest.raises(CoordinationError, match="refused"):
        coordination.get_record("r")
    assert time.monotonic() - started < 0.5


# -- atomic commit ---------------------------------------------------------------------------
def test_commit_records_events_and_items_together(coordination: RedisCoordination) -> None:
    coordination.commit("svc", [{"ev": "unit", "id": "u00000"}], {"p1": _items(0, 2), "p2": []})
    coordination.commit("svc", [], {"p2": _items(2, 1)})

    assert coordination.read("svc")[0] == [{"ev": "unit", "id": "u00000"}]
    assert coordination.claim("p1", "c", 10) == _items(0, 2)
    assert coordination.claim("p2", "c", 10) == _items(2, 1)


def test_a_commit_that_fails_records_nothing(
    coordination: RedisCoordination,
    redis_server: RedisServer,  # noqa: F811
    prefix: str,
) -> None:
    # A key of the wrong type stands where the second queue would go: the script stops
    # before its first write, so neither the events nor the first queue's items land.
    _raw(redis_server).set(f"{prefix}:q:p2", "not a list")

    with pytest.raises(CoordinationError, match="WRONGTYPE"):
        coordination.commit("svc", [{"n": 0}], {"p1": _items(0, 2), "p2": _items(2, 2)})

    assert coordination.read("svc")[0] == []
    assert coordination.claim("p1", "c", 10) == []


def test_readers_never_see_a_commit_half_done(connect_two: tuple[Any, Any]) -> None:
    writer, reader = connect_two
    done = threading.Event()

    def commit() -> None:
        for b in range(200):
            writer.commit("svc", [{"b": b}], {"q": _items(5 * b, 5)})
        done.set()

    thread = threading.Thread(target=commit)
    thread.start()
    cursor, seen = None, 0
    try:
        while True:
            finished = done.is_set()
            events, cursor = reader.read("svc", cursor)
            seen += len(events)
            queued = reader._client.llen(f"{reader.prefix}:q:q")
            assert queued >= 5 * seen, "events read whose items are not queued"
            if finished:
                break
    finally:
        thread.join()
    assert seen == 200


@pytest.fixture
def connect_two(url: str) -> Iterator[tuple[RedisCoordination, RedisCoordination]]:
    first, second = RedisCoordination(url), RedisCoordination(url)
    yield first, second
    first.close()
    second.close()


# -- retries after a lost reply ------------------------------------------------------------
def test_a_retried_enqueue_adds_items_once(
    coordination: RedisCoordination, monkeypatch: pytest.MonkeyPatch
) -> None:
    failed = _lose_replies(monkeypatch, coordination, redis.ConnectionError)

    coordination.enqueue("q", _items(0, 3))

    assert failed == ["EVALSHA"]
    assert coordination.claim("q", "c", 10) == _items(0, 3)


def test_a_retried_commit_records_once(
    coordination: RedisCoordination, monkeypatch: pytest.MonkeyPatch
) -> None:
    _lose_replies(monkeypatch, coordination, redis.TimeoutError)

    coordination.commit("svc", [{"n": 0}], {"q": _items(0, 3)})

    assert coordination.read("svc")[0] == [{"n": 0}]
    assert coordination.claim("q", "c", 10) == _items(0, 3)


def test_a_retried_append_records_once(
    coordination: RedisCoordination, monkeypatch: pytest.MonkeyPatch
) -> None:
    _lose_replies(monkeypatch, coordination, redis.ConnectionError)

    coordination.append("svc", [{"n": 0}, {"n": 1}])

    assert coordination.read("svc")[0] == [{"n": 0}, {"n": 1}]


def test_a_retried_claim_returns_what_it_took(
    coordination: RedisCoordination,
    monkeypatch: pytest.MonkeyPatch,
    redis_server: RedisServer,  # noqa: F811
    prefix: str,
) -> None:
    coordination.enqueue("q", _items(0, 10))
    _lose_replies(monkeypatch, coordination, redis.ConnectionError)

    assert coordination.claim("q", "c1", 4) == _items(0, 4)

    assert coordination.claim("q", "c1", 100) == _items(4, 6)
    # The claimer's list holds each item once: none was stranded by the lost reply.
    assert _raw(redis_server).llen(f"{prefix}:claimed:q:c1") == 10


def test_a_retried_withdraw_returns_what_it_removed(
    coordination: RedisCoordination, monkeypatch: pytest.MonkeyPatch
) -> None:
    coordination.enqueue("q", _items(0, 5))
    _lose_replies(monkeypatch, coordination, redis.ConnectionError)

    assert coordination.withdraw("q", ["u00001", "u00003"]) == ["u00001", "u00003"]

    assert coordination.claim("q", "c", 10) == [_items(0, 5)[i] for i in (0, 2, 4)]


def test_a_retried_create_record_answers_as_its_first_attempt(
    coordination: RedisCoordination, monkeypatch: pytest.MonkeyPatch
) -> None:
    _lose_replies(monkeypatch, coordination, redis.ConnectionError)

    assert coordination.create_record("lease/a", {"owner": "me"}) is True

    assert coordination.get_record("lease/a") == {"owner": "me"}
    assert coordination.list_records("lease") == ["lease/a"]


def test_a_retried_allocate_reserves_once(
    coordination: RedisCoordination, monkeypatch: pytest.MonkeyPatch
) -> None:
    _lose_replies(monkeypatch, coordination, redis.TimeoutError)

    assert coordination.allocate("ids", 5) == 0

    assert coordination.allocate("ids", 1) == 5


def test_a_retried_claim_returns_its_items_after_acks_shortened_the_list(
    coordination: RedisCoordination,
    monkeypatch: pytest.MonkeyPatch,
    redis_server: RedisServer,  # noqa: F811
    prefix: str,
) -> None:
    coordination.enqueue("q", _items(0, 10))
    assert coordination.claim("q", "c1", 3) == _items(0, 3)
    coordination.ack("q", "c1", ["u00000", "u00001"])
    _lose_replies(monkeypatch, coordination, redis.ConnectionError)

    assert coordination.claim("q", "c1", 4) == _items(3, 4)

    monkeypatch.undo()
    coordination.ack("q", "c1", [item["id"] for item in _items(2, 5)])
    assert _raw(redis_server).exists(f"{prefix}:claimed:q:c1") == 0


def test_an_id_enqueued_again_by_a_later_call_is_queued_again(
    coordination: RedisCoordination,
) -> None:
    # As an agent that stops returns the units it claimed but did not start.
    coordination.enqueue("q", _items(0, 2))
    claimed = coordination.claim("q", "agent", 2)
    coordination.enqueue("q", claimed)

    assert coordination.claim("q", "another", 10) == _items(0, 2)


# -- withdraw ------------------------------------------------------------------------------
def test_withdraw_of_many_items_keeps_the_rest_in_order(coordination: RedisCoordination) -> None:
    coordination.enqueue("q", _items(0, 3000))
    wanted = _ids(_items(0, 3000))[::3]

    assert coordination.withdraw("q", wanted) == wanted

    assert coordination.claim("q", "c", 5000) == [
        item for i, item in enumerate(_items(0, 3000)) if i % 3
    ]


def test_withdraw_finds_ids_with_any_characters(coordination: RedisCoordination) -> None:
    odd = ['a"b', "a\\b", "ü", "a,b", "a", "a}"]
    coordination.enqueue("q", [{"id": ident, "n": n} for n, ident in enumerate(odd)])

    assert coordination.withdraw("q", ['a"b', "ü", "a}", "a\\"]) == ['a"b', "ü", "a}"]

    assert _ids(coordination.claim("q", "c", 10)) == ["a\\b", "a,b", "a"]


# -- prefixes ------------------------------------------------------------------------------
def test_two_prefixes_on_one_server_are_independent(
    redis_server: RedisServer,  # noqa: F811
) -> None:
    tag = uuid.uuid4().hex[:8]
    one = RedisCoordination(f"{redis_server.url}?prefix=one-{tag}")
    two = RedisCoordination(f"{redis_server.url}?prefix=two-{tag}")
    try:
        one.put_record("service/a", {"who": "one"})
        one.append("svc", [{"who": "one"}])
        one.enqueue("q", _items(0, 3, "one"))
        two.put_record("service/b", {"who": "two"})
        two.enqueue("q", _items(0, 2, "two"))

        assert one.list_records("service") == ["service/a"]
        assert two.list_records("service") == ["service/b"]
        assert two.get_record("service/a") is None
        assert two.read("svc")[0] == []
        assert two.withdraw("q", ["one00000"]) == []
        assert two.claim("q", "c", 10) == _items(0, 2, "two")
        assert one.claim("q", "c", 10) == _items(0, 3, "one")
    finally:
        one.close()
        two.close()


def test_an_agent_started_while_redis_restarts_waits_for_it(
    fresh_redis_server: RedisServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Redis refuses connections just as a pilot's agent starts: the agent tries again
    until it answers and runs the units.  (Before: it exited at once, the pilot failed
    and its units with it; found by the chaos campaign, seed 67.)"""
    import os
    import signal

    from troy import PilotJobService, State, WorkUnitService

    server = fresh_redis_server
    url = f"{server.url}?prefix=agentstart"
    with PilotJobService(coordination=url) as pilots, WorkUnitService(coordination=url) as units:
        pilot = pilots.create(
            "fork://localhost", {"number_of_processes": 2, "working_directory": str(tmp_path)}
        )
        agent = int(pilot.handle["pid"])
        os.kill(agent, signal.SIGSTOP)  # still importing: it has not connected yet
        units.add(pilots)
        submitted = units.submit([{"executable": "/bin/true"}] * 3)
        server.stop()
        try:
            os.kill(agent, signal.SIGCONT)
            time.sleep(1.5)  # it is refused, and must not give up
        finally:
            server.start()
        units.wait(timeout=60)
        assert [u.state for u in submitted] == [State.Done] * 3
        assert pilot.state == State.Running, pilot.state_detail
        pilots.cancel()
