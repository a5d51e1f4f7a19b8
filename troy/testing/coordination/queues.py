"""Queues: claim oldest first, each item by one claimer; withdraw pending items."""

from __future__ import annotations

from troy.plugins.coordination.base import Coordination
from troy.testing.coordination.base import (
    Connect,
    CoordinationFixtures,
    check_returned,
    drain,
    ids_of,
    make_items,
)


class QueueTests(CoordinationFixtures):
    """Queues: items claimed oldest first, each by one claimer; pending ones can be withdrawn."""

    def test_claim_and_withdraw_return_lists(self, coordination: Coordination, ns: str) -> None:
        queue = f"{ns}/q"
        coordination.enqueue(queue, make_items(0, 4))

        claimed = coordination.claim(queue, "c1", 2)
        check_returned(coordination, "claim", claimed, list, "a list of the items claimed")
        assert all(isinstance(item, dict) for item in claimed), (
            f"claim gave {claimed!r}: each item must be a dict, as enqueued"
        )
        withdrawn = coordination.withdraw(queue, ["u00002"])
        check_returned(coordination, "withdraw", withdrawn, list, "a list of the ids removed")
        assert withdrawn == ["u00002"], f"withdraw gave {withdrawn!r}, expected ['u00002']"
        check_returned(coordination, "claim", coordination.claim(queue, "c1", 5), list, "a list")

    def test_claim_is_fifo_across_enqueues(self, coordination: Coordination, ns: str) -> None:
        queue = f"{ns}/q"
        coordination.enqueue(queue, make_items(0, 2))
        coordination.enqueue(queue, make_items(2, 1))
        coordination.enqueue(queue, make_items(3, 3))

        assert coordination.claim(queue, "c1", 100) == make_items(0, 6)

    def test_claim_takes_at_most_max_items_and_the_rest_stays_in_order(
        self, coordination: Coordination, ns: str
    ) -> None:
        queue = f"{ns}/q"
        coordination.enqueue(queue, make_items(0, 10))
        coordination.enqueue(queue, make_items(10, 5))

        assert coordination.claim(queue, "c1", 3) == make_items(0, 3)
        assert coordination.claim(queue, "c2", 4) == make_items(3, 4)
        coordination.enqueue(queue, make_items(15, 2))
        assert coordination.claim(queue, "c1", 9) == make_items(7, 9)
        assert coordination.claim(queue, "c1", 100) == make_items(16, 1)
        assert coordination.claim(queue, "c1", 100) == []

    def test_draining_in_small_batches_keeps_order(
        self, coordination: Coordination, ns: str
    ) -> None:
        queue = f"{ns}/q"
        coordination.enqueue(queue, make_items(0, 500))
        coordination.enqueue(queue, make_items(500, 37))

        got = drain(coordination, queue, "c1", 7)

        assert got == make_items(0, 537)

    def test_claimed_items_never_come_back(self, connect: Connect, ns: str) -> None:
        queue = f"{ns}/q"
        first, second = connect(), connect()
        first.enqueue(queue, make_items(0, 5))

        assert first.claim(queue, "c1", 5) == make_items(0, 5)
        assert first.claim(queue, "c1", 5) == []
        assert second.claim(queue, "c2", 5) == []
        assert first.withdraw(queue, ids_of(make_items(0, 5))) == []

    def test_another_connection_claims_what_one_enqueued(self, connect: Connect, ns: str) -> None:
        queue = f"{ns}/q"
        first, second = connect(), connect()
        first.enqueue(queue, make_items(0, 4))

        assert second.claim(queue, "c2", 3) == make_items(0, 3)
        assert first.claim(queue, "c1", 3) == make_items(3, 1)

    def test_withdraw_removes_only_pending_items(self, coordination: Coordination, ns: str) -> None:
        queue = f"{ns}/q"
        coordination.enqueue(queue, make_items(0, 6))
        coordination.enqueue(queue, make_items(6, 4))
        assert coordination.claim(queue, "c1", 3) == make_items(0, 3)

        removed = coordination.withdraw(queue, ["u00001", "u00004", "u00007", "u00007", "nope"])

        assert sorted(removed) == ["u00004", "u00007"]
        assert ids_of(coordination.claim(queue, "c1", 100)) == [
            "u00003",
            "u00005",
            "u00006",
            "u00008",
            "u00009",
        ]

    def test_withdraw_of_nothing_removes_nothing(self, coordination: Coordination, ns: str) -> None:
        queue = f"{ns}/q"
        coordination.enqueue(queue, make_items(0, 3))

        assert coordination.withdraw(queue, []) == []
        assert coordination.withdraw(queue, ["nope"]) == []
        assert coordination.claim(queue, "c1", 10) == make_items(0, 3)

    def test_withdraw_everything_empties_the_queue(
        self, coordination: Coordination, ns: str
    ) -> None:
        queue = f"{ns}/q"
        coordination.enqueue(queue, make_items(0, 3))
        coordination.enqueue(queue, make_items(3, 3))

        assert sorted(coordination.withdraw(queue, ids_of(make_items(0, 6)))) == ids_of(
            make_items(0, 6)
        )
        assert coordination.claim(queue, "c1", 10) == []

    def test_missing_queue_is_empty(self, coordination: Coordination, ns: str) -> None:
        assert coordination.claim(f"{ns}/none", "c1", 10) == []
        assert coordination.withdraw(f"{ns}/none", ["u00000"]) == []

    def test_queues_are_separate(self, coordination: Coordination, ns: str) -> None:
        coordination.enqueue(f"{ns}/pilot", make_items(0, 2, "a"))
        coordination.enqueue(f"{ns}/pilot/sub", make_items(0, 2, "b"))

        assert coordination.claim(f"{ns}/pilot", "c1", 10) == make_items(0, 2, "a")
        assert coordination.claim(f"{ns}/pilot/sub", "c1", 10) == make_items(0, 2, "b")

    def test_empty_enqueue_is_harmless(self, coordination: Coordination, ns: str) -> None:
        queue = f"{ns}/q"
        coordination.enqueue(queue, [])
        assert coordination.claim(queue, "c1", 10) == []
        coordination.enqueue(queue, make_items(0, 1))
        assert coordination.claim(queue, "c1", 10) == make_items(0, 1)
