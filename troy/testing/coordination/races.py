"""Racing claimers: separate OS processes claim from one queue while items are withdrawn."""

from __future__ import annotations

import multiprocessing
import queue as queue_module
import random
import traceback
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from troy.plugins.coordination.base import Coordination
from troy.plugins.registry import open_coordination
from troy.testing.coordination.base import (
    MULTIPROCESS,
    CoordinationFixtures,
    drain,
    ids_of,
    make_items,
    require_capability,
)


def _claim_until_empty(
    url: str, queue: str, claimer: str, seed: int, start: Any, results: Any
) -> None:
    """Runs in a separate process: claims small random batches until none is left."""
    try:
        coordination = open_coordination(url)
        rng = random.Random(seed)
        got: list[str] = []
        start.wait(timeout=120)
        while batch := coordination.claim(queue, claimer, size := rng.randint(1, 16)):
            if len(batch) > size:
                raise AssertionError(f"claim of at most {size} items returned {len(batch)}")
            got.extend(ids_of(batch))
        coordination.close()
        results.put((claimer, got, None))
    except BaseException:
        results.put((claimer, [], traceback.format_exc()))


def _race(
    url: str,
    queue: str,
    claimers: int,
    meanwhile: Callable[[], None] = lambda: None,
) -> dict[str, list[str]]:
    """Ids claimed by each of ``claimers`` processes racing on ``queue``, ``meanwhile`` running."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(claimers + 1)
    results = context.Queue()
    processes = [
        context.Process(
            target=_claim_until_empty,
            args=(url, queue, f"racer{n}", n, start, results),
            daemon=True,
        )
        for n in range(claimers)
    ]
    for process in processes:
        process.start()
    claimed: dict[str, list[str]] = {}
    try:
        start.wait(timeout=120)
        meanwhile()
        for _ in processes:
            try:
                claimer, got, error = results.get(timeout=120)
            except queue_module.Empty:
                pytest.fail(f"claimers did not finish; finished: {sorted(claimed)}")
            if error:
                pytest.fail(f"claimer {claimer} failed:\n{error}")
            claimed[claimer] = got
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    return claimed


def _duplicates(ids: list[str]) -> list[str]:
    return sorted(i for i, n in Counter(ids).items() if n > 1)


class QueueRaceTests(CoordinationFixtures):
    """Claimers in separate OS processes never get the same item, and together get them all."""

    def test_racing_claimers_get_every_item_exactly_once(
        self, coordination: Coordination, coordination_url: str, ns: str
    ) -> None:
        require_capability(coordination, MULTIPROCESS)
        queue, rng, everything = f"{ns}/q", random.Random(7), list[str]()
        while len(everything) < 2000:
            items = make_items(len(everything), rng.randint(1, 150))
            coordination.enqueue(queue, items)
            everything.extend(ids_of(items))

        claimed = _race(coordination_url, queue, claimers=4)

        all_claimed = [i for got in claimed.values() for i in got]
        assert _duplicates(all_claimed) == [], "items claimed twice"
        assert sorted(all_claimed) == sorted(everything)
        assert coordination.claim(queue, "late", 10) == []

    def test_withdraw_racing_claimers_splits_items_cleanly(
        self, coordination: Coordination, coordination_url: str, ns: str
    ) -> None:
        require_capability(coordination, MULTIPROCESS)
        queue, rng, everything = f"{ns}/q", random.Random(11), list[str]()
        while len(everything) < 2000:
            items = make_items(len(everything), rng.randint(1, 150))
            coordination.enqueue(queue, items)
            everything.extend(ids_of(items))
        targets = rng.sample(everything, 1000)
        withdrawn: list[str] = []

        def withdraw_in_batches() -> None:
            for i in range(0, len(targets), 25):
                batch = targets[i : i + 25]
                removed = coordination.withdraw(queue, batch)
                assert set(removed) <= set(batch), "withdraw returned ids it was not asked for"
                withdrawn.extend(removed)

        claimed = _race(coordination_url, queue, 3, withdraw_in_batches)
        # Claimers may stop while a withdraw holds a bundle; whatever is left is claimable.
        leftover = ids_of(drain(coordination, queue, "late", 50))

        all_claimed = [i for got in claimed.values() for i in got] + leftover
        assert _duplicates(all_claimed) == [], "items claimed twice"
        assert _duplicates(withdrawn) == [], "items withdrawn twice"
        assert set(all_claimed) & set(withdrawn) == set(), "items both claimed and withdrawn"
        assert sorted(all_claimed + withdrawn) == sorted(everything)
