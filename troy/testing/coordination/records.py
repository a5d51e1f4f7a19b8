"""Records: JSON objects by key, each write replacing the whole record.

``list_records(prefix)`` lists the keys of records exactly one word below
``prefix``: the keys ``prefix + "/" + word``, compared character for character.
No character of a prefix is a wildcard and case counts, so a plugin that
matches with SQL ``LIKE`` (``_`` and ``%``, case-insensitive), a glob or a
regular expression (``.``) fails here, as does one that lists deeper keys or
keys that merely start with the prefix.
"""

from __future__ import annotations

from typing import Any

from troy.plugins.coordination.base import Coordination
from troy.testing.coordination.base import (
    Connect,
    CoordinationFixtures,
    check_returned,
    name_of,
)


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

    def test_list_records_matches_the_prefix_exactly(
        self, coordination: Coordination, ns: str
    ) -> None:
        prefix = f"{ns}/pilot_1.x-y"
        below = [f"{prefix}/B_c", f"{prefix}/a"]
        lookalikes = [
            f"{ns}/PILOT_1.x-y/z",  # the prefix in other case
            f"{ns}/pilot_1.X-Y/z",
            f"{ns}/pilotA1.x-y/z",  # '_' taken as any one character (SQL LIKE)
            f"{ns}/pilot_1Zx-y/z",  # '.' taken as any one character (a regular expression)
            f"{ns}/pilot_1.x-yz/z",  # the prefix followed by more than '/'
            f"{ns}/pilot_1.x-y_/z",
            f"{ns}/x/pilot_1.x-y/z",  # the prefix further along the key
            f"{prefix}/a/deeper",  # more than one word below it
            prefix,  # the prefix itself
        ]
        for key in below + lookalikes:
            coordination.put_record(key, {"key": key})

        listed = coordination.list_records(prefix)

        check_returned(coordination, "list_records", listed, list, "a sorted list of keys")
        wrong = sorted(set(listed) - set(below))
        assert not wrong, (
            f"coordination {name_of(coordination)!r}'s list_records({prefix!r}) listed "
            f"{wrong}, which are not directly below it: list the keys prefix + '/' + one "
            "word, matching the prefix character for character and case-sensitively "
            "(no character is a wildcard: not '_' or '%' as in SQL LIKE, not '.' as in a "
            "regular expression)"
        )
        assert listed == below, f"list_records({prefix!r}) gave {listed}, expected {below}"
        upper = f"{ns}/PILOT_1.x-y"
        assert coordination.list_records(upper) == [f"{upper}/z"], "list_records is case-blind"

    def test_get_record_returns_a_dict_or_none(self, coordination: Coordination, ns: str) -> None:
        coordination.put_record(f"{ns}/r", {"x": 1})

        got = coordination.get_record(f"{ns}/r")
        check_returned(coordination, "get_record", got, dict, "the record as a dict (a copy)")
        missing = coordination.get_record(f"{ns}/missing")
        assert missing is None, (
            f"coordination {name_of(coordination)!r}'s get_record of a missing key returned "
            f"{type(missing).__name__} {missing!r}, expected None"
        )

    def test_list_records_returns_a_sorted_list_of_keys(
        self, coordination: Coordination, ns: str
    ) -> None:
        for word in ["b", "a", "c"]:
            coordination.put_record(f"{ns}/r/{word}", {"word": word})

        listed = coordination.list_records(f"{ns}/r")

        check_returned(coordination, "list_records", listed, list, "a sorted list of keys")
        assert all(isinstance(key, str) for key in listed), (
            f"list_records gave {listed!r}: each key must be a str"
        )
        assert listed == [f"{ns}/r/a", f"{ns}/r/b", f"{ns}/r/c"], (
            f"list_records gave {listed}: the keys directly below the prefix, sorted"
        )
        assert coordination.list_records(f"{ns}/none") == [], "a prefix with no keys lists []"

    def test_another_connection_sees_records(self, connect: Connect, ns: str) -> None:
        first, second = connect(), connect()
        first.put_record(f"{ns}/shared", {"v": 1})

        assert second.get_record(f"{ns}/shared") == {"v": 1}
        assert second.list_records(ns) == [f"{ns}/shared"]
