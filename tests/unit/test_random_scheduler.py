"""What is special about the random scheduler: uniform among the pilots that fit, replayable."""

import json
import os
import subprocess
import sys
from collections import Counter

from troy.model.states import State
from troy.plugins import registry
from troy.plugins.schedulers.base import UnitRequest
from troy.plugins.schedulers.random import RandomScheduler
from troy.testing.schedulers import pilot, units_of

PILOTS = [pilot("p1", 4), pilot("p2", 8), pilot("small", 1), pilot("gone", 64, State.Failed)]


def test_it_is_the_registered_random_scheduler() -> None:
    assert registry.load("scheduler", "random") is RandomScheduler


def test_units_go_only_to_pilots_that_can_hold_them() -> None:
    units = units_of(50, cores=2) + units_of(5, cores=99, prefix="x")

    placement = RandomScheduler(seed=3).place(units, PILOTS)

    assert {placement[u.id] for u in units if u.cores == 2} == {"p1", "p2"}
    assert all(placement[f"x{i}"] is None for i in range(5))


def test_the_choice_is_uniform() -> None:
    load = Counter(RandomScheduler(seed=1).place(units_of(30_000), PILOTS).values())

    # Each of the three live pilots gets a third (10,000; 5 standard deviations is ~410).
    assert set(load) == {"p1", "p2", "small"}
    assert all(abs(count - 10_000) < 410 for count in load.values()), load


def test_the_seed_and_the_call_history_decide() -> None:
    def calls(seed: int | None) -> list[dict[str, str | None]]:
        scheduler = RandomScheduler(seed=seed)
        return [dict(scheduler.place(units_of(20, prefix=p), PILOTS)) for p in "abc"]

    assert calls(5) == calls(5)
    assert calls(5) != calls(6)
    assert calls(None) == calls(0)
    first, second, _ = calls(5)
    # The generator goes on between calls: the second call does not repeat the first.
    assert list(first.values()) != list(second.values())


PLACE_IN_A_CHILD = """
import json
from troy.plugins.schedulers.base import PilotOffer, UnitRequest
from troy.plugins.schedulers.random import RandomScheduler
from troy.model.states import State
pilots = [PilotOffer(f"p{i}", State.Running, 4) for i in range(5)]
scheduler = RandomScheduler(seed=11)
print(json.dumps([scheduler.place([UnitRequest(f"u{i}") for i in range(30)], pilots)
                  for _ in range(2)]))
"""


def test_the_same_seed_places_alike_whatever_the_hash_seed() -> None:
    def child(hash_seed: str) -> object:
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        run = subprocess.run(
            [sys.executable, "-c", PLACE_IN_A_CHILD], env=env, capture_output=True, check=True
        )
        return json.loads(run.stdout)

    assert child("1") == child("2") == child("12345")


def test_a_unit_no_pilot_can_hold_draws_nothing() -> None:
    units = [UnitRequest("a"), UnitRequest("huge", cores=99), UnitRequest("b")]
    plain = [UnitRequest("a"), UnitRequest("b")]

    with_huge = RandomScheduler(seed=2).place(units, PILOTS)
    without = RandomScheduler(seed=2).place(plain, PILOTS)

    assert (with_huge["a"], with_huge["b"]) == (without["a"], without["b"])
