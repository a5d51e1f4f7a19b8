"""Real Redis servers for the redis tests: a helper class and pytest fixtures.

Import the fixtures into a test module (``from redis_fixtures import redis_server``; pytest
puts tests/ on sys.path).
Each server runs on a free port with its own directory, append-only file and
``--appendfsync always``, so it can be stopped and started again without losing
anything.  Without ``redis-server`` on PATH the tests skip, unless
``TROY_REQUIRE_SERVICES=1`` (as in CI), where they fail.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

MISSING = "redis-server is not installed (scripts/redis-server.sh install)"


def require_redis_server() -> str:
    """The path of ``redis-server``; skips the test (fails it under TROY_REQUIRE_SERVICES=1)."""
    path = shutil.which("redis-server")
    if path is None:
        if os.environ.get("TROY_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{MISSING}; TROY_REQUIRE_SERVICES=1 forbids skipping")
        pytest.skip(MISSING)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _ping(port: int, timeout: float = 0.2) -> bool:
    """True once the server at ``port`` answers PING with PONG (not LOADING or an error)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


class RedisServer:
    """One ``redis-server`` process that this test session owns, by its PID."""

    def __init__(
        self, directory: Path, port: int | None = None, options: dict[str, str] | None = None
    ) -> None:
        self.executable = require_redis_server()
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self._own_port = port is None
        self._started = False
        self.port = port or free_port()
        #: More server options, e.g. {"--requirepass": "secret"}.
        self.options = dict(options or {})
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        """Start the server (again: same port, same directory) and wait until it answers.

        A first start on a port chosen here that someone else took meanwhile moves to
        another free port; a restart keeps its port.
        """
        if self.process is not None and self.process.poll() is None:
            return
        for _ in range(3):
            if self._spawn(timeout):
                self._started = True
                return
            if self._started or not self._own_port:
                break
            self.port = free_port()
        raise RuntimeError(
            f"redis-server on port {self.port} exited"
            f" with {self.process.returncode if self.process else None}; "
            f"log:\n{self.log()[-2000:]}"
        )

    def _spawn(self, timeout: float) -> bool:
        """Start the process; True once it answers, False if it exited."""
        log = open(self.dir / "redis.log", "ab")  # noqa: SIM115 - the child keeps it
        try:
            process = self.process = subprocess.Popen(
                [self.executable, *(word for pair in self._options().items() for word in pair)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        # The answer must come from this process, not from a server that took the port.
        while not (self._answers() and process.poll() is None):
            if process.poll() is not None:
                return False
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server on port {self.port} did not answer PING")
            time.sleep(0.01)
        time.sleep(0.05)  # a server that failed to bind exits at once
        return process.poll() is None

    def _answers(self) -> bool:
        return _ping(self.port)

    def _options(self) -> dict[str, str]:
        return {
            "--bind": "127.0.0.1",
            "--port": str(self.port),
            "--dir": str(self.dir),
            "--appendonly": "yes",
            "--appendfsync": "always",
            "--save": "",
            "--daemonize": "no",
            **self.options,
        }

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server: SIGTERM (Redis flushes its append-only file), SIGKILL if need be."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return (self.dir / "redis.log").read_text(errors="replace")
        return ""


@contextlib.contextmanager
def running_server(options: dict[str, str] | None = None) -> Iterator[RedisServer]:
    """A server in a temporary directory, stopped and removed when the block ends."""
    with tempfile.TemporaryDirectory(prefix="troy-redis-") as directory:
        server = RedisServer(Path(directory), options=options)
        server.start()
        try:
            yield server
        finally:
            server.stop()


_shared: list[RedisServer] = []


def _stop_shared(server: RedisServer) -> None:
    server.stop()
    shutil.rmtree(server.dir, ignore_errors=True)


def shared_server() -> RedisServer:
    """The one server of this test process (started on first use, stopped at exit)."""
    if not _shared or _shared[0].process is None:
        if not _shared:
            server = RedisServer(Path(tempfile.mkdtemp(prefix="troy-redis-")))
            atexit.register(_stop_shared, server)
            _shared.append(server)
        _shared[0].start()
    return _shared[0]


@pytest.fixture(scope="session")
def redis_server() -> RedisServer:
    """One server shared by every test of the session (however many modules import this
    fixture); tests keep apart by their key prefix, and must not stop it."""
    return shared_server()


@pytest.fixture
def fresh_redis_server() -> Iterator[RedisServer]:
    """A server of this test's own, which it may stop and start."""
    with running_server() as server:
        yield server


# -- TLS and ACL users ---------------------------------------------------------------------
OPENSSL_MISSING = "openssl is not installed (scripts/redis-server.sh install)"
#: The ACL user troy's TLS tests connect as; it may touch only keys under ``tls-*``.
TLS_USER = "app"
#: What prefixes of the TLS tests start with (the user's key pattern).
TLS_PREFIX = "tls-"


class TlsFiles:
    """A throwaway CA, a server certificate for 127.0.0.1/localhost and a client certificate
    it signed, and a second CA with a client certificate of its own (for wrong-CA tests);
    EC P-256, valid two days, made with openssl in ``directory``."""

    def __init__(self, directory: Path) -> None:
        if shutil.which("openssl") is None:
            if os.environ.get("TROY_REQUIRE_SERVICES") == "1":
                pytest.fail(f"{OPENSSL_MISSING}; TROY_REQUIRE_SERVICES=1 forbids skipping")
            pytest.skip(OPENSSL_MISSING)
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.ca = self._ca("ca")
        self.server_cert, self.server_key = self._signed(
            "server", "ca", "serverAuth", "subjectAltName=IP:127.0.0.1,DNS:localhost"
        )
        self.client_cert, self.client_key = self._signed("client", "ca", "clientAuth")
        self.other_ca = self._ca("other-ca")
        self.other_client_cert, self.other_client_key = self._signed(
            "other-client", "other-ca", "clientAuth"
        )

    def _openssl(self, *args: str) -> None:
        subprocess.run(["openssl", *args], cwd=self.dir, check=True, capture_output=True)

    def _ca(self, name: str) -> Path:
        self._openssl(
            *("req", "-x509", "-new", "-nodes", "-newkey", "ec"),
            *("-pkeyopt", "ec_paramgen_curve:P-256", "-keyout", f"{name}.key"),
            *("-out", f"{name}.crt", "-days", "2", "-subj", f"/CN=troy-test-{name}"),
            *("-addext", "basicConstraints=critical,CA:TRUE"),
            *("-addext", "keyUsage=critical,keyCertSign,cRLSign"),
        )
        return self.dir / f"{name}.crt"

    def _signed(self, name: str, ca: str, usage: str, *extra: str) -> tuple[Path, Path]:
        """A certificate and key for ``name`` signed by ``ca``; ``extra`` extension lines."""
        subject = "/CN=127.0.0.1" if usage == "serverAuth" else f"/CN=troy-test-{name}"
        self._openssl(
            *("req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"),
            *("-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject),
        )
        lines = [
            "basicConstraints=CA:FALSE",
            "keyUsage=critical,digitalSignature",
            "authorityKeyIdentifier=keyid",
            "subjectKeyIdentifier=hash",
            f"extendedKeyUsage={usage}",
            *extra,
        ]
        (self.dir / f"{name}.ext").write_text("\n".join(lines) + "\n")
        self._openssl(
            *("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key"),
            *("-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.crt"),
        )
        key = self.dir / f"{name}.key"
        key.chmod(0o600)
        return self.dir / f"{name}.crt", key

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca))
        context.load_cert_chain(str(self.client_cert), str(self.client_key))
        return context


class TlsRedisServer(RedisServer):
    """A redis-server that speaks TLS only (``--port 0``), wants a client certificate signed
    by its CA, and knows ACL users only: ``default`` is off, `TLS_USER` (password
    ``self.password``) may use keys under `TLS_PREFIX` and no @dangerous command."""

    def __init__(self, directory: Path, files: TlsFiles) -> None:
        super().__init__(directory)
        self.files = files
        self.password = f"tls-{secrets.token_hex(8)}"
        acl = directory / "users.acl"
        acl.write_text(
            "user default off\n"
            f"user {TLS_USER} on >{self.password} ~{TLS_PREFIX}* &* +@all -@dangerous\n"
        )
        acl.chmod(0o600)
        self.options = {
            "--tls-cert-file": str(files.server_cert),
            "--tls-key-file": str(files.server_key),
            "--tls-ca-cert-file": str(files.ca),
            "--tls-auth-clients": "yes",
            "--aclfile": str(acl),
        }

    def _options(self) -> dict[str, str]:
        return {**super()._options(), "--port": "0", "--tls-port": str(self.port)}

    def _answers(self) -> bool:
        """True once the server answers PING over TLS (NOAUTH: nobody is logged in)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as raw:
                context = self.files.client_context()
                with context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
                    sock.sendall(b"PING\r\n")
                    return sock.recv(64).startswith((b"+PONG", b"-NOAUTH"))
        except OSError:
            return False

    def tls_query(self, ca: Path | None = None, client: bool = True) -> str:
        """The URL query of the TLS files: this CA (or ``ca``), and the client's certificate."""
        query = f"ssl_ca_certs={ca or self.files.ca}"
        if client:
            query += f"&ssl_certfile={self.files.client_cert}&ssl_keyfile={self.files.client_key}"
        return query

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """``rediss://`` as `TLS_USER` with the password, the CA and the client certificate."""
        return f"rediss://{TLS_USER}:{self.password}@{self.address}/0?{self.tls_query()}"


@pytest.fixture(scope="session")
def redis_tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsRedisServer]:
    """One TLS-only, ACL-only server for the session (tests keep apart by prefixes starting
    with `TLS_PREFIX`); its certificates are made fresh with openssl."""
    require_redis_server()
    base = tmp_path_factory.mktemp("redis-tls")
    server = TlsRedisServer(base / "server", TlsFiles(base / "certs"))
    server.start()
    try:
        yield server
    finally:
        server.stop()
