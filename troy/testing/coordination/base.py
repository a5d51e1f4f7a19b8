"""The fixtures base of the coordination suite, and the helpers its test mixins share."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from troy.plugins.coordination.base import Coordination
from troy.plugins.registry import open_coordination

#: Opens one more connection from the suite's URL; it is closed when the test ends.
Connect = Callable[[], Coordination]

MULTIPROCESS = "multiprocess"


def require_capability(coordination: Coordination, capability: str) -> None:
    """Skips the test, saying why, unless the plugin declares ``capability``."""
    if capability not in type(coordination).capabilities:
        pytest.skip(f"{type(coordination).__name__} does not declare capability {capability!r}")


def make_items(first: int, count: int, tag: str = "u") -> list[dict[str, Any]]:
    """Queue items with ids ``<tag>00000``, ``<tag>00001``, ... numbered from ``first``."""
    return [
        {"id": f"{tag}{i:05d}", "n": i, "spec": {"args": [str(i)]}}
        for i in range(first, first + count)
    ]


def ids_of(items: list[dict[str, Any]]) -> list[str]:
    return [item["id"] for item in items]


def drain(coordination: Coordination, queue: str, claimer: str, size: int) -> list[dict[str, Any]]:
    """Everything left in ``queue``, claimed ``size`` items at a time."""
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
