"""Live services for the tests: sshd (``ssh://``), single-node SLURM (``slurm://``), MPI, S3.

``bash scripts/services.sh start DIR`` starts sshd, munge and SLURM on free loopback
ports and writes ``DIR/env.sh``; sourcing it exports the variables read here
(``TROY_TEST_SSH_URL``, ``TROY_TEST_SLURM_URL``, ``SLURM_CONF``, ...) and puts ssh/scp/sftp
wrappers that use the throwaway key first in PATH.  ``scripts/test.sh`` does all that.

``bash scripts/s3-server.sh start DIR`` starts an S3 server (Ceph radosgw) and writes
``DIR/env.sh`` with ``TROY_TEST_S3_ENDPOINT``, ``TROY_TEST_S3_ACCESS_KEY`` and
``TROY_TEST_S3_SECRET_KEY``; ``scripts/test.sh`` starts it too.

Import the helpers into a test module (``from services import ssh_url``; pytest puts
tests/ on sys.path) and call them in the test or a fixture.  Without the service the
test skips, saying why, unless ``TROY_REQUIRE_SERVICES=1`` (as in CI), where it fails.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path
from typing import NamedTuple, NoReturn
from urllib.parse import urlsplit

import pytest

START = "bash scripts/services.sh start, then . /tmp/troy-services/env.sh"
START_S3 = "bash scripts/s3-server.sh install; bash scripts/s3-server.sh start DIR; . DIR/env.sh"


def unavailable(reason: str) -> NoReturn:
    """Skip the test for ``reason``, or fail it under TROY_REQUIRE_SERVICES=1."""
    if os.environ.get("TROY_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason}; TROY_REQUIRE_SERVICES=1 forbids skipping")
    pytest.skip(reason)


def _env(name: str, service: str, start: str = START) -> str:
    value = os.environ.get(name, "")
    if not value:
        unavailable(f"{service} is not started: {name} is not set ({start})")
    return value


def _listening(port: int, service: str, start: str = START, host: str = "127.0.0.1") -> None:
    try:
        with socket.create_connection((host, port), timeout=2):
            pass
    except OSError as error:
        unavailable(f"{service} does not answer on {host}:{port} ({error}; {start})")


def ssh_url() -> str:
    """``ssh://localhost:PORT`` of the test sshd (key-only login as the current user)."""
    url = _env("TROY_TEST_SSH_URL", "sshd")
    _listening(int(_env("TROY_TEST_SSH_PORT", "sshd")), "sshd")
    return url


def slurm_url() -> str:
    """``slurm://localhost`` of the single-node test cluster (partition ``debug``)."""
    url = _env("TROY_TEST_SLURM_URL", "SLURM")
    conf = Path(_env("SLURM_CONF", "SLURM"))
    if not conf.is_file():
        unavailable(f"SLURM_CONF={conf} does not exist ({START})")
    if shutil.which("sbatch") is None:
        unavailable("SLURM's sbatch is not on PATH (bash scripts/services.sh install)")
    for line in conf.read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "SlurmctldPort":
            _listening(int(value.strip()), "slurmctld")
    return url


def have_mpicc() -> str:
    """The path of ``mpicc``, once ``mpicc`` and ``mpirun`` are both on PATH."""
    missing = [tool for tool in ("mpicc", "mpirun") if shutil.which(tool) is None]
    if missing:
        unavailable(
            f"{' and '.join(missing)} not on PATH (OpenMPI: bash scripts/services.sh install)"
        )
    path = shutil.which("mpicc")
    assert path is not None
    return path


class S3Endpoint(NamedTuple):
    """Where the test S3 server is and the keys of its user."""

    url: str
    access_key: str
    secret_key: str

    def options(self) -> dict[str, str]:
        """The s3 store's options for this server (BigJob's names)."""
        return {
            "endpoint_url": self.url,
            "access_key_id": self.access_key,
            "secret_access_key": self.secret_key,
            "region": "us-east-1",
        }


def s3_endpoint() -> S3Endpoint:
    """``http://127.0.0.1:PORT`` of the test S3 server (radosgw) and its user's keys."""
    url = _env("TROY_TEST_S3_ENDPOINT", "the S3 server", START_S3)
    endpoint = S3Endpoint(
        url,
        _env("TROY_TEST_S3_ACCESS_KEY", "the S3 server", START_S3),
        _env("TROY_TEST_S3_SECRET_KEY", "the S3 server", START_S3),
    )
    parts = urlsplit(url)
    _listening(parts.port or 80, "the S3 server", START_S3, parts.hostname or "127.0.0.1")
    return endpoint
