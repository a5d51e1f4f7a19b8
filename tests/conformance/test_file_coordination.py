"""The file coordination plugin: the coordination conformance suite, on a fresh directory."""

import os
from pathlib import Path

import pytest

from troy.plugins.coordination.base import Coordination
from troy.plugins.coordination.file import FileCoordination
from troy.testing.coordination import ClaimedCount, CoordinationSuite


def claimed_lines(coordination: Coordination, queue: str, claimer: str) -> int:
    """Items in ``queues/<queue>/@claimed/<claimer>/``: one line each."""
    assert isinstance(coordination, FileCoordination)
    folder = os.path.join(coordination.root, "queues", queue, "@claimed", claimer)
    if not os.path.isdir(folder):
        return 0
    return sum(Path(folder, name).read_bytes().count(b"\n") for name in os.listdir(folder))


class TestFileCoordination(CoordinationSuite):
    @pytest.fixture
    def coordination_url(self, tmp_path: Path) -> str:
        return (tmp_path / "coordination dir").as_uri()

    @pytest.fixture
    def claimed_count(self) -> ClaimedCount:
        return claimed_lines
