"""The zmq coordination plugin: the coordination conformance suite, on a broker hosted here."""

import socket
from pathlib import Path
from urllib.parse import quote

import pytest

from troy.testing.coordination import CoordinationSuite

pytest.importorskip("zmq")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class TestZmqCoordination(CoordinationSuite):
    @pytest.fixture
    def coordination_url(self, tmp_path: Path) -> str:
        return f"tcp://127.0.0.1:{free_port()}?journal={quote(str(tmp_path / 'journal'))}"
