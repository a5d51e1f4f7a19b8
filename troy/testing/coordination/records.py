"""Records: JSON objects by key, each write replacing the whole record."""

from __future__ import annotations

from typing import Any

from troy.plugins.coordination.base import Coordination
from troy.testing.coordination.base import Connect, CoordinationFixtures


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
