"""The affinity scheduler passes the scheduler conformance suite, affinity tests included."""

import pytest

from troy.testing.schedulers import SchedulerSuite


class TestAffinityScheduler(SchedulerSuite):
    @pytest.fixture
    def scheduler_name(self) -> str:
        return "affinity"
