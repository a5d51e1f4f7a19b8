"""Names: keys, streams and queues are /-separated words of [A-Za-z0-9._-]; others are refused."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from troy.model.errors import CoordinationError
from troy.plugins.coordination.base import Coordination
from troy.testing.coordination.base import CoordinationFixtures, name_of

#: Names that every plugin must refuse, for keys, streams and queues alike.
BAD_NAMES = ["", "/a", "a/", "a//b", "..", "a/../b", "../a"]
BAD_NAMES += ["a b", "a\\b", "a:b", "ü", "a\nb", "a\n"]  # characters outside [A-Za-z0-9._-]
BAD_NAMES += ["a%", "a*", "a?", "a[b]", "a/*", "%"]  # wildcards of SQL LIKE and of globs

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


class NameTests(CoordinationFixtures):
    """Keys, stream and queue names are /-separated words of [A-Za-z0-9._-]; others are refused."""

    @pytest.mark.parametrize("operation", sorted(_OPERATIONS))
    def test_invalid_names_are_refused(self, coordination: Coordination, operation: str) -> None:
        accepted = []
        for bad in BAD_NAMES:
            try:
                _OPERATIONS[operation](coordination, bad)
            except CoordinationError:
                continue
            accepted.append(bad)
        assert not accepted, (
            f"coordination {name_of(coordination)!r}'s {operation} accepted the names "
            f"{accepted}: names are /-separated words of [A-Za-z0-9._-] ('.' and '..' not a "
            "word); refuse others with CoordinationError (check_name does)"
        )

    def test_valid_names_are_accepted(self, coordination: Coordination, ns: str) -> None:
        for word in ["a", "A-b_c.d", "0", ".hidden", "x..y"]:
            coordination.put_record(f"{ns}/{word}", {"word": word})
            assert coordination.get_record(f"{ns}/{word}") == {"word": word}
