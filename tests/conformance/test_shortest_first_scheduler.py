"""The shortest_first scheduler passes the scheduler conformance suite."""

import pytest

from troy.testing.schedulers import SchedulerSuite


class TestShortestFirstScheduler(SchedulerSuite):
    @pytest.fixture
    def scheduler_name(self) -> str:
        return "shortest_first"
