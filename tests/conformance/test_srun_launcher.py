"""The srun launcher passes the launcher conformance suite."""

import pytest

from troy.testing.launchers import LauncherSuite


class TestSrunLauncher(LauncherSuite):
    @pytest.fixture
    def launcher_name(self) -> str:
        return "srun"
