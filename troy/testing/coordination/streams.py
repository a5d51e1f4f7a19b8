"""Streams and their read cursors: append-only batches, each writer's events in order."""

from __future__ import annotations

import json
import threading
from typing import Any

from troy.plugins.coordination.base import Coordination
from troy.testing.coordination.base import Connect, CoordinationFixtures, check_returned


class StreamTests(CoordinationFixtures):
    """Streams: append-only batches; each writer's events in order; resumable cursors."""

    def test_read_returns_a_list_of_events_and_a_cursor(
        self, coordination: Coordination, ns: str
    ) -> None:
        stream = f"{ns}/events"
        coordination.append(stream, [{"n": 0}])

        result = coordination.read(stream)

        check_returned(coordination, "read", result, tuple, "a tuple (events, cursor)")
        assert len(result) == 2, f"read returned {len(result)} values, expected (events, cursor)"
        events, cursor = result
        check_returned(coordination, "read", events, list, "its events as a list of dicts")
        assert events == [{"n": 0}], f"read gave events {events!r}, expected [{{'n': 0}}]"
        assert json.loads(json.dumps(cursor)) == cursor, f"cursor {cursor!r} is not JSON-ready"

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
