"""The zmq coordination plugin: the coordination conformance suite, on a broker hosted here."""

import socket
from pathlib import Path
from urllib.parse import quote

import pytest

from troy.plugins.coordination.base import Coordination
from troy.plugins.coordination.file import FileCoordination
from troy.testing.coordination import ClaimedCount, CoordinationSuite

pytest.importorskip("zmq")

from .test_file_coordination import claimed_lines


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class TestZmqCoordination(CoordinationSuite):
    @pytest.fixture
    def coordination_url(self, tmp_path: Path) -> str:
        return f"tcp://127.0.0.1:{free_port()}?journal={quote(str(tmp_path / 'journal'))}"

    @pytest.fixture
    def claimed_count(self, tmp_path: Path) -> ClaimedCount:
        journal = FileCoordination((tmp_path / "journal").as_uri(), serve=True)

        def count(coordination: Coordination, queue: str, claimer: str) -> int:
            return claimed_lines(journal, queue, claimer)

        return count
