"""CURVE on the zmq coordination: only holders of the broker's client key are served.

The broker runs in another process (zmq_fixtures.start_host), so that every
connection of a test goes over TCP, as an agent's does.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote_plus, urlencode

import pytest
import zmq_fixtures
from zmq_fixtures import Start, free_port

import troy
from troy import State
from troy.agent.agent import Agent
from troy.agent.staging import Stager
from troy.model import secrets
from troy.model.errors import BadDescription, CoordinationError
from troy.plugins import data_records
from troy.plugins.coordination import zmq as plugin
from troy.plugins.coordination import zmq_broker
from troy.plugins.coordination import zmq_curve as curve
from troy.plugins.registry import open_coordination
from troy.testing.backends import wait_until

zmq = pytest.importorskip("zmq")
start_host = zmq_fixtures.start_host

#: How long a refused peer waits for an answer that never comes.
REFUSED_WAIT = 1.5


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"tcp://127.0.0.1:{free_port()}?journal={quote(str(tmp_path / 'journal'))}&retry=1"


@pytest.fixture
def keys(url: str, start_host: Start) -> curve.BrokerKeys:
    """The keys of the broker of ``url``, hosted by another process."""
    _, role, _ = start_host(url)
    assert role == "hosting"
    return curve.read_keys(plugin.parse_url(url).key_file)


def with_keys(url: str, server_public: bytes, client_secret: bytes) -> str:
    return f"{url}&" + urlencode(
        {curve.SERVER_KEY: server_public.decode(), curve.SECRET_KEY: client_secret.decode()}
    )


def shows(text: str | bytes, secret: bytes) -> bool:
    """Whether ``text`` holds ``secret``, as it is or encoded in a URL."""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return secret.decode() in text or secret.decode() in unquote_plus(text)


def _items(count: int) -> list[dict[str, Any]]:
    return [{"id": f"u{i}"} for i in range(count)]


# -- the keys ---------------------------------------------------------------------------


def test_the_broker_makes_its_keys_once_in_a_file_only_its_user_may_read(
    url: str, start_host: Start
) -> None:
    path = plugin.parse_url(url).key_file
    old = os.umask(0)  # the host process inherits it
    try:
        host, role, _ = start_host(url)
    finally:
        os.umask(old)
    assert role == "hosting"
    made = curve.read_keys(path)
    host.send_signal(signal.SIGKILL)
    host.wait()

    _, role, _ = start_host(url)

    assert role == "hosting"
    status = os.stat(path)
    assert stat.S_IMODE(status.st_mode) == 0o600
    assert status.st_uid == os.getuid()
    assert curve.read_keys(path) == made, "a successor broker made new keys: agents are cut off"
    assert [name for name in os.listdir(os.path.dirname(path)) if "curve" in name] == [
        curve.KEY_FILE
    ], "a temporary key file was left behind"


def test_a_key_file_other_users_may_read_is_refused(
    url: str, keys: curve.BrokerKeys, tmp_path: Path
) -> None:
    copy = tmp_path / "copied-keys"
    shutil.copy(keys.path, copy)
    copy.chmod(0o644)

    with pytest.raises(CoordinationError, match=r"copied-keys.*chmod 600"):
        open_coordination(f"{url}&curve_keys={quote(str(copy))}")


# -- who is served ----------------------------------------------------------------------


def _peer(kind: int, keys: tuple[bytes, bytes, bytes] | None, endpoint: str) -> Any:
    peer = zmq.Context.instance().socket(kind)
    peer.linger = 0
    peer.sndtimeo = int(REFUSED_WAIT * 1000)  # a refused peer's send may block too
    if keys is not None:
        peer.curve_serverkey, peer.curve_publickey, peer.curve_secretkey = keys
    peer.connect(endpoint)
    return peer


def _answer(peer: Any, frames: list[bytes]) -> list[bytes] | None:
    try:
        peer.send_multipart(frames)
    except zmq.Again:
        return None
    return peer.recv_multipart() if peer.poll(int(REFUSED_WAIT * 1000)) else None


@pytest.mark.parametrize(
    "attacker",
    ["REQ without CURVE", "DEALER without CURVE", "unknown key pair", "the client's public key"],
)
def test_a_peer_without_the_client_key_gets_no_answer_and_changes_nothing(
    url: str, keys: curve.BrokerKeys, attacker: str
) -> None:
    owner = open_coordination(url)
    owner.put_record("t/r", {"v": 1})
    owner.enqueue("t/q", _items(3))
    before = (owner.list_records("t"), owner.read("t/s")[0])
    stranger_public, stranger_secret = zmq.curve_keypair()
    kind, peer_keys = {
        "REQ without CURVE": (zmq.REQ, None),
        "DEALER without CURVE": (zmq.DEALER, None),
        "unknown key pair": (zmq.DEALER, (keys.server_public, stranger_public, stranger_secret)),
        # Claiming the allowed public key without its secret fails the handshake's proof.
        "the client's public key": (
            zmq.DEALER,
            (keys.server_public, keys.client_public, stranger_secret),
        ),
    }[attacker]
    requests = [
        ("claim", ["t/q", "evil", 10]),
        ("get_record", ["t/r"]),
        ("put_record", ["t/evil", {"v": 2}]),
        ("enqueue", ["t/q", [{"id": "evil"}]]),
        ("append", ["t/s", [{"evil": True}]]),
    ]

    answers = []
    for number, (op, args) in enumerate(requests, 1):
        peer = _peer(kind, peer_keys, plugin.parse_url(url).endpoint)
        try:
            frames = [zmq_broker.PROTOCOL, b"host-1-evil", str(number).encode(), op.encode()]
            answers.append(_answer(peer, [*frames, zmq_broker.encode(args)]))
        finally:
            peer.close(linger=0)

    assert answers == [None] * len(requests)
    assert (owner.list_records("t"), owner.read("t/s")[0]) == before
    assert owner.claim("t/q", "c", 100) == _items(3), "the broker ran a stranger's request"


def test_a_client_with_the_keys_in_its_url_is_served(url: str, keys: curve.BrokerKeys) -> None:
    owner = open_coordination(url)  # same user, same host: keys from the key file
    owner.put_record("t/r", {"v": 1})

    remote = open_coordination(with_keys(url, keys.server_public, keys.client_secret))

    assert remote.get_record("t/r") == {"v": 1}
    assert remote.keys is not None and remote.keys.client_public == keys.client_public


def test_an_agent_gets_the_keys_as_secrets_and_a_url_without_them(
    url: str, keys: curve.BrokerKeys
) -> None:
    manager = open_coordination(url, serve=True)  # a client: the broker is elsewhere

    hidden = manager.agent_secrets()
    public = manager.public_url()
    agent = open_coordination(secrets.join_url(public, hidden))

    assert hidden == {
        curve.SERVER_KEY: keys.server_public.decode(),
        curve.SECRET_KEY: keys.client_secret.decode(),
    }
    assert not shows(public, keys.client_secret)
    assert not shows(str(hidden), keys.server_secret)
    agent.put_record("t/from-agent", {"v": 1})
    assert manager.get_record("t/from-agent") == {"v": 1}
    assert not shows(agent.public_url(), keys.client_secret)


def test_an_agent_without_its_pilot_record_names_its_coordination_without_keys(
    url: str, keys: curve.BrokerKeys
) -> None:
    agent_url = with_keys(url, keys.server_public, keys.client_secret)

    with pytest.raises(RuntimeError, match="no pilot record for pilot-nosuch") as raised:
        Agent(open_coordination(agent_url), "pilot-nosuch")

    assert not shows(str(raised.value), keys.client_secret)


def test_an_agent_with_its_keys_knows_data_unit_urls_of_its_own_coordination(
    url: str, keys: curve.BrokerKeys
) -> None:
    manager = open_coordination(url, serve=True)
    agent_url = secrets.join_url(manager.public_url(), manager.agent_secrets())
    data_records.remember_coordination_url(agent_url)  # as the agent's main() does
    agent = open_coordination(agent_url)
    # Data unit URLs carry the manager's public URL: no keys in it.
    data_unit = data_records.data_unit_url(manager.public_url(), "du-1")

    found = Stager(agent, None, None)._coordination_for(data_unit)
    other = data_records.connect(data_records.split_data_unit_url(data_unit)[0] or "")

    assert found == (agent, "du-1"), "the agent would open it again, without its keys"
    assert other.keys is not None and other.keys.source == "the URL's curve_secretkey="


# -- wrong keys: a clear error, in time -------------------------------------------------


@pytest.mark.parametrize(
    ("wrong", "reason"),
    [
        ("client secret", "it does not know this client's CURVE key"),
        ("server key", "the server key is not this broker's"),
        ("curve off", "curve= on at one side only"),
    ],
)
def test_a_client_with_wrong_keys_gets_a_clear_error_at_once(
    url: str, keys: curve.BrokerKeys, wrong: str, reason: str
) -> None:
    stranger_public, stranger_secret = zmq.curve_keypair()
    given = {
        "client secret": with_keys(url, keys.server_public, stranger_secret),
        "server key": with_keys(url, stranger_public, keys.client_secret),
        "curve off": f"{url}&curve=off",
    }[wrong]
    started = time.monotonic()

    with pytest.raises(CoordinationError) as raised:
        open_coordination(given)

    message = str(raised.value)
    assert time.monotonic() - started < plugin.OPEN_TIMEOUT + 2
    assert f"broker at {plugin.parse_url(url).endpoint} refused this client" in message
    assert reason in message
    assert ("curve_secretkey=***" in message) == (wrong != "curve off")
    for secret in (stranger_secret, keys.client_secret, keys.server_secret):
        assert not shows(message, secret)


def test_a_connection_whose_broker_changed_its_keys_fails_within_its_retry_window(
    url: str, start_host: Start
) -> None:
    host, role, _ = start_host(url)
    assert role == "hosting"
    client = open_coordination(url)
    client.put_record("t/r", {"v": 1})
    path = plugin.parse_url(url).key_file
    old = curve.read_keys(path)
    # The keys are rotated: the host stops, its key file is removed, a new host makes new ones.
    host.send_signal(signal.SIGKILL)
    host.wait()
    os.remove(path)
    _, role, _ = start_host(url)
    assert role == "hosting"
    assert curve.read_keys(path) != old
    started = time.monotonic()

    with pytest.raises(CoordinationError, match=r"refused this client.*CURVE keys from key file"):
        client.get_record("t/r")

    assert time.monotonic() - started < 1 + plugin.REPLY_WAIT_MAX + 1


# -- URLs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("curve=maybe", "curve"),
        ("curve_secretkey=short-secret-value", "curve_secretkey"),
        ("curve_serverkey=not-a-z85-key", "curve_serverkey"),
    ],
)
def test_bad_curve_options_are_refused_without_showing_them(query: str, field: str) -> None:
    with pytest.raises(BadDescription, match=field) as raised:
        open_coordination(f"tcp://127.0.0.1:{free_port()}?{query}")

    assert "short-secret-value" not in str(raised.value)


def test_a_secret_key_without_the_server_key_is_refused(tmp_path: Path) -> None:
    secret = zmq.curve_keypair()[1].decode()
    url = f"tcp://127.0.0.1:{free_port()}?{urlencode({curve.SECRET_KEY: secret})}"

    with pytest.raises(CoordinationError, match="curve_serverkey= and curve_secretkey=") as raised:
        open_coordination(url)

    assert not shows(str(raised.value), secret.encode())


def test_a_client_on_another_host_is_told_where_the_keys_come_from(tmp_path: Path) -> None:
    url = f"tcp://127.0.0.1:{free_port()}?journal={quote(str(tmp_path / 'nowhere'))}"

    with pytest.raises(CoordinationError, match=r"key file .*nowhere/curve-keys does not exist"):
        open_coordination(url)


# -- a whole run ------------------------------------------------------------------------


def _agents_of(pilot_id: str) -> dict[int, bytes]:
    """The command lines of the agent processes of a pilot, by pid."""
    found = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/cmdline", "rb") as cmdline:
                    line = cmdline.read()
            except OSError:
                continue
            if b"troy.agent" in line and pilot_id.encode() in line:
                found[int(name)] = line
    return found


def test_a_run_over_curve_keeps_the_keys_off_command_lines_files_and_units(
    tmp_path: Path, troy_home: Path
) -> None:
    url = f"tcp://127.0.0.1:{free_port()}?journal={quote(str(tmp_path / 'journal'))}"
    pilots = troy.PilotJobService(coordination=url)
    units = troy.WorkUnitService(coordination=url)
    try:
        units.add(pilots)
        pilot = pilots.create(
            "fork://localhost",
            {"number_of_processes": 2, "working_directory": str(tmp_path / "pilot")},
        )
        env_dump = tmp_path / "unit-env.txt"
        submitted = units.submit(
            [
                {
                    "executable": "/bin/sh",
                    "arguments": ["-c", "env; sleep 3"],
                    "output": str(env_dump),
                },
                {"executable": "/bin/echo", "arguments": ["hello"]},
            ]
        )
        wait_until(lambda: submitted[0].state == State.Running, 60, "the unit to run")
        command_lines = _agents_of(pilot.id)
        units.wait(timeout=120)
        states = [unit.state for unit in submitted]
    finally:
        pilots.cancel()
        pilots.close()
        units.close()

    assert states == [State.Done, State.Done]
    assert command_lines, "no agent process found"
    keys = curve.read_keys(str(tmp_path / "journal" / curve.KEY_FILE))
    hidden = [keys.client_secret, keys.server_secret]
    for line in command_lines.values():
        assert not any(shows(line, secret) for secret in hidden), "a key on a command line"
    environment = env_dump.read_text()
    assert secrets.AGENT_SECRETS_ENV not in environment
    assert not any(shows(environment, secret) for secret in hidden), "a unit saw a key"
    for folder, _, names in os.walk(tmp_path):
        for name in names:
            path = os.path.join(folder, name)
            if path == keys.path:
                continue
            content = Path(path).read_bytes()
            leaked = [secret for secret in hidden if shows(content, secret)]
            assert not leaked, f"a secret key in {path}"
