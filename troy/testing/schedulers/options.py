"""Options: checked against ``option_specs`` (unknown ones named), defaults filled, seeds taken."""

from __future__ import annotations

import pytest

from troy.model.errors import BadDescription
from troy.plugins.contracts import version_problem
from troy.plugins.schedulers.base import Scheduler
from troy.testing.schedulers.base import SchedulerFixtures

#: An option name no scheduler takes.
UNKNOWN = "no_such_option_for_the_suite"


class SchedulerOptionTests(SchedulerFixtures):
    """What ``WorkUnitService(scheduler_options=...)`` relies on."""

    def test_written_for_this_contract(self, scheduler_class: type[Scheduler]) -> None:
        # Same MAJOR as this troy's contract, and a MINOR no newer.
        problem = version_problem("scheduler", scheduler_class.contract_version)
        assert problem is None, f"{scheduler_class.__name__} {problem.text if problem else ''}"

    def test_an_unknown_option_is_a_bad_description_naming_it(
        self, scheduler_class: type[Scheduler]
    ) -> None:
        with pytest.raises(BadDescription) as error:
            scheduler_class.check_options({UNKNOWN: 1})
        assert error.value.field == f"scheduler_options.{UNKNOWN}"
        assert scheduler_class.name in str(error.value)

    def test_check_options_fills_in_every_default(self, scheduler_class: type[Scheduler]) -> None:
        defaults = {name: spec.default for name, spec in scheduler_class.option_specs.items()}

        assert scheduler_class.check_options({}) == defaults
        assert scheduler_class(seed=None).options == defaults

    def test_every_default_passes_its_own_check(self, scheduler_class: type[Scheduler]) -> None:
        for name, spec in scheduler_class.option_specs.items():
            checked = scheduler_class.check_options({name: spec.default})
            assert name in checked, f"option {name!r} missing from check_options' result"

    def test_every_option_is_taken_by_the_constructor(
        self, scheduler_class: type[Scheduler]
    ) -> None:
        # The manager passes the options given as keywords, after check_options.
        options = {name: spec.default for name, spec in scheduler_class.option_specs.items()}

        scheduler = scheduler_class(3, **options)

        assert scheduler.seed == 3
        assert scheduler.options == scheduler_class.check_options(options)

    def test_a_seed_is_always_accepted(self, scheduler_class: type[Scheduler]) -> None:
        assert "seed" not in scheduler_class.check_options({"seed": 42})
        assert scheduler_class.check_options({"seed": None}) == scheduler_class.check_options({})
        assert scheduler_class(seed=42).seed == 42

    @pytest.mark.parametrize("seed", ["3", 2.5, True])
    def test_a_seed_that_is_no_whole_number_is_refused(
        self, scheduler_class: type[Scheduler], seed: object
    ) -> None:
        with pytest.raises(BadDescription) as error:
            scheduler_class.check_options({"seed": seed})
        assert error.value.field == "scheduler_options.seed"
