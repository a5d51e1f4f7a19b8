"""Commit: a batch of events and items for several queues, recorded together."""

from __future__ import annotations

import pytest

from troy.model.errors import CoordinationError
from troy.plugins.coordination.base import Coordination
from troy.testing.coordination.base import Connect, CoordinationFixtures, make_items


class CommitTests(CoordinationFixtures):
    """Commit appends events to a stream and enqueues items, all of it or (if refused) none."""

    def test_commit_records_events_and_queues_items(self, connect: Connect, ns: str) -> None:
        writer, reader = connect(), connect()
        stream, first, second = f"{ns}/events", f"{ns}/q1", f"{ns}/q2"
        writer.commit(
            stream, [{"n": 0}, {"n": 1}], {first: make_items(0, 3), second: make_items(3, 2)}
        )

        events, _ = reader.read(stream)
        assert events == [{"n": 0}, {"n": 1}]
        assert reader.claim(first, "c", 10) == make_items(0, 3)
        assert reader.claim(second, "c", 10) == make_items(3, 2)

    def test_commit_with_a_bad_name_records_nothing(
        self, coordination: Coordination, ns: str
    ) -> None:
        stream, queue = f"{ns}/events", f"{ns}/q"
        with pytest.raises(CoordinationError):
            coordination.commit(
                stream, [{"n": 0}], {queue: make_items(0, 1), "bad name": make_items(1, 1)}
            )
        events, _ = coordination.read(stream)
        assert events == [] or self._commit_is_not_atomic(coordination)
        assert coordination.claim(queue, "c", 10) == [] or self._commit_is_not_atomic(coordination)

    @staticmethod
    def _commit_is_not_atomic(coordination: Coordination) -> bool:
        """The base class' commit (append, then enqueue) is the only one allowed to be partial."""
        return type(coordination).commit is Coordination.commit
