"""The `memory` coordination: records, streams and queues in this process (memory://<name>).

Connections opened from the same URL in one process share one state; other
processes (so real agents) cannot see it, so it does not declare "multiprocess".
Values are stored as JSON, as a real service would store them: what is not
JSON-ready is refused, and every read returns fresh copies.
"""

import itertools
import json
import threading
from collections.abc import Collection, Mapping, Sequence
from typing import Any, ClassVar

from troy.model.errors import CoordinationError
from troy.plugins.coordination.base import Coordination, Cursor, check_name


class _State:
    """What every connection to one URL shares."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.records: dict[str, str] = {}  # key -> JSON text
        #: stream -> (writing connection, JSON text) per event; a cursor is an index here.
        self.streams: dict[str, list[tuple[int, str]]] = {}
        self.queues: dict[str, list[dict[str, Any]]] = {}


_STATES: dict[str, _State] = {}
_STATES_LOCK = threading.Lock()
_CONNECTIONS = itertools.count(1)


def _dumps(value: Any, what: str) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise CoordinationError(f"{what} is not JSON-ready: {exc}") from exc


def _position(cursor: Cursor) -> int:
    if cursor is None:
        return 0
    if type(cursor) is int and cursor >= 0:
        return cursor
    raise CoordinationError(f"not a memory coordination stream cursor: {cursor!r:.200}")


class MemoryCoordination(Coordination):
    """Keeps records, streams and queues in dicts shared by the connections to one URL."""

    name: ClassVar[str] = "memory"
    schemes: ClassVar[tuple[str, ...]] = ("memory",)
    capabilities: ClassVar[frozenset[str]] = frozenset()  # no "multiprocess": one process only

    def __init__(self, url: str, *, serve: bool = False) -> None:
        super().__init__(url, serve=serve)
        with _STATES_LOCK:
            self._state = _STATES.setdefault(url, _State())
            self._connection = next(_CONNECTIONS)  # marks this connection's own events

    # -- records -----------------------------------------------------------
    def put_record(self, key: str, record: Mapping[str, Any]) -> None:
        text = _dumps(dict(record), f"record {key}")
        with self._state.lock:
            self._state.records[check_name(key)] = text

    def get_record(self, key: str) -> dict[str, Any] | None:
        with self._state.lock:
            text = self._state.records.get(check_name(key))
        if text is None:
            return None
        record: dict[str, Any] = json.loads(text)
        return record

    def list_records(self, prefix: str) -> list[str]:
        start = check_name(prefix) + "/"
        with self._state.lock:
            return sorted(
                key
                for key in self._state.records
                if key.startswith(start) and "/" not in key[len(start) :]
            )

    # -- streams -----------------------------------------------------------
    def append(self, stream: str, events: Sequence[Mapping[str, Any]]) -> None:
        check_name(stream)
        batch = [(self._connection, _dumps(dict(event), f"event for {stream}")) for event in events]
        with self._state.lock:  # one extend under the lock: readers see all of it or none
            self._state.streams.setdefault(stream, []).extend(batch)

    def read(
        self, stream: str, cursor: Cursor = None, skip_own: bool = False
    ) -> tuple[list[dict[str, Any]], Cursor]:
        start = _position(cursor)  # the number of events already passed
        check_name(stream)
        with self._state.lock:
            log = self._state.streams.get(stream, [])
            new = log[start:]
        skipped = self._connection if skip_own else None
        events = [json.loads(text) for writer, text in new if writer != skipped]
        return events, start + len(new)

    # -- queues ------------------------------------------------------------
    def enqueue(self, queue: str, items: Sequence[Mapping[str, Any]]) -> None:
        check_name(queue)
        batch: list[dict[str, Any]] = []
        for item in items:
            if not isinstance(item, Mapping) or not isinstance(item.get("id"), str):
                raise CoordinationError(f"queue item without a string 'id': {item!r:.200}")
            batch.append(json.loads(_dumps(dict(item), f"item {item['id']} for {queue}")))
        with self._state.lock:
            self._state.queues.setdefault(queue, []).extend(batch)

    def claim(self, queue: str, claimer: str, max_items: int) -> list[dict[str, Any]]:
        check_name(queue)
        count = max(max_items, 0)
        with self._state.lock:
            pending = self._state.queues.get(queue, [])
            taken = pending[:count]
            del pending[:count]
        return taken  # each item leaves the queue, so no copy is needed

    def withdraw(self, queue: str, ids: Collection[str]) -> list[str]:
        check_name(queue)
        wanted = set(ids)
        with self._state.lock:
            pending = self._state.queues.get(queue, [])
            removed = [item["id"] for item in pending if item["id"] in wanted]
            pending[:] = [item for item in pending if item["id"] not in wanted]
        return removed
