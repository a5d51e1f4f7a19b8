"""Contract 1.2: create_record, allocate, ack and compact, in one process and racing.

`create_record` and `allocate` are raced by separate OS processes (capability
``"multiprocess"``): of racers for one key exactly one wins, and reserved
ranges never overlap.  How much a claimer's acknowledged items still take is
not visible through the contract: the suite asks the ``claimed_count`` fixture,
which a plugin's test file may override (the ack tests that need it skip when
it is not).
"""

from __future__ import annotations

import itertools
import multiprocessing
import queue as queue_module
import threading
import traceback
from collections.abc import Callable
from typing import Any

import pytest

from troy.model.errors import CoordinationError
from troy.plugins.coordination.base import Coordination
from troy.plugins.registry import open_coordination
from troy.testing.coordination.base import (
    MULTIPROCESS,
    Connect,
    CoordinationFixtures,
    check_returned,
    ids_of,
    make_items,
    name_of,
    require_capability,
)

#: How many items a claimer's claimed storage holds: (connection, queue, claimer) -> count.
ClaimedCount = Callable[[Coordination, str, str], int]

RACERS = 4
KEYS = 300
ALLOCATIONS = 40


def _create_records(url: str, ns: str, racer: int, start: Any, results: Any) -> None:
    """Runs in a separate process: tries to create every key, in the same order as the others."""
    try:
        coordination = open_coordination(url)
        start.wait(timeout=120)
        won = [k for k in range(KEYS) if coordination.create_record(f"{ns}/k{k}", {"r": racer})]
        coordination.close()
        results.put((racer, won, None))
    except BaseException:
        results.put((racer, [], traceback.format_exc()))


def _allocate(url: str, ns: str, racer: int, start: Any, results: Any) -> None:
    """Runs in a separate process: reserves ranges of 1 to 5 numbers from one counter."""
    try:
        coordination = open_coordination(url)
        start.wait(timeout=120)
        ranges = []
        for n in range(ALLOCATIONS):
            count = 1 + (n + racer) % 5
            ranges.append((coordination.allocate(f"{ns}/ids", count), count))
        coordination.close()
        results.put((racer, ranges, None))
    except BaseException:
        results.put((racer, [], traceback.format_exc()))


