"""troy's conformance suites, run on each plugin of troy-demo with one small subclass per kind."""

from pathlib import Path

import pytest

from troy.testing.backends import BackendSuite
from troy.testing.coordination import CoordinationSuite
from troy.testing.launchers import LauncherSuite
from troy.testing.schedulers import SchedulerSuite
from troy.testing.stores import StoreSuite


class TestNiceBackend(BackendSuite):
    # The pilots' agents are other processes: they coordinate through the
    # suite's default file:// directory, not through the memory plugin.
    @pytest.fixture
    def backend_rm(self) -> str:
        return "fork://localhost"

    @pytest.fixture
    def backend_pj_type(self) -> str | None:
        return "nice"


class TestFewestUnitsScheduler(SchedulerSuite):
    @pytest.fixture
    def scheduler_name(self) -> str:
        return "fewest_units"


class TestMemoryStore(StoreSuite):
    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return f"memory://{tmp_path.name}"


class TestMemoryCoordination(CoordinationSuite):
    @pytest.fixture
    def coordination_url(self, tmp_path: Path) -> str:
        return f"memory://{tmp_path.name}"


class TestMpiexecLauncher(LauncherSuite):
    @pytest.fixture
    def launcher_name(self) -> str:
        return "mpiexec"
