"""longest_first passes troy's scheduler conformance suite."""

import pytest

from troy.testing.schedulers import SchedulerSuite


class TestLongestFirstScheduler(SchedulerSuite):
    @pytest.fixture
    def scheduler_name(self) -> str:
        return "longest_first"
