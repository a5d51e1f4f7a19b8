"""CURVE keys of the zmq coordination broker: made once per broker, kept in a private file.

The broker of a ``tcp://`` coordination URL has a *server* key pair (clients
check they reach the real broker with its public key, and everything between
them is encrypted) and one *client* key pair that it lets in: a client whose
public key it does not know gets no answer at all.  The first process that
hosts the broker makes both pairs and writes them, as one line of JSON, to
the key file (default ``<journal>/curve-keys``), created mode 0600 whatever
the umask; every later host of that broker (a manager that takes over, a
restart on the same journal) uses the same keys, so agents that already run
keep working.

A client finds the keys in the URL (``curve_serverkey=`` and the secret
``curve_secretkey=``: how an agent gets them, in its environment) or else in
the key file (a process of the same user on the broker's host, or a copy
named by ``curve_keys=``).  Keys are Z85 text, 40 characters each.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

try:
    import zmq
    from zmq.auth.thread import ThreadAuthenticator
    from zmq.utils.monitor import recv_monitor_message
except ImportError:  # the zmq plugin says what to install
    zmq = None  # type: ignore[assignment]

from troy.model import secrets as secret_values
from troy.model.errors import CoordinationError
from troy.model.private import private_mkdir
from troy.plugins.options import Check

#: The key file's name in the broker's journal directory (unless ``curve_keys=`` says where).
KEY_FILE = "curve-keys"
#: The URL options that carry a client's keys (``curve_secretkey`` is a secret).
SERVER_KEY, SECRET_KEY = "curve_serverkey", "curve_secretkey"
_Z85 = frozenset(
    b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
)


def z85_key(value: str) -> bytes:
    """A CURVE key as zmq takes it; ValueError (never showing ``value``) if it is not one.

    A ``+`` that a URL's query turned into a blank is put back (Z85 has no blanks).
    """
    key = value.strip().replace(" ", "+").encode("ascii", errors="replace")
    if len(key) != 40 or not set(key) <= _Z85:
        raise ValueError("expected a CURVE key: 40 characters of Z85, as in the broker's key file")
    return key


def key_check() -> Check:
    """An Option check for a CURVE key given in a URL (the value is never repeated)."""

    def check(value: Any) -> Any:
        if not isinstance(value, str):
            raise TypeError("expected a CURVE key (text)")
        return z85_key(value).decode()

    return Check("a CURVE key: 40 characters of Z85", check)


@dataclass(frozen=True)
class ClientKeys:
    """What a client needs to reach the broker; ``source`` says where they came from."""

    server_public: bytes
    client_public: bytes
    client_secret: bytes = field(repr=False)
    source: str


@dataclass(frozen=True)
class BrokerKeys:
    """The broker's key pair and the one client key pair it lets in."""

    server_public: bytes
    server_secret: bytes = field(repr=False)
    client_public: bytes
    client_secret: bytes = field(repr=False)
    path: str

    def for_client(self) -> ClientKeys:
        return ClientKeys(
            self.server_public, self.client_public, self.client_secret, f"key file {self.path}"
        )


