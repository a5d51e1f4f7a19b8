"""The coordination contract: the durable channel between managers and agents.

Three primitives carry everything troy keeps about a run, so that a new
process can reconnect by id and agents on other hosts can take part:

- **records**: small JSON documents by key (services, pilots); a write replaces
  the whole record atomically.
- **streams**: append-only event logs with many writers and resumable readers.
  Events of one writer are read in the order written; events of different
  writers may interleave in any order (readers order them by content).
- **queues**: work items (dicts with an ``"id"``) that claimers take atomically;
  no item is ever handed to two claimers, even from different hosts.

Keys, stream names and queue names are ``/``-separated words of
``[A-Za-z0-9._-]``.

Failures.  Opening a connection checks that the service answers and raises
CoordinationError at once if it does not.  Afterwards, a plugin retries
transient outages (a server restarting, a broker whose host restarts) inside
each call for up to ``retry`` seconds (URL query parameter, default
DEFAULT_RETRY), then raises CoordinationError naming the service.  No method
ever leaves a half-written record or event batch, and a call retried after an
unknown outcome must not enqueue an item twice.  ``commit`` is all-or-nothing
where a plugin overrides it; the default appends, then enqueues.

Contract 1.2 adds what durability needs: ``create_record`` (store only if
absent: leases), ``allocate`` (an atomic counter: unit ids), ``ack`` (claimed
items acknowledged and dropped) and ``compact`` (a finished stream replaced by
one summary).  Their defaults let a 1.1 plugin keep working: ``create_record``
is then not atomic across processes, and ``ack``/``compact`` keep everything.

Contract 1.3 adds secrets: ``public_url`` (the URL as it may be shown, recorded
and put on an agent's command line) and ``agent_secrets`` (what an agent on
another host needs besides it, handed over in the agent's environment; see
troy.model.secrets).  Options declared ``secret=True`` are never shown.

Contract 1.4 adds ``wait_for_work``: an idle agent blocks on the service until
its queue may have items or its control stream has events, instead of polling.
The default cannot block and says so at once (the agent then polls, backing off).
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar

from troy.model import secrets as secret_values
from troy.model.errors import CoordinationError
from troy.plugins import options
from troy.plugins.options import Option

_log = logging.getLogger("troy.coordination")

#: An opaque, JSON-ready position in a stream; None means "from the start".
Cursor = Any

#: Seconds a call keeps retrying a service that does not answer, unless the URL says ?retry=.
DEFAULT_RETRY = 30.0

_NAME = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")


#: This host's name as it may appear in coordination names.
HOST = re.sub(r"[^A-Za-z0-9_-]+", "_", socket.gethostname())[:48] or "host"


#: The version of this contract, MAJOR.MINOR; a plugin says which it was written for in
#: ``contract_version``.  A new MAJOR breaks older plugins; a new MINOR only adds, with defaults.
CONTRACT_VERSION = "1.4"
#: What each version changed (the registry quotes it when a plugin's version does not fit).
CONTRACT_CHANGES: dict[str, str] = {
    "1.0": "versioned from here on: records, streams, queues; commit and close with defaults",
    "1.1": "option_specs and check_options: the options a coordination takes in its URL's query "
    "are declared (default: none; an undeclared one is refused)",
    "1.2": "create_record (store if absent), allocate (atomic counter), ack (claimed items "
    "dropped) and compact (a stream replaced by a summary); defaults keep 1.1 plugins working",
    "1.3": "public_url and agent_secrets (secrets never on a command line, in a record or "
    "message); Option(secret=True); defaults split the URL's password and secret options",
    "1.4": "wait_for_work (an idle claimer blocks until its queue or control stream changes); "
    "the default returns False at once and the claimer polls with back-off",
}


def new_writer_id() -> str:
    """A writer/connection id unique across hosts and processes: host-pid-random."""
    return f"{HOST}-{os.getpid()}-{secrets.token_hex(4)}"


def encode_array(
    values: Iterable[Mapping[str, Any]],
    encode: Callable[[Any, str], bytes],
    what: str,
    end: bytes = b"",
) -> bytes:
    """``[v1,v2,...]`` and ``end``, each value by ``encode``, built value by value in one
    buffer: a bulk batch is held about once (encoding the list at once held a copy of
    every dict, the text, its bytes and any concatenation together)."""
    buffer = bytearray(b"[")
    for value in values:
        buffer += encode(value if type(value) is dict else dict(value), what)
        buffer += b","
    if len(buffer) > 1:
        del buffer[-1]
    buffer += b"]"
    buffer += end
    return bytes(buffer)


def parse_each(parts: Sequence[bytes], where: str) -> list[Any]:
    """The JSON value of each stored queue item; one that is not JSON is dropped with a warning.

    For a plugin's ``claim``: whoever can write the queue can leave anything in
    it, and one bad item must not hide the good ones claimed with it.
    """
    values = []
    for part in parts:
        try:
            values.append(json.loads(part))
        except (ValueError, RecursionError) as exc:
            _log.warning("dropped a queue item that is not JSON in %s: %.80r: %s", where, part, exc)
    return values


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid key/stream/queue name, else raise CoordinationError."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise CoordinationError(f"invalid coordination name {name!r}")
    if any(word in (".", "..") for word in name.split("/")):
        raise CoordinationError(f"invalid coordination name {name!r}")
    return name


class Coordination(ABC):
    """One connection to a coordination service, opened from a URL."""

    #: Entry-point name; equals the URL scheme.
    name: ClassVar[str]
    schemes: ClassVar[tuple[str, ...]] = ()
    capabilities: ClassVar[frozenset[str]] = frozenset()
    #: The contract version it was written for (MAJOR.MINOR).
    contract_version: ClassVar[str] = CONTRACT_VERSION

    #: The options it takes in its URL's query (``?retry=5``): name -> Option.
    option_specs: ClassVar[Mapping[str, Option]] = MappingProxyType({})

    @classmethod
    def check_options(cls, given: Mapping[str, Any]) -> dict[str, Any]:
        """The URL's options as used, defaults filled in; BadDescription names a wrong one.

        troy calls it with `troy.plugins.options.url_options` of the URL before it
        opens a connection.
        """
        return options.check_options(
            "coordination", cls.name, cls.option_specs, given, "coordination URL ?"
        )

    def __init__(self, url: str, *, serve: bool = False) -> None:
        """Connect to the service at ``url``; CoordinationError if it does not answer.

        ``serve`` is True for managers (services in an application process) and
        False for agents: a plugin whose service lives inside a manager process
        (a broker) may start it only when ``serve`` is True.
        """
        self.url = url
        self.serve = serve
        self._writer_pid = 0
        self._writer_id = ""

    @property
    def writer(self) -> str:
        """This connection's writer id (see new_writer_id); a new one after a fork."""
        pid = os.getpid()
        if pid != self._writer_pid:
            self._writer_pid = pid
            self._writer_id = new_writer_id()
        return self._writer_id

    # -- secrets ----------------------------------------------------------
    @classmethod
    def secret_options(cls) -> frozenset[str]:
        """Names of this plugin's options that hold a secret (declared ``secret=True``)."""
        return frozenset(name for name, spec in cls.option_specs.items() if spec.secret)

    def public_url(self) -> str:
        """This connection's URL without its secrets: safe to show, record and pass on argv.

        The default takes out the user part's password and every secret query
        option (troy.model.secrets.split_url).
        """
        return secret_values.split_url(self.url, self.secret_options())[0]

    def agent_secrets(self) -> dict[str, str]:
        """What an agent (maybe on another host) needs besides `public_url` to connect.

        troy hands it to the agent in its environment, never on a command line;
        the agent joins it to the public URL (troy.model.secrets.join_url).  The
        default: the secrets `public_url` took out.  A plugin that reads a secret
        from a local file or makes keys adds them here.
        """
        return secret_values.split_url(self.url, self.secret_options())[1]

    # -- records -----------------------------------------------------------
    @abstractmethod
    def put_record(self, key: str, record: Mapping[str, Any]) -> None:
        """Store ``record`` under ``key``, replacing any earlier one atomically."""

    @abstractmethod
    def get_record(self, key: str) -> dict[str, Any] | None:
        """The record under ``key``, or None."""

    @abstractmethod
    def list_records(self, prefix: str) -> list[str]:
        """Keys of the records directly below ``prefix``, sorted ("service" -> ["service/a", ...]).

        Exactly the keys ``prefix + "/" + word`` under which a record is stored:
        the prefix is compared character for character and case-sensitively (no
        character is a wildcard, not ``_`` as in SQL LIKE nor ``.`` as in a regular
        expression); neither ``prefix`` itself nor deeper keys are listed.
        """

    def create_record(self, key: str, record: Mapping[str, Any]) -> bool:
        """Store ``record`` under ``key`` only if no record is stored there; True if stored.

        Of several callers racing for one key, in any processes on any hosts,
        exactly one gets True; a call retried after an unknown outcome answers as
        its first attempt did.  This default (get, then put) is not atomic: a
        plugin for contract 1.2 overrides it (the conformance suite races it).
        """
        if self.get_record(key) is not None:
            return False
        self.put_record(key, record)
        return True

    def allocate(self, counter: str, count: int) -> int:
        """Reserve ``count`` consecutive numbers of ``counter`` (from 0); return the first.

        No number is ever handed out twice, whoever asks, and a call retried
        after an unknown outcome reserves once.  The default stores one record per
        reservation (``counter/<n>``: its start and count, made with `create_record`):
        the racer that creates record n+1 gets the numbers after record n's.  A
        connection remembers where its last reservation ended, so it lists the
        counter's records only the first time; a reservation then costs one create
        (and a read per reservation another process made meanwhile).  A service
        with an atomic increment overrides it.
        """
        if count < 1:
            raise CoordinationError(f"allocate: count must be at least 1, got {count}")
        check_name(counter)
        known: dict[str, tuple[int, int]] = self.__dict__.setdefault("_reservations", {})
        block, start = known.get(counter) or self._last_reservation(counter)
        while True:
            key = f"{counter}/{block + 1}"
            if self.create_record(key, {"start": start, "count": count}):
                known[counter] = (block + 1, start + count)
                return start
            won = self.get_record(key)
            if won is None:
                raise CoordinationError(f"allocate: reservation {key} vanished")
            block, start = block + 1, int(won["start"]) + int(won["count"])

    def _last_reservation(self, counter: str) -> tuple[int, int]:
        """The highest reservation record of ``counter`` and where it ends; (-1, 0) if none."""
        words = (key.rpartition("/")[2] for key in self.list_records(counter))
        block = max((int(word) for word in words if word.isdigit()), default=-1)
        if block < 0:
            return -1, 0
        record = self.get_record(f"{counter}/{block}") or {}
        return block, int(record.get("start", 0)) + int(record.get("count", 0))

    # -- streams -----------------------------------------------------------
    @abstractmethod
    def append(self, stream: str, events: Sequence[Mapping[str, Any]]) -> None:
        """Append events as one batch: readers see all of them or none."""

    @abstractmethod
    def read(
        self, stream: str, cursor: Cursor = None, skip_own: bool = False
    ) -> tuple[list[dict[str, Any]], Cursor]:
        """Events appended after ``cursor``, and the cursor to pass next time.

        With ``skip_own``, events appended through this same connection are passed
        over (the cursor still moves past them): a writer that applied its own
        events when it wrote them need not parse them again.
        """

    def commit(
        self,
        stream: str,
        events: Sequence[Mapping[str, Any]],
        queues: Mapping[str, Sequence[Mapping[str, Any]]],
    ) -> None:
        """Append ``events`` and enqueue ``queues[name]`` items as one step.

        Plugins whose service can do it atomically (Redis transactions, a broker)
        override this so that either everything or nothing is recorded; this
        default appends first, then enqueues.
        """
        self.append(stream, events)
        for queue, items in queues.items():
            self.enqueue(queue, items)

    def compact(self, stream: str, events: Sequence[Mapping[str, Any]]) -> bool:
        """Replace everything in ``stream`` by ``events`` in one step; True if it did.

        The caller passes a summary that a reader applying it from the start
        ends in the same state with (one event per unit of a finished service).
        A reader from the start sees either the old events or the summary, never
        a mix (nor nothing); a reader with an older cursor may see the summary as
        new events.  Only a stream nobody appends to any more is compacted: an
        append racing the compaction may be lost; events appended after it
        returned are read after the summary.  A retry writes the same summary
        again.  The default keeps the stream as it is and returns False.
        """
        return False

    # -- queues ------------------------------------------------------------
    @abstractmethod
    def enqueue(self, queue: str, items: Sequence[Mapping[str, Any]]) -> None:
        """Add items (each with a unique "id") to the end of the queue."""

    @abstractmethod
    def claim(self, queue: str, claimer: str, max_items: int) -> list[dict[str, Any]]:
        """Atomically take up to ``max_items`` items, oldest first, for ``claimer``."""

    def ack(self, queue: str, claimer: str, ids: Collection[str]) -> None:  # noqa: B027
        """``claimer`` is done with these items it claimed: the service may drop them.

        A claimer acknowledges items once it has recorded what became of them
        (in troy: once their state is reported), so claimed items do not pile
        up.  Unknown ids are ignored.  The default keeps them.
        """

    def wait_for_work(self, queue: str, stream: str, cursor: Cursor, timeout: float) -> bool:
        """Block up to ``timeout`` s until ``queue`` may have items or ``stream`` has events
        after ``cursor``; True if this connection can wait so, False (at once) if it cannot.

        A return before ``timeout`` means "look now" and may be spurious; what
        comes in while it waits, or came since the caller's last claim of
        ``queue`` from this connection or its ``read`` of ``stream`` up to
        ``cursor``, must make it return early (not necessarily when another
        connection took it first).  The default cannot block: the caller polls.
        """
        return False

    @abstractmethod
    def withdraw(self, queue: str, ids: Collection[str]) -> list[str]:
        """Remove the named items if nobody has claimed them; return the ids removed."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the default has none."""
