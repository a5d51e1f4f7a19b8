"""The affinity scheduler with ``binding: late`` passes the suite, affinity tests included."""

from typing import Any

import pytest

from troy.testing.schedulers import SchedulerSuite


class TestAffinityLateScheduler(SchedulerSuite):
    @pytest.fixture
    def scheduler_name(self) -> str:
        return "affinity"

    @pytest.fixture
    def scheduler_options(self) -> dict[str, Any]:
        return {"binding": "late"}