def read_keys(path: str) -> BrokerKeys:
    """The keys in the key file ``path``; CoordinationError naming it if missing or not private."""
    try:
        line = secret_values.read_secret_file(path)
    except ValueError as exc:
        raise CoordinationError(f"zmq coordination CURVE keys: {exc}") from None
    try:
        saved = json.loads(line)
        keys = BrokerKeys(
            z85_key(saved["server_public"]),
            z85_key(saved["server_secret"]),
            z85_key(saved["client_public"]),
            z85_key(saved["client_secret"]),
            path,
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        raise CoordinationError(
            f"zmq coordination CURVE key file {path} is not what troy writes there;"
            " move it away and the next broker makes new keys (then restart its agents)"
        ) from None
    secret_values.remember(keys.server_secret.decode(), keys.client_secret.decode())
    return keys


def new_keys(path: str) -> BrokerKeys:
    """Fresh keys for a broker whose key file will be ``path`` (not written yet: `save_keys`)."""
    server_public, server_secret = zmq.curve_keypair()
    client_public, client_secret = zmq.curve_keypair()
    secret_values.remember(server_secret.decode(), client_secret.decode())
    return BrokerKeys(server_public, server_secret, client_public, client_secret, path)


def save_keys(keys: BrokerKeys) -> BrokerKeys:
    """Write ``keys`` to their file unless one is there; the keys the file then holds.

    The file is private from its first byte whatever the umask (created 0600
    and fchmod'ed to it), and complete when it appears (a hard link of a
    finished temporary file): of racing processes the first one's keys win.
    """
    folder = os.path.dirname(keys.path) or "."
    try:
        private_mkdir(folder)
        temp = os.path.join(folder, f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
        descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchmod(descriptor, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as file:
                file.write(_key_line(keys) + "\n")
                file.flush()
                os.fsync(file.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(temp, keys.path)
        finally:
            os.unlink(temp)
    except OSError as exc:
        raise CoordinationError(
            f"cannot write the zmq broker's key file {keys.path}: {exc}"
        ) from exc
    return read_keys(keys.path)


def _key_line(keys: BrokerKeys) -> str:
    return json.dumps(
        {
            "server_public": keys.server_public.decode(),
            "server_secret": keys.server_secret.decode(),
            "client_public": keys.client_public.decode(),
            "client_secret": keys.client_secret.decode(),
        }
    )


class _AllowedKeys:
    """The client public keys each broker (ZAP domain) lets in."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_domain: dict[str, frozenset[bytes]] = {}

    def callback(self, domain: str, key: bytes) -> bool:
        with self.lock:
            return key in self.by_domain.get(domain, frozenset())


class Gate:
    """One process' ZAP handler (a ThreadAuthenticator on its zmq context) for all its brokers."""

    def __init__(self, context: zmq.Context[zmq.Socket[bytes]]) -> None:
        self._allowed = _AllowedKeys()
        self._authenticator = ThreadAuthenticator(context)
        self._authenticator.start()

    def protect(self, router: zmq.Socket[bytes], domain: str, keys: BrokerKeys) -> None:
        """Make ``router`` (before it binds) a CURVE server that lets in only ``keys``' client."""
        with self._allowed.lock:
            self._allowed.by_domain[domain] = frozenset({keys.client_public})
        self._authenticator.configure_curve_callback(domain, self._allowed)
        router.curve_secretkey = keys.server_secret
        router.curve_publickey = keys.server_public
        router.curve_server = True
        router.zap_domain = domain.encode()


def use_client_keys(socket: zmq.Socket[bytes], keys: ClientKeys) -> None:
    """Make ``socket`` (before it connects) a CURVE client with ``keys``."""
    socket.curve_serverkey = keys.server_public
    socket.curve_publickey = keys.client_public
    socket.curve_secretkey = keys.client_secret


def client_keys_from_url(serverkey: bytes | None, secretkey: bytes | None) -> ClientKeys | None:
    """The keys the URL gives (both options or neither), else None."""
    if serverkey is None and secretkey is None:
        return None
    if serverkey is None or secretkey is None:
        raise CoordinationError(
            f"zmq coordination URL: {SERVER_KEY}= and {SECRET_KEY}= go together (or use neither)"
        )
    return ClientKeys(serverkey, zmq.curve_public(secretkey), secretkey, f"the URL's {SECRET_KEY}=")


def _failures() -> dict[int, str]:
    return {
        zmq.EVENT_HANDSHAKE_FAILED_AUTH: "it does not know this client's CURVE key",
        # A client without CURVE may see this one too, or the next, depending on timing.
        zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL: (
            "the handshake failed: the server key is not this broker's, or curve= on at one"
            " side only"
        ),
        zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: "the handshake failed: curve= on at one side only",
    }


def watch_handshakes(socket: zmq.Socket[bytes]) -> zmq.Socket[bytes]:
    """A monitor of ``socket``'s handshakes (call before it connects); see `handshake_failure`."""
    events = zmq.EVENT_HANDSHAKE_SUCCEEDED
    for event in _failures():
        events |= event
    return socket.get_monitor_socket(events)


def handshake_failure(monitor: zmq.Socket[bytes]) -> str | None:
    """Why the last handshake the monitor saw failed, in words; None if none failed since."""
    why = None
    failures = _failures()
    while monitor.poll(0):
        why = failures.get(recv_monitor_message(monitor, zmq.NOBLOCK)["event"])
    return why
