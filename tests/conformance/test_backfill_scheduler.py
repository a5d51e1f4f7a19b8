"""The backfill scheduler passes the scheduler conformance suite."""

import pytest

from troy.testing.schedulers import SchedulerSuite


class TestBackfillScheduler(SchedulerSuite):
    @pytest.fixture
    def scheduler_name(self) -> str:
        return "backfill"
