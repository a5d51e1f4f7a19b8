"""The least_loaded scheduler passes the scheduler conformance suite."""

import pytest

from troy.testing.schedulers import SchedulerSuite


class TestLeastLoadedScheduler(SchedulerSuite):
    @pytest.fixture
    def scheduler_name(self) -> str:
        return "least_loaded"
