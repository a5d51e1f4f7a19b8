"""The zmq coordination plugin: the coordination conformance suite, with CURVE on (the default)."""

from pathlib import Path
from urllib.parse import quote

import pytest
import zmq_fixtures
from zmq_fixtures import Start, free_port

from troy.plugins.coordination.base import Coordination
from troy.plugins.coordination.file import FileCoordination
from troy.testing.coordination import ClaimedCount, CoordinationSuite

pytest.importorskip("zmq")

from .test_file_coordination import claimed_lines

start_host = zmq_fixtures.start_host


class TestZmqCoordination(CoordinationSuite):
    """The broker in this process: the suite's connections reach it over inproc://."""

    @pytest.fixture
    def coordination_url(self, tmp_path: Path) -> str:
        return f"tcp://127.0.0.1:{free_port()}?journal={quote(str(tmp_path / 'journal'))}"

    @pytest.fixture
    def claimed_count(self, tmp_path: Path) -> ClaimedCount:
        journal = FileCoordination((tmp_path / "journal").as_uri(), serve=True)

        def count(coordination: Coordination, queue: str, claimer: str) -> int:
            return claimed_lines(journal, queue, claimer)

        return count


@pytest.mark.integration  # a process per test: about 30 s more
class TestZmqCoordinationOverCurve(TestZmqCoordination):
    """The broker in another process: every call of the suite goes over TCP with CURVE."""

    @pytest.fixture
    def coordination_url(self, tmp_path: Path, start_host: Start) -> str:
        url = f"tcp://127.0.0.1:{free_port()}?journal={quote(str(tmp_path / 'journal'))}"
        _, role, _ = start_host(url)
        assert role == "hosting"
        return url
