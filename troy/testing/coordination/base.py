"""The fixtures base of the coordination suite, and the helpers its test mixins share."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from troy.plugins.coordination.base import Coordination
from troy.plugins.registry import open_coordination
from troy.testing.overrides import fixture_needed

#: Opens one more connection from the suite's URL; it is closed when the test ends.
Connect = Callable[[], Coordination]

MULTIPROCESS = "multiprocess"


def require_capability(coordination: Coordination, capability: str) -> None:
    """Skips the test, saying why, unless the plugin declares ``capability``."""
    if capability not in type(coordination).capabilities:
        pytest.skip(f"{type(coordination).__name__} does not declare capability {capability!r}")


def name_of(coordination: Coordination) -> str:
    """The plugin's entry-point name (its class name if it sets none), for messages."""
    return str(getattr(type(coordination), "name", type(coordination).__name__))


def check_returned(
    coordination: Coordination, call: str, value: object, kind: type, expected: str
) -> None:
    """Assert ``value``, what ``call`` returned, is a ``kind``; else say what was expected."""
    assert isinstance(value, kind), (
        f"coordination {name_of(coordination)!r}'s {call} returned {type(value).__name__} "
        f"{value!r:.80}, expected {expected}"
    )


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
        fixture_needed(
            "CoordinationSuite",
            "coordination_url",
            "the URL of a coordination service your plugin serves, which the tests may "
            "write (each test works below a fresh name prefix, so it may be shared)",
            '"mine://localhost:6400/0"',
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