def _race(url: str, ns: str, target: Callable[..., None]) -> dict[int, Any]:
    """What each of RACERS processes running ``target`` at once returned."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(RACERS)
    results = context.Queue()
    processes = [
        context.Process(target=target, args=(url, ns, n, start, results), daemon=True)
        for n in range(RACERS)
    ]
    for process in processes:
        process.start()
    got: dict[int, Any] = {}
    try:
        for _ in processes:
            try:
                racer, value, error = results.get(timeout=120)
            except queue_module.Empty:
                pytest.fail(f"racers did not finish; finished: {sorted(got)}")
            if error:
                pytest.fail(f"racer {racer} failed:\n{error}")
            got[racer] = value
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    return got


class DurabilityTests(CoordinationFixtures):
    """create_record, allocate, ack and compact (contract 1.2)."""

    @pytest.fixture
    def claimed_count(self) -> ClaimedCount | None:
        """How many items a claimer's claimed storage holds; None (ack tests skip) unless
        overridden.  Override it to prove that acknowledged items are dropped."""
        return None

    # -- create_record -------------------------------------------------------------
    def test_create_record_stores_only_if_absent(self, connect: Connect, ns: str) -> None:
        first, second = connect(), connect()
        created = first.create_record(f"{ns}/lease", {"owner": "a"})
        check_returned(first, "create_record", created, bool, "True if it stored the record")
        assert created is True
        assert second.create_record(f"{ns}/lease", {"owner": "b"}) is False, (
            f"coordination {name_of(first)!r}'s create_record stored over an existing record"
        )
        assert second.get_record(f"{ns}/lease") == {"owner": "a"}
        assert second.list_records(ns) == [f"{ns}/lease"]

    def test_create_record_refuses_bad_names(self, coordination: Coordination) -> None:
        with pytest.raises(CoordinationError):
            coordination.create_record("bad name", {})

    def test_racing_creators_exactly_one_wins_each_key(
        self, coordination: Coordination, coordination_url: str, ns: str
    ) -> None:
        require_capability(coordination, MULTIPROCESS)
        won = _race(coordination_url, ns, _create_records)

        winners = {k: [r for r, keys in won.items() if k in keys] for k in range(KEYS)}
        several = {k: racers for k, racers in winners.items() if len(racers) > 1}
        assert not several, (
            f"coordination {name_of(coordination)!r}'s create_record gave True to several "
            f"racers for {len(several)} keys (e.g. {next(iter(several.items()))}): it must "
            f"store only if absent, atomically (e.g. SET NX, O_EXCL, link)"
        )
        assert all(winners.values()), "a key nobody won"
        for k, racers in winners.items():
            assert coordination.get_record(f"{ns}/k{k}") == {"r": racers[0]}

    # -- allocate -------------------------------------------------------------------
    def test_allocate_hands_out_consecutive_disjoint_ranges(
        self, connect: Connect, ns: str
    ) -> None:
        first, second = connect(), connect()
        a = first.allocate(f"{ns}/ids", 3)
        check_returned(first, "allocate", a, int, "the first number reserved")
        b = second.allocate(f"{ns}/ids", 2)
        c = first.allocate(f"{ns}/ids", 1)
        assert a == 0
        spans = sorted([(a, 3), (b, 2), (c, 1)])
        assert all(x + n <= y for (x, n), (y, _) in itertools.pairwise(spans))
        assert first.allocate(f"{ns}/other", 1) == 0, "counters are independent"

    def test_allocate_refuses_a_count_below_one(self, coordination: Coordination, ns: str) -> None:
        with pytest.raises(CoordinationError):
            coordination.allocate(f"{ns}/ids", 0)

    def test_racing_allocators_get_disjoint_ranges(
        self, coordination: Coordination, coordination_url: str, ns: str
    ) -> None:
        require_capability(coordination, MULTIPROCESS)
        got = _race(coordination_url, ns, _allocate)

        owner: dict[int, int] = {}
        for racer, ranges in got.items():
            for start, count in ranges:
                for number in range(start, start + count):
                    assert number not in owner, (
                        f"coordination {name_of(coordination)!r}'s allocate handed number "
                        f"{number} to racers {owner[number]} and {racer}: reservations must "
                        f"be atomic"
                    )
                    owner[number] = racer

    # -- ack ---------------------------------------------------------------------------
    def test_ack_drops_claimed_items_and_ignores_unknown_ids(
        self, coordination: Coordination, ns: str, claimed_count: ClaimedCount | None
    ) -> None:
        queue = f"{ns}/q"
        coordination.enqueue(queue, make_items(0, 10))
        claimed = coordination.claim(queue, "c1", 6)
        coordination.claim(queue, "c2", 1)
        if claimed_count is not None:
            assert claimed_count(coordination, queue, "c1") == 6

        coordination.ack(queue, "c1", [*ids_of(claimed[:4]), "nobody", "u00006"])

        if claimed_count is not None:
            assert claimed_count(coordination, queue, "c1") == 2, "acked items were kept"
            assert claimed_count(coordination, queue, "c2") == 1, "another claimer's item went"
        coordination.ack(queue, "c1", ids_of(claimed[4:]))
        coordination.ack(queue, "c1", ids_of(claimed))  # again: nothing left to drop
        coordination.ack(f"{ns}/never", "c9", ["u00000"])
        if claimed_count is not None:
            assert claimed_count(coordination, queue, "c1") == 0
        assert coordination.claim(queue, "c3", 100) == make_items(7, 3), "ack touched pending items"

    def test_acked_storage_stays_empty_as_a_claimer_goes_on(
        self, coordination: Coordination, ns: str, claimed_count: ClaimedCount | None
    ) -> None:
        if claimed_count is None:
            pytest.skip("override the claimed_count fixture to test what ack drops")
        queue = f"{ns}/q"
        for round_ in range(5):
            coordination.enqueue(queue, make_items(20 * round_, 20))
            for size in (3, 7, 10):
                items = coordination.claim(queue, "c1", size)
                coordination.ack(queue, "c1", ids_of(items))
        assert claimed_count(coordination, queue, "c1") == 0

    # -- compact -----------------------------------------------------------------------
    def test_compact_replaces_the_stream_by_the_summary(self, connect: Connect, ns: str) -> None:
        first, second, reader = connect(), connect(), connect()
        stream = f"{ns}/events"
        first.append(stream, [{"n": 0}, {"n": 1}])
        second.append(stream, [{"n": 2}])
        _, old_cursor = reader.read(stream)

        compacted = first.compact(stream, [{"sum": 3}])
        check_returned(first, "compact", compacted, bool, "True if it replaced the stream")
        if not compacted:
            assert sorted(e["n"] for e in reader.read(stream)[0]) == [0, 1, 2], (
                "compact returned False but changed the stream"
            )
            return
        events, cursor = connect().read(stream)
        assert events == [{"sum": 3}], f"a reader from the start got {events!r}"
        assert reader.read(stream, old_cursor)[0] in ([], [{"sum": 3}])
        third = connect()
        third.append(stream, [{"n": 4}])
        assert reader.read(stream, cursor)[0] == [{"n": 4}], "an append after compact was lost"
        assert connect().read(stream)[0] == [{"sum": 3}, {"n": 4}]

    def test_a_reader_from_the_start_sees_old_events_or_the_summary_never_a_mix(
        self, connect: Connect, ns: str
    ) -> None:
        stream = f"{ns}/events"
        writers = [connect() for _ in range(6)]
        for n in range(60):
            writers[n % 6].append(stream, [{"n": n}])
        old = list(range(60))
        reader, compactor = connect(), connect()
        seen: list[list[dict[str, Any]]] = []
        stop = threading.Event()

        def read_again_and_again() -> None:
            while not stop.is_set() or len(seen) < 5:
                seen.append(reader.read(stream)[0])

        thread = threading.Thread(target=read_again_and_again)
        thread.start()
        try:
            compacted = compactor.compact(stream, [{"sum": sum(old)}])
        finally:
            stop.set()
            thread.join(timeout=60)
        for events in seen:
            if compacted and events == [{"sum": sum(old)}]:
                continue
            assert sorted(e["n"] for e in events) == old, (
                f"a reader from the start got {len(events)} events, neither all the old ones "
                f"nor the summary: {events[:5]!r}..."
            )
