"""The coordination conformance suite: what every ``troy.coordination`` plugin must do.

Run it against a plugin with one subclass that says where the service is::

    import pytest
    from troy.testing.coordination import CoordinationSuite

    class TestMyCoordination(CoordinationSuite):
        @pytest.fixture
        def coordination_url(self, tmp_path):
            return "mine://localhost:1234/0"

Connections are opened through the registry (``open_coordination``), exactly
as troy opens them, so the plugin must be installed.  Every test works below a
fresh name prefix, so one long-lived service can be shared by all tests.

Capabilities (``Coordination.capabilities``) the suite knows:

``"multiprocess"``
    connections opened from the same URL in other processes share one state;
    the racing tests (claimers in separate OS processes) skip without it.
"""

from __future__ import annotations

import json
import multiprocessing
import queue as queue_module
import random
import threading
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from troy.model.errors import CoordinationError
from troy.plugins.coordination.base import Coordination
from troy.plugins.registry import open_coordination

#: Opens one more connection from the suite's URL; it is closed when the test ends.
Connect = Callable[[], Coordination]

MULTIPROCESS = "multiprocess"

#: Names that every plugin must refuse, for keys, streams and queues alike.
BAD_NAMES = ["", "/a", "a/", "a//b", "..", "a/../b", "../a"]
BAD_NAMES += ["a b", "a\\b", "a:b", "ü", "a\nb", "a\n"]  # characters outside [A-Za-z0-9._-]

_OPERATIONS: dict[str, Callable[[Coordination, str], object]] = {
    "put_record": lambda c, name: c.put_record(name, {"x": 1}),
    "get_record": lambda c, name: c.get_record(name),
    "list_records": lambda c, name: c.list_records(name),
    "append": lambda c, name: c.append(name, [{"x": 1}]),
    "read": lambda c, name: c.read(name),
    "enqueue": lambda c, name: c.enqueue(name, [{"id": "a"}]),
    "claim": lambda c, name: c.claim(name, "claimer", 1),
    "withdraw": lambda c, name: c.withdraw(name, ["a"]),
}


def _require(coordination: Coordination, capability: str) -> None:
    if capability not in type(coordination).capabilities:
        pytest.skip(f"{type(coordination).__name__} does not declare capability {capability!r}")


def _items(first: int, count: int, tag: str = "u") -> list[dict[str, Any]]:
    return [
        {"id": f"{tag}{i:05d}", "n": i, "spec": {"args": [str(i)]}}
        for i in range(first, first + count)
    ]


def _ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["id"] for item in items]


