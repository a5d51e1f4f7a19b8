"""The mpirun launcher passes the launcher conformance suite."""

import pytest

from troy.testing.launchers import LauncherSuite


class TestMpirunLauncher(LauncherSuite):
    @pytest.fixture
    def launcher_name(self) -> str:
        return "mpirun"
