"""Waiting for work (contract 1.4): an idle claimer blocks instead of polling, and wakes."""

from __future__ import annotations

import threading
import time

import pytest

from troy.plugins.coordination.base import Coordination
from troy.testing.coordination.base import Connect, CoordinationFixtures, check_returned, make_items

#: Seconds a wait is asked to last where something should end it at once: far longer
#: than any answer takes, so a wait that was not woken is told apart without timing it.
LONG = 3.0


def caught_up(coordination: Coordination, queue: str, stream: str) -> None:
    """Skip where the plugin cannot block; else leave it waiting-ready: a first wait
    (whatever it learns first), then a claim, as an idle agent does."""
    if not blocks(coordination, queue, stream):
        pytest.skip("this plugin cannot block: its claimers poll")
    coordination.wait_for_work(queue, stream, None, 0.05)
    coordination.claim(queue, "c1", 10)


def blocks(coordination: Coordination, queue: str, stream: str) -> bool:
    """Claim and read once (the caller is up to date), then ask for a wait: can it block?"""
    coordination.claim(queue, "c1", 10)
    coordination.read(stream)
    can = coordination.wait_for_work(queue, stream, None, 0.05)
    check_returned(coordination, "wait_for_work", can, bool, "True or False")
    return can


class WaitTests(CoordinationFixtures):
    """wait_for_work: False at once where the plugin cannot block; else woken by news."""

    def test_a_plugin_that_cannot_wait_says_so_at_once(
        self, coordination: Coordination, ns: str
    ) -> None:
        if blocks(coordination, f"{ns}/q", f"{ns}/control"):
            pytest.skip("this plugin blocks")
        started = time.monotonic()
        assert coordination.wait_for_work(f"{ns}/q", f"{ns}/control", None, LONG) is False
        assert time.monotonic() - started < LONG, "a wait that cannot block must not sleep"

    def test_an_enqueue_wakes_a_waiter(
        self, coordination: Coordination, connect: Connect, ns: str
    ) -> None:
        queue, stream = f"{ns}/q", f"{ns}/control"
        caught_up(coordination, queue, stream)
        other = connect()
        # Before the wait is asked for: what came since the last claim must end it at once.
        other.enqueue(queue, make_items(0, 1))
        started = time.monotonic()
        assert coordination.wait_for_work(queue, stream, None, LONG) is True
        assert time.monotonic() - started < LONG, "an enqueue since the last claim did not wake"
        assert coordination.claim(queue, "c1", 10) == make_items(0, 1)
        # While it waits: a thread enqueues through the other connection.
        later = threading.Timer(0.05, other.enqueue, (queue, make_items(1, 1)))
        later.start()
        coordination.wait_for_work(queue, stream, None, LONG)
        later.join()
        assert coordination.claim(queue, "c1", 10) == make_items(1, 1)

    def test_an_event_on_the_stream_wakes_a_waiter(
        self, coordination: Coordination, connect: Connect, ns: str
    ) -> None:
        queue, stream = f"{ns}/q", f"{ns}/control"
        caught_up(coordination, queue, stream)
        _, cursor = coordination.read(stream)
        connect().append(stream, [{"kind": "terminate"}])
        started = time.monotonic()
        assert coordination.wait_for_work(queue, stream, cursor, LONG) is True
        assert time.monotonic() - started < LONG, "an event after the cursor did not wake"
        events, _ = coordination.read(stream, cursor)
        assert events == [{"kind": "terminate"}]
