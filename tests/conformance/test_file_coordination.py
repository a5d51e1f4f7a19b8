"""The file coordination plugin: the coordination conformance suite, on a fresh directory."""

from pathlib import Path

import pytest

from troy.testing.coordination import CoordinationSuite


class TestFileCoordination(CoordinationSuite):
    @pytest.fixture
    def coordination_url(self, tmp_path: Path) -> str:
        return (tmp_path / "coordination dir").as_uri()
