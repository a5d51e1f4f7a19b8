"""The data_aware scheduler with ``binding: late`` passes the suite, affinity tests included."""

import pytest

from troy.plugins import registry
from troy.plugins.schedulers.base import Scheduler
from troy.testing.schedulers import MakeScheduler, SchedulerSuite


class TestDataAwareLateScheduler(SchedulerSuite):
    @pytest.fixture
    def scheduler_name(self) -> str:
        return "data_aware"

    @pytest.fixture
    def make_scheduler(self, scheduler_name: str) -> MakeScheduler:
        plugin: type[Scheduler] = registry.load("scheduler", scheduler_name)

        def make(seed: int | None = 0) -> Scheduler:
            return plugin(seed=seed, binding="late")

        return make
