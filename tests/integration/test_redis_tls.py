"""The redis coordination plugin over TLS as an ACL user, against a live TLS-only redis-server.

The server (tests/redis_fixtures.py, `redis_tls_server`) has certificates made with openssl
for this session, wants a client certificate, and knows no ``default`` user: only
``app``, whose keys must start with ``tls-``.  Here: where the password may come from,
that an agent gets it in its environment and not on its command line, a whole run, and
a clear CoordinationError (never the password) for each way a connection is refused.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from redis_fixtures import (  # noqa: F401 - fixtures
    TLS_PREFIX,
    TLS_USER,
    RedisServer,
    TlsRedisServer,
    redis_server,
    redis_tls_server,
)

from troy.agent.agent import connect as agent_connect
from troy.model import secrets
from troy.model.errors import CoordinationError, CoordinationRefused
from troy.plugins.coordination.redis import RedisCoordination
from troy.plugins.coordination.redis_connect import PASSWORD_ENV
from troy.plugins.registry import open_coordination

pytestmark = pytest.mark.redis

pytest.importorskip("redis")


@pytest.fixture(autouse=True)
def _no_password_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)


@pytest.fixture
def prefix() -> str:
    return f"{TLS_PREFIX}{uuid.uuid4().hex[:12]}"


@contextlib.contextmanager
def _works(url: str) -> Iterator[RedisCoordination]:
    """A connection to ``url`` that has written and read a record; closed at the end."""
    with contextlib.closing(RedisCoordination(url)) as connection:
        connection.put_record("k", {"v": 1})
        assert connection.get_record("k") == {"v": 1}
        yield connection


@pytest.fixture
def password_file(redis_tls_server: TlsRedisServer, tmp_path: Path) -> Path:  # noqa: F811
    path = tmp_path / "redis-password"
    path.write_text(redis_tls_server.password + "\n")
    path.chmod(0o600)
    return path


# -- where the password comes from ---------------------------------------------------------
def test_the_password_in_the_url(redis_tls_server: TlsRedisServer, prefix: str) -> None:  # noqa: F811
    server = redis_tls_server
    with _works(f"{server.url}&prefix={prefix}") as connection:
        public = connection.public_url()
        assert server.password not in public
        assert public.startswith(f"rediss://{TLS_USER}@{server.address}/0?")
        assert connection.agent_secrets() == {"password": server.password}
        assert secrets.join_url(public, connection.agent_secrets()) == connection.url
        assert server.password not in repr(connection)


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
    with _works(url) as connection:
        # An agent elsewhere may not have the file: it gets the password itself.
        assert "password_file" not in connection.public_url()
        assert connection.agent_secrets() == {"password": server.password}
        with _works(secrets.join_url(connection.public_url(), connection.agent_secrets())):
            pass


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
    url = f"rediss://{TLS_USER}@{server.address}/0?{server.tls_query()}&prefix={prefix}"
    with _works(url) as connection:
        assert connection.agent_secrets() == {"password": server.password}


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
def _with_other_client_certificate(server: TlsRedisServer) -> str:
    files = server.files
    return server.url.replace(str(files.client_cert), str(files.other_client_cert)).replace(
        str(files.client_key), str(files.other_client_key)
    )


#: case -> (the URL it opens, given the TLS and the plain server; what the message says).
REFUSALS: dict[str, tuple[Callable[[TlsRedisServer, RedisServer], str], tuple[str, ...]]] = {
    "wrong password": (
        lambda tls, _: tls.url.replace(tls.password, WRONG),
        ("refused the credentials", "wrong user name or password"),
    ),
    "no password": (
        lambda tls, _: f"rediss://{tls.address}/0?{tls.tls_query()}",
        ("refused the credentials", "needs a user and password", PASSWORD_ENV),
    ),
    "plain redis:// to the TLS port": (
        lambda tls, _: f"redis://{TLS_USER}:{tls.password}@{tls.address}/0",
        ("cannot connect to Redis", "use rediss://"),
    ),
    "rediss:// to a plain server": (
        lambda tls, plain: f"rediss://{TLS_USER}:{tls.password}@127.0.0.1:{plain.port}/0",
        ("cannot connect to Redis", "plain server (redis://)"),
    ),
    "a server certificate from another CA": (
        lambda tls, _: tls.url.replace(str(tls.files.ca), str(tls.files.other_ca)),
        ("certificate is not trusted", "CERTIFICATE_VERIFY_FAILED"),
    ),
    "no client certificate": (
        lambda tls, _: (
            f"rediss://{TLS_USER}:{tls.password}@{tls.address}/0?{tls.tls_query(client=False)}"
        ),
        ("cannot connect to Redis", "client certificate", "ssl_certfile="),
    ),
    "a client certificate from another CA": (
        lambda tls, _: _with_other_client_certificate(tls),
        # Refused during the handshake (unknown ca) or right after it (EOF): either way,
        # the message points at the client certificate.
        ("cannot connect to Redis", "client certificate", "ssl_certfile="),
    ),
}
WRONG = "Wr0ng-tls-password"


@pytest.mark.parametrize("case", REFUSALS)
def test_a_refusal_says_what_is_wrong_and_never_the_password(
    redis_tls_server: TlsRedisServer,  # noqa: F811
    redis_server: RedisServer,  # noqa: F811
    case: str,
) -> None:
    """Each is a CoordinationError at once (not retried) naming the server and the URL
    without its password, and saying what is most likely wrong."""
    make_url, says = REFUSALS[case]
    url = make_url(redis_tls_server, redis_server)
    started = time.monotonic()
    with pytest.raises(CoordinationError) as refused:
        RedisCoordination(url)
    assert time.monotonic() - started < 5, "a refusal must not be retried"
    message = str(refused.value)
    assert redis_tls_server.password not in message
    assert WRONG not in message
    assert secrets.redact_url(url) in message
    assert urlsplit(url).netloc.rpartition("@")[2] in message
    for words in says:
        assert words in message


def test_a_key_outside_the_users_pattern_is_refused(
    redis_tls_server: TlsRedisServer,  # noqa: F811
) -> None:
    url = f"{redis_tls_server.url}&prefix=not-tls"
    with (
        contextlib.closing(RedisCoordination(url)) as connection,
        pytest.raises(CoordinationError, match="no permissions") as refused,
    ):
        connection.put_record("k", {"v": 1})
    assert redis_tls_server.password not in str(refused.value)


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


def test_an_agent_gives_up_at_once_on_a_wrong_password(
    redis_tls_server: TlsRedisServer,  # noqa: F811
) -> None:
    """A refused agent fails its pilot now, not after the outage window (60 s)."""
    url = redis_tls_server.url.replace(redis_tls_server.password, WRONG)
    started = time.monotonic()
    with pytest.raises(CoordinationRefused, match="wrong user name or password"):
        agent_connect(url, open_coordination)
    assert time.monotonic() - started < 10
