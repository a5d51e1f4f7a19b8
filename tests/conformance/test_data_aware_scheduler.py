"""The data_aware scheduler passes the scheduler conformance suite, affinity tests included."""

import pytest

from troy.testing.schedulers import SchedulerSuite


class TestDataAwareScheduler(SchedulerSuite):
    @pytest.fixture
    def scheduler_name(self) -> str:
        return "data_aware"
