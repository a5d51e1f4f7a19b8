"""The data_aware scheduler with ``binding: late`` passes the suite, affinity tests included."""

from typing import Any

import pytest

from troy.testing.schedulers import SchedulerSuite


class TestDataAwareLateScheduler(SchedulerSuite):
    @pytest.fixture
    def scheduler_name(self) -> str:
        return "data_aware"

    @pytest.fixture
    def scheduler_options(self) -> dict[str, Any]:
        return {"binding": "late"}
