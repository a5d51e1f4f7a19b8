"""The none launcher passes the launcher conformance suite."""

import pytest

from troy.testing.launchers import LauncherSuite


class TestNoneLauncher(LauncherSuite):
    @pytest.fixture
    def launcher_name(self) -> str:
        return "none"
