"""The redis coordination plugin over TLS as an ACL user, against a live TLS-only redis-server.

The server (tests/redis_fixtures.py, `redis_tls_server`) has certificates made with openssl
for this session, wants a client certificate, and knows no ``default`` user: only
``app``, whose keys must start with ``tls-``.  Here: where the password may come from,
that an agent gets it in its environment and not on its command line, a whole run, and
a clear CoordinationError (never the password) for each way a connection is refused.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest
from redis_fixtures import (  # noqa: F401 - fixtures
    TLS_PREFIX,
    TLS_USER,
    RedisServer,
    TlsRedisServer,
    redis_server,
    redis_tls_server,
)

from troy.model import secrets
from troy.model.errors import CoordinationError
from troy.plugins.coordination.redis import RedisCoordination
from troy.plugins.coordination.redis_connect import PASSWORD_ENV

pytestmark = pytest.mark.redis

pytest.importorskip("redis")


@pytest.fixture(autouse=True)
def _no_password_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)


@pytest.fixture
def prefix() -> str:
    return f"{TLS_PREFIX}{uuid.uuid4().hex[:12]}"


def _works(url: str) -> RedisCoordination:
    connection = RedisCoordination(url)
    connection.put_record("k", {"v": 1})
    assert connection.get_record("k") == {"v": 1}
    return connection


@pytest.fixture
def password_file(redis_tls_server: TlsRedisServer, tmp_path: Path) -> Path:  # noqa: F811
    path = tmp_path / "redis-password"
    path.write_text(redis_tls_server.password + "\n")
    path.chmod(0o600)
    return path


# -- where the password comes from ---------------------------------------------------------
def test_the_password_in_the_url(redis_tls_server: TlsRedisServer, prefix: str) -> None:  # noqa: F811
    server = redis_tls_server
    connection = _works(f"{server.url}&prefix={prefix}")
    try:
        public = connection.public_url()
        assert server.password not in public
        assert public.startswith(f"rediss://{TLS_USER}@{server.address}/0?")
        assert connection.agent_secrets() == {"password": server.password}
        assert secrets.join_url(public, connection.agent_secrets()) == connection.url
        assert server.password not in repr(connection)
    finally:
        connection.close()


def test_the_password_from_a_private_file(
    redis_tls_server: TlsRedisServer,  # noqa: F811
    password_file: Path,
    prefix: str,
) -> None:
    server = redis_tls_server
    url = (
        f"rediss://{TLS_USER}@{server.address}/0?{server.tls_query()}"
        f"&password_file={password_file}&prefix={prefix}"
    )
    connection = _works(url)
    try:
        # An agent elsewhere may not have the file: it gets the password itself.
        assert "password_file" not in connection.public_url()
        assert connection.agent_secrets() == {"password": server.password}
        agent = _works(secrets.join_url(connection.public_url(), connection.agent_secrets()))
        assert agent.get_record("k") == {"v": 1}
        agent.close()
    finally:
        connection.close()


def test_a_password_file_others_may_read_is_refused(
    redis_tls_server: TlsRedisServer,  # noqa: F811
    password_file: Path,
) -> None:
    password_file.chmod(0o640)
    url = f"rediss://{TLS_USER}@{redis_tls_server.address}/0?password_file={password_file}"
    with pytest.raises(CoordinationError, match=r"password_file.*chmod 600") as refused:
        RedisCoordination(url)
    assert redis_tls_server.password not in str(refused.value)


def test_a_password_in_the_url_and_in_a_file_is_refused(
    redis_tls_server: TlsRedisServer,  # noqa: F811
    password_file: Path,
) -> None:
    with pytest.raises(CoordinationError, match="not both") as refused:
        RedisCoordination(f"{redis_tls_server.url}&password_file={password_file}")
    assert redis_tls_server.password not in str(refused.value)


def test_the_password_from_the_environment(
    redis_tls_server: TlsRedisServer,  # noqa: F811
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = redis_tls_server
    monkeypatch.setenv(PASSWORD_ENV, server.password)
    connection = _works(
        f"rediss://{TLS_USER}@{server.address}/0?{server.tls_query()}&prefix={prefix}"
    )
    try:
        assert connection.agent_secrets() == {"password": server.password}
    finally:
        connection.close()


@pytest.mark.parametrize("option", ["ssl_ca_certs", "ssl_certfile", "ssl_keyfile"])
def test_a_tls_file_that_is_not_there_is_named(
    redis_tls_server: TlsRedisServer,  # noqa: F811
    option: str,
    tmp_path: Path,
) -> None:
    url = redis_tls_server.url.replace(f"{option}=", f"{option}={tmp_path}/missing-", 1)
    with pytest.raises(CoordinationError, match=f"{option}={tmp_path}/missing-") as refused:
        RedisCoordination(url)
    assert redis_tls_server.password not in str(refused.value)


# -- refusals: each a CoordinationError that names the server and the URL, not the password
def _refused(url: str, password: str) -> str:
    started = time.monotonic()
    with pytest.raises(CoordinationError) as refused:
        RedisCoordination(url)
    assert time.monotonic() - started < 5, "a refusal must not be retried"
    message = str(refused.value)
    assert password not in message
    assert secrets.redact_url(url) in message
    assert "Traceback" not in message
    return message


def test_a_wrong_password_is_refused(redis_tls_server: TlsRedisServer) -> None:  # noqa: F811
    server = redis_tls_server
    wrong = "Wr0ng-tls-password"
    url = server.url.replace(server.password, wrong)
    message = _refused(url, wrong)
    assert f"Redis at {server.address} refused the credentials" in message
    assert "wrong user name or password" in message


def test_no_password_is_refused_saying_how_to_give_one(
    redis_tls_server: TlsRedisServer,  # noqa: F811
) -> None:
    server = redis_tls_server
    message = _refused(f"rediss://{server.address}/0?{server.tls_query()}", server.password)
    assert "needs a user and password" in message
    assert PASSWORD_ENV in message


def test_plain_redis_to_the_tls_port_says_use_rediss(
    redis_tls_server: TlsRedisServer,  # noqa: F811
) -> None:
    server = redis_tls_server
    url = f"redis://{TLS_USER}:{server.password}@{server.address}/0"
    message = _refused(url, server.password)
    assert f"cannot connect to Redis at {server.address}" in message
    assert "rediss://" in message


def test_tls_to_a_plain_server_says_it_may_be_plain(
    redis_server: RedisServer,  # noqa: F811
    redis_tls_server: TlsRedisServer,  # noqa: F811
) -> None:
    password = redis_tls_server.password
    url = f"rediss://{TLS_USER}:{password}@127.0.0.1:{redis_server.port}/0?retry=1"
    message = _refused(url, password)
    assert f"127.0.0.1:{redis_server.port}" in message
    assert "plain server (redis://)" in message


def test_a_server_certificate_from_another_ca_is_refused(
    redis_tls_server: TlsRedisServer,  # noqa: F811
) -> None:
    server = redis_tls_server
    url = server.url.replace(str(server.files.ca), str(server.files.other_ca))
    message = _refused(url, server.password)
    assert "certificate is not trusted" in message
    assert "CERTIFICATE_VERIFY_FAILED" in message


def test_no_client_certificate_is_refused_saying_one_may_be_needed(
    redis_tls_server: TlsRedisServer,  # noqa: F811
) -> None:
    server = redis_tls_server
    url = f"rediss://{TLS_USER}:{server.password}@{server.address}/0?"
    message = _refused(url + server.tls_query(client=False), server.password)
    assert f"cannot connect to Redis at {server.address}" in message
    assert "client certificate" in message


def test_a_client_certificate_from_another_ca_is_refused(
    redis_tls_server: TlsRedisServer,  # noqa: F811
) -> None:
    server = redis_tls_server
    files = server.files
    url = server.url.replace(str(files.client_cert), str(files.other_client_cert)).replace(
        str(files.client_key), str(files.other_client_key)
    )
    message = _refused(url, server.password)
    assert "client certificate" in message or "client's certificate" in message


def test_a_key_outside_the_users_pattern_is_refused(
    redis_tls_server: TlsRedisServer,  # noqa: F811
) -> None:
    connection = RedisCoordination(f"{redis_tls_server.url}&prefix=not-tls")
    try:
        with pytest.raises(CoordinationError, match="no permissions") as refused:
            connection.put_record("k", {"v": 1})
        assert redis_tls_server.password not in str(refused.value)
    finally:
        connection.close()


# -- a whole run ---------------------------------------------------------------------------
@pytest.mark.parametrize("password_from", ["url", "file", "environment"])
def test_a_run_over_tls_as_an_acl_user(
    redis_tls_server: TlsRedisServer,  # noqa: F811
    prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    password_file: Path,
    password_from: str,
) -> None:
    """Units run on a local pilot whose agent connects over TLS as ``app``; the agent gets
    the password in its environment (not on its command line, which ``ps`` shows), and
    takes it out before any unit starts."""
    from troy import PilotJobService, State, WorkUnitService

    server = redis_tls_server
    url = f"rediss://{TLS_USER}@{server.address}/0?{server.tls_query()}&prefix={prefix}"
    if password_from == "url":
        url = f"{server.url}&prefix={prefix}"
    elif password_from == "file":
        # The agent is handed the password: it never reads the file (nor needs it).
        url += f"&password_file={password_file}"
    else:
        monkeypatch.setenv(PASSWORD_ENV, server.password)
    with PilotJobService(coordination=url) as pilots, WorkUnitService(coordination=url) as units:
        password_file.unlink()  # as on an agent's host that lacks it
        pilot = pilots.create(
            "fork://localhost", {"number_of_processes": 2, "working_directory": str(tmp_path)}
        )
        units.add(pilots)
        submitted = units.submit(
            [{"executable": "/usr/bin/env", "output": "env.txt"} for _ in range(4)]
        )
        units.wait(timeout=60)
        assert [u.state for u in submitted] == [State.Done] * 4, [u.state_detail for u in submitted]
        agent = int(pilot.handle["pid"])
        command_line = Path(f"/proc/{agent}/cmdline").read_bytes().decode(errors="replace")
        assert "troy.agent" in command_line
        assert f"rediss://{TLS_USER}@{server.address}/0" in command_line
        assert server.password not in command_line
        for unit in submitted:
            assert unit.sandbox is not None
            environment = Path(unit.sandbox, "env.txt").read_text()
            assert server.password not in environment
            assert secrets.AGENT_SECRETS_ENV not in environment
            assert PASSWORD_ENV not in environment
        pilots.cancel()
    assert os.environ.get(PASSWORD_ENV) == (
        server.password if password_from == "environment" else None
    )
