"""troy's conformance suites, run on each plugin of troy-demo with one small subclass per kind.

The fixtures that reach the backend, store and coordination plugins live in
``troy_demo.conformance``, declared under ``troy.conformance`` so that
``troy plugins --check NAME --suite`` uses them too.
"""

import pytest
from troy_demo.conformance import (
    MemoryCoordinationFixtures,
    MemoryStoreFixtures,
    NiceBackendFixtures,
)

from troy.testing.backends import BackendSuite
from troy.testing.coordination import CoordinationSuite
from troy.testing.launchers import LauncherSuite
from troy.testing.schedulers import SchedulerSuite
from troy.testing.stores import StoreSuite


class TestNiceBackend(NiceBackendFixtures, BackendSuite):
    pass


class TestFewestUnitsScheduler(SchedulerSuite):
    @pytest.fixture
    def scheduler_name(self) -> str:
        return "fewest_units"


class TestMemoryStore(MemoryStoreFixtures, StoreSuite):
    pass


class TestMemoryCoordination(MemoryCoordinationFixtures, CoordinationSuite):
    pass


class TestMpiexecLauncher(LauncherSuite):
    @pytest.fixture
    def launcher_name(self) -> str:
        return "mpiexec"
