"""The round_robin scheduler passes the scheduler conformance suite."""

import pytest

from troy.testing.schedulers import SchedulerSuite


class TestRoundRobinScheduler(SchedulerSuite):
    @pytest.fixture
    def scheduler_name(self) -> str:
        return "round_robin"