def _drain(coordination: Coordination, queue: str, claimer: str, size: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    while batch := coordination.claim(queue, claimer, size):
        got.extend(batch)
    return got


class CoordinationFixtures:
    """Fixtures of the coordination suite; a subclass must override ``coordination_url``."""

    @pytest.fixture
    def coordination_url(self) -> str:
        """The URL of a coordination service (or location) the tests may write; override this."""
        pytest.fail(
            "the coordination conformance suite needs a service: override the "
            "'coordination_url' fixture in your CoordinationSuite subclass to return its URL"
        )

    @pytest.fixture
    def connect(self, coordination_url: str) -> Iterator[Connect]:
        """Opens connections from ``coordination_url``, and closes them when the test ends."""
        opened: list[Coordination] = []

        def connect() -> Coordination:
            # As a manager opens it: a brokered plugin may serve from this process.
            opened.append(open_coordination(coordination_url, serve=True))
            return opened[-1]

        yield connect
        for connection in opened:
            connection.close()

    @pytest.fixture
    def coordination(self, connect: Connect) -> Coordination:
        """One connection to the service under test."""
        return connect()

    @pytest.fixture
    def ns(self) -> str:
        """A fresh name prefix: the test's keys, streams and queues live below it."""
        return f"t{uuid.uuid4().hex[:12]}"


class NameTests(CoordinationFixtures):
    """Keys, stream and queue names are /-separated words of [A-Za-z0-9._-]; others are refused."""

    @pytest.mark.parametrize("operation", sorted(_OPERATIONS))
    def test_invalid_names_are_refused(self, coordination: Coordination, operation: str) -> None:
        for bad in BAD_NAMES:
            with pytest.raises(CoordinationError):
                _OPERATIONS[operation](coordination, bad)

    def test_valid_names_are_accepted(self, coordination: Coordination, ns: str) -> None:
        for word in ["a", "A-b_c.d", "0", ".hidden", "x..y"]:
            coordination.put_record(f"{ns}/{word}", {"word": word})
            assert coordination.get_record(f"{ns}/{word}") == {"word": word}


class RecordTests(CoordinationFixtures):
    """Records: JSON objects by key, each write replacing the whole record."""

    def test_round_trip_of_nested_json(self, coordination: Coordination, ns: str) -> None:
        record = {
            "id": "p1",
            "nested": {"list": [1, 2.5, None, True, 'ü\n"quoted"'], "empty": {}},
            "n": -3,
        }
        coordination.put_record(f"{ns}/pilot/p1", record)

        assert coordination.get_record(f"{ns}/pilot/p1") == record

    def test_put_replaces_the_whole_record(self, coordination: Coordination, ns: str) -> None:
        coordination.put_record(f"{ns}/r", {"a": 1, "b": 2})
        coordination.put_record(f"{ns}/r", {"c": 3})

        assert coordination.get_record(f"{ns}/r") == {"c": 3}

    def test_missing_record_is_none(self, coordination: Coordination, ns: str) -> None:
        coordination.put_record(f"{ns}/there", {"x": 1})

        assert coordination.get_record(f"{ns}/absent") is None
        assert coordination.get_record(f"{ns}/there/below") is None

    def test_records_are_copies(self, coordination: Coordination, ns: str) -> None:
        record: dict[str, Any] = {"list": [1]}
        coordination.put_record(f"{ns}/r", record)
        record["list"].append(2)
        fetched = coordination.get_record(f"{ns}/r")
        assert fetched is not None
        assert fetched == {"list": [1]}
        fetched["list"].append(3)

        assert coordination.get_record(f"{ns}/r") == {"list": [1]}

    def test_list_records_gives_keys_directly_below_the_prefix(
        self, coordination: Coordination, ns: str
    ) -> None:
        for key in ["service/b", "service/a", "service/a/deeper", "services/x", "other/c"]:
            coordination.put_record(f"{ns}/{key}", {"key": key})
        coordination.put_record(f"{ns}/service", {"key": "service itself"})

        assert coordination.list_records(f"{ns}/service") == [f"{ns}/service/a", f"{ns}/service/b"]
        assert coordination.list_records(f"{ns}/service/a") == [f"{ns}/service/a/deeper"]
        assert coordination.list_records(f"{ns}/nothing") == []

    def test_another_connection_sees_records(self, connect: Connect, ns: str) -> None:
        first, second = connect(), connect()
        first.put_record(f"{ns}/shared", {"v": 1})

        assert second.get_record(f"{ns}/shared") == {"v": 1}
        assert second.list_records(ns) == [f"{ns}/shared"]


class StreamTests(CoordinationFixtures):
    """Streams: append-only batches; each writer's events in order; resumable cursors."""

    def test_events_of_one_writer_come_back_in_order(
        self, coordination: Coordination, ns: str
    ) -> None:
        stream = f"{ns}/events"
        coordination.append(stream, [{"n": 0}, {"n": 1, "nested": {"k": [1]}}])
        coordination.append(stream, [{"n": 2}])

        events, _ = coordination.read(stream)

        assert events == [{"n": 0}, {"n": 1, "nested": {"k": [1]}}, {"n": 2}]

    def test_cursor_resumes_after_what_was_read(self, coordination: Coordination, ns: str) -> None:
        stream = f"{ns}/events"
        coordination.append(stream, [{"n": 0}, {"n": 1}])
        first, cursor = coordination.read(stream)
        coordination.append(stream, [{"n": 2}])
        coordination.append(stream, [{"n": 3}])

        second, cursor = coordination.read(stream, cursor)
        third, cursor = coordination.read(stream, cursor)

        assert first == [{"n": 0}, {"n": 1}]
        assert second == [{"n": 2}, {"n": 3}]
        assert third == []

    def test_cursor_survives_a_json_round_trip(self, coordination: Coordination, ns: str) -> None:
        stream = f"{ns}/events"
        coordination.append(stream, [{"n": 0}])
        _, cursor = coordination.read(stream)
        cursor = json.loads(json.dumps(cursor))
        coordination.append(stream, [{"n": 1}])

        events, cursor = coordination.read(stream, cursor)

        assert events == [{"n": 1}]
        assert json.loads(json.dumps(cursor)) == cursor

    def test_a_second_connection_sees_both_writers(self, connect: Connect, ns: str) -> None:
        stream = f"{ns}/events"
        first, second = connect(), connect()
        first.append(stream, [{"w": 1, "n": 0}, {"w": 1, "n": 1}])
        second.append(stream, [{"w": 2, "n": 0}])
        first.append(stream, [{"w": 1, "n": 2}])
        second.append(stream, [{"w": 2, "n": 1}])

        for reader in (first, second):
            events, _ = reader.read(stream)
            assert sorted(events, key=lambda e: (e["w"], e["n"])) == [
                {"w": 1, "n": 0},
                {"w": 1, "n": 1},
                {"w": 1, "n": 2},
                {"w": 2, "n": 0},
                {"w": 2, "n": 1},
            ]
            for writer in (1, 2):
                ns_of_writer = [e["n"] for e in events if e["w"] == writer]
                assert ns_of_writer == sorted(ns_of_writer), "a writer's events out of order"

    def test_cursor_from_one_connection_works_on_another(self, connect: Connect, ns: str) -> None:
        stream = f"{ns}/events"
        first, second = connect(), connect()
        first.append(stream, [{"n": 0}])
        _, cursor = first.read(stream)
        first.append(stream, [{"n": 1}])

        events, _ = second.read(stream, json.loads(json.dumps(cursor)))

        assert events == [{"n": 1}]

    def test_skip_own_passes_over_this_connections_events(self, connect: Connect, ns: str) -> None:
        stream = f"{ns}/events"
        mine, other = connect(), connect()
        mine.append(stream, [{"n": 0}])
        other.append(stream, [{"n": 1}])

        events, cursor = mine.read(stream, skip_own=True)
        assert events == [{"n": 1}]

        mine.append(stream, [{"n": 2}])
        other.append(stream, [{"n": 3}])
        events, cursor = mine.read(stream, cursor, skip_own=True)
        assert events == [{"n": 3}]
        events, _ = mine.read(stream, cursor, skip_own=True)
        assert events == []

        everything, _ = other.read(stream)
        assert sorted(e["n"] for e in everything) == [0, 1, 2, 3]
        without_skip, _ = mine.read(stream)
        assert sorted(e["n"] for e in without_skip) == [0, 1, 2, 3]

    def test_empty_batch_is_harmless(self, coordination: Coordination, ns: str) -> None:
        stream = f"{ns}/events"
        coordination.append(stream, [])
        events, cursor = coordination.read(stream)
        assert events == []
        coordination.append(stream, [{"n": 0}])
        coordination.append(stream, [])

        events, cursor = coordination.read(stream, cursor)

        assert events == [{"n": 0}]

    def test_missing_stream_reads_empty_and_the_cursor_still_works(
        self, coordination: Coordination, ns: str
    ) -> None:
        stream = f"{ns}/later"
        events, cursor = coordination.read(stream)
        assert events == []
        coordination.append(stream, [{"n": 0}])

        events, _ = coordination.read(stream, json.loads(json.dumps(cursor)))

        assert events == [{"n": 0}]

    def test_streams_are_separate(self, coordination: Coordination, ns: str) -> None:
        coordination.append(f"{ns}/pilot", [{"s": "pilot"}])
        coordination.append(f"{ns}/pilot/control", [{"s": "control"}])

        assert coordination.read(f"{ns}/pilot")[0] == [{"s": "pilot"}]
        assert coordination.read(f"{ns}/pilot/control")[0] == [{"s": "control"}]

    def test_readers_see_whole_batches_while_a_writer_appends(
        self, connect: Connect, ns: str
    ) -> None:
        stream, batches, size = f"{ns}/events", 300, 7
        writer, reader = connect(), connect()
        failures: list[BaseException] = []

        def write() -> None:
            try:
                for b in range(batches):
                    writer.append(stream, [{"b": b, "i": i, "pad": "x" * 200} for i in range(size)])
            except BaseException as exc:  # reported by the reading side
                failures.append(exc)

        thread = threading.Thread(target=write)
        thread.start()
        seen: list[dict[str, Any]] = []
        cursor = None
        try:
            while True:
                done = not thread.is_alive()  # then this read is the last one needed
                events, cursor = reader.read(stream, cursor)
                counts: dict[int, int] = {}
                for event in events:
                    counts[event["b"]] = counts.get(event["b"], 0) + 1
                assert all(n == size for n in counts.values()), f"part of a batch read: {counts}"
                seen.extend(events)
                if done:
                    break
        finally:
            thread.join()
        assert not failures, failures
        assert [(e["b"], e["i"]) for e in seen] == [
            (b, i) for b in range(batches) for i in range(size)
        ]


class QueueTests(CoordinationFixtures):
    """Queues: items claimed oldest first, each by one claimer; pending ones can be withdrawn."""

    def test_commit_records_events_and_queues_items(self, connect: Connect, ns: str) -> None:
        writer, reader = connect(), connect()
        stream, first, second = f"{ns}/events", f"{ns}/q1", f"{ns}/q2"
        writer.commit(stream, [{"n": 0}, {"n": 1}], {first: _items(0, 3), second: _items(3, 2)})

        events, _ = reader.read(stream)
        assert events == [{"n": 0}, {"n": 1}]
        assert reader.claim(first, "c", 10) == _items(0, 3)
        assert reader.claim(second, "c", 10) == _items(3, 2)

    def test_commit_with_a_bad_name_records_nothing(
        self, coordination: Coordination, ns: str
    ) -> None:
        stream, queue = f"{ns}/events", f"{ns}/q"
        with pytest.raises(CoordinationError):
            coordination.commit(stream, [{"n": 0}], {queue: _items(0, 1), "bad name": _items(1, 1)})
        events, _ = coordination.read(stream)
        assert events == [] or self._commit_is_not_atomic(coordination)
        assert coordination.claim(queue, "c", 10) == [] or self._commit_is_not_atomic(coordination)

    @staticmethod
    def _commit_is_not_atomic(coordination: Coordination) -> bool:
        """The base class' commit (append, then enqueue) is the only one allowed to be partial."""
        return type(coordination).commit is Coordination.commit

    def test_claim_is_fifo_across_enqueues(self, coordination: Coordination, ns: str) -> None:
        queue = f"{ns}/q"
        coordination.enqueue(queue, _items(0, 2))
        coordination.enqueue(queue, _items(2, 1))
        coordination.enqueue(queue, _items(3, 3))

        assert coordination.claim(queue, "c1", 100) == _items(0, 6)

    def test_claim_takes_at_most_max_items_and_the_rest_stays_in_order(
        self, coordination: Coordination, ns: str
    ) -> None:
        queue = f"{ns}/q"
        coordination.enqueue(queue, _items(0, 10))
        coordination.enqueue(queue, _items(10, 5))

        assert coordination.claim(queue, "c1", 3) == _items(0, 3)
        assert coordination.claim(queue, "c2", 4) == _items(3, 4)
        coordination.enqueue(queue, _items(15, 2))
        assert coordination.claim(queue, "c1", 9) == _items(7, 9)
        assert coordination.claim(queue, "c1", 100) == _items(16, 1)
        assert coordination.claim(queue, "c1", 100) == []

    def test_draining_in_small_batches_keeps_order(
        self, coordination: Coordination, ns: str
    ) -> None:
        queue = f"{ns}/q"
        coordination.enqueue(queue, _items(0, 500))
        coordination.enqueue(queue, _items(500, 37))

        got = _drain(coordination, queue, "c1", 7)

        assert got == _items(0, 537)

    def test_claimed_items_never_come_back(self, connect: Connect, ns: str) -> None:
        queue = f"{ns}/q"
        first, second = connect(), connect()
        first.enqueue(queue, _items(0, 5))

        assert first.claim(queue, "c1", 5) == _items(0, 5)
        assert first.claim(queue, "c1", 5) == []
        assert second.claim(queue, "c2", 5) == []
        assert first.withdraw(queue, _ids(_items(0, 5))) == []

    def test_another_connection_claims_what_one_enqueued(self, connect: Connect, ns: str) -> None:
        queue = f"{ns}/q"
        first, second = connect(), connect()
        first.enqueue(queue, _items(0, 4))

        assert second.claim(queue, "c2", 3) == _items(0, 3)
        assert first.claim(queue, "c1", 3) == _items(3, 1)

    def test_withdraw_removes_only_pending_items(self, coordination: Coordination, ns: str) -> None:
        queue = f"{ns}/q"
        coordination.enqueue(queue, _items(0, 6))
        coordination.enqueue(queue, _items(6, 4))
        assert coordination.claim(queue, "c1", 3) == _items(0, 3)

        removed = coordination.withdraw(queue, ["u00001", "u00004", "u00007", "u00007", "nope"])

        assert sorted(removed) == ["u00004", "u00007"]
        assert _ids(coordination.claim(queue, "c1", 100)) == [
            "u00003",
            "u00005",
            "u00006",
            "u00008",
            "u00009",
        ]

    def test_withdraw_of_nothing_removes_nothing(self, coordination: Coordination, ns: str) -> None:
        queue = f"{ns}/q"
        coordination.enqueue(queue, _items(0, 3))

        assert coordination.withdraw(queue, []) == []
        assert coordination.withdraw(queue, ["nope"]) == []
        assert coordination.claim(queue, "c1", 10) == _items(0, 3)

    def test_withdraw_everything_empties_the_queue(
        self, coordination: Coordination, ns: str
    ) -> None:
        queue = f"{ns}/q"
        coordination.enqueue(queue, _items(0, 3))
        coordination.enqueue(queue, _items(3, 3))

        assert sorted(coordination.withdraw(queue, _ids(_items(0, 6)))) == _ids(_items(0, 6))
        assert coordination.claim(queue, "c1", 10) == []

    def test_missing_queue_is_empty(self, coordination: Coordination, ns: str) -> None:
        assert coordination.claim(f"{ns}/none", "c1", 10) == []
        assert coordination.withdraw(f"{ns}/none", ["u00000"]) == []

    def test_queues_are_separate(self, coordination: Coordination, ns: str) -> None:
        coordination.enqueue(f"{ns}/pilot", _items(0, 2, "a"))
        coordination.enqueue(f"{ns}/pilot/sub", _items(0, 2, "b"))

        assert coordination.claim(f"{ns}/pilot", "c1", 10) == _items(0, 2, "a")
        assert coordination.claim(f"{ns}/pilot/sub", "c1", 10) == _items(0, 2, "b")

    def test_empty_enqueue_is_harmless(self, coordination: Coordination, ns: str) -> None:
        queue = f"{ns}/q"
        coordination.enqueue(queue, [])
        assert coordination.claim(queue, "c1", 10) == []
        coordination.enqueue(queue, _items(0, 1))
        assert coordination.claim(queue, "c1", 10) == _items(0, 1)


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
            got.extend(_ids(batch))
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
        _require(coordination, MULTIPROCESS)
        queue, rng, everything = f"{ns}/q", random.Random(7), list[str]()
        while len(everything) < 2000:
            items = _items(len(everything), rng.randint(1, 150))
            coordination.enqueue(queue, items)
            everything.extend(_ids(items))

        claimed = _race(coordination_url, queue, claimers=4)

        all_claimed = [i for got in claimed.values() for i in got]
        assert _duplicates(all_claimed) == [], "items claimed twice"
        assert sorted(all_claimed) == sorted(everything)
        assert coordination.claim(queue, "late", 10) == []

    def test_withdraw_racing_claimers_splits_items_cleanly(
        self, coordination: Coordination, coordination_url: str, ns: str
    ) -> None:
        _require(coordination, MULTIPROCESS)
        queue, rng, everything = f"{ns}/q", random.Random(11), list[str]()
        while len(everything) < 2000:
            items = _items(len(everything), rng.randint(1, 150))
            coordination.enqueue(queue, items)
            everything.extend(_ids(items))
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
        leftover = _ids(_drain(coordination, queue, "late", 50))

        all_claimed = [i for got in claimed.values() for i in got] + leftover
        assert _duplicates(all_claimed) == [], "items claimed twice"
        assert _duplicates(withdrawn) == [], "items withdrawn twice"
        assert set(all_claimed) & set(withdrawn) == set(), "items both claimed and withdrawn"
        assert sorted(all_claimed + withdrawn) == sorted(everything)


class CoordinationSuite(NameTests, RecordTests, StreamTests, QueueTests, QueueRaceTests):
    """Every conformance test; subclass it and override ``coordination_url``."""
