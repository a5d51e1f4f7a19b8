"""The troy ZeroMQ broker: hosted by a manager process, it serves zmq coordination clients.

**Broker.**  A connection opened with ``serve=True`` (a manager) tries to bind a
ROUTER socket on host:port.  If it can, its process hosts the broker: a daemon
thread that lives until the process exits, shared by every connection of the
process to that endpoint (which reach it over ``inproc://``, the same protocol
without TCP).  If another process holds the port, the connection is a client
like any other; agents (``serve=False``) are always clients.  A
``serve=True`` client whose broker stops answering tries to bind again while it
retries, so a surviving manager takes over from one that exited.

**Journal.**  The broker executes every request, one at a time, on a
``FileCoordination`` opened on the journal directory, which therefore holds
everything durably in the file plugin's layout: a process restarted with the
same URL on the same host finds every record, stream and queue again.  Each
client connection has an id (``host-pid-random``, new after a fork) and the
broker appends that connection's events through its own FileCoordination
writer of that name, so every connection has its own file in each stream,
exactly as with the file plugin, and ``read(skip_own=True)`` skips that file.
A ``commit`` is one request: the broker checks every name and item, then
appends and enqueues before it takes the next request, so no client sees half
of it.

The protocol and the client are in zmq.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

try:
    import zmq
except ImportError:  # the plugin loads without pyzmq and says what to install when used
    zmq = None  # type: ignore[assignment]

from troy.model.errors import CoordinationError
from troy.model.private import private_mkdir, private_write
from troy.plugins.coordination import zmq_curve as curve
from troy.plugins.coordination.base import (
    Cursor,
    check_name,
)
from troy.plugins.coordination.file import FileCoordination
from troy.plugins.coordination.zmq_address import ZmqAddress

PROTOCOL = b"troy-zmq/1"
#: Connections whose last reply the broker remembers (least recently used are forgotten).
MAX_SESSIONS = 4096

_CONNECTION_ID = re.compile(rb"[A-Za-z0-9_-]{1,128}")
#: Requests that change nothing: their replies are not journaled (a retry just runs again).
_READ_ONLY = frozenset({"ping", "get_record", "list_records", "read", "wait"})
#: Longest a ``wait`` request is held (its client waits that long plus zmq.REPLY_WAIT).
MAX_HOLD = 2.0
#: The journal's folder of per-connection files: last write request and its reply.
_SESSIONS = "zmq-sessions"
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
#: Replies carry what the journal holds as it is: a NaN someone wrote into a queue file
#: reaches the claimer, which refuses that item, instead of failing the whole claim (and
#: losing the items claimed with it).  Requests stay strict (the journal refuses NaN anyway).
_REPLY_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=True)


def encode(value: Any) -> bytes:
    return _ENCODER.encode(value).encode()


def event_list(stream: str, events: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    try:
        return [dict(event) for event in events]
    except (TypeError, ValueError) as exc:
        raise CoordinationError(f"events for {stream} are not all mappings: {exc}") from exc


def check_items(queue: str, items: Any) -> list[dict[str, Any]]:
    check_name(queue)
    if not isinstance(items, Sequence) or isinstance(items, str | bytes):
        raise CoordinationError(f"queue items for {queue} are not a list: {items!r:.200}")
    for item in items:
        if not isinstance(item, Mapping) or not isinstance(item.get("id"), str):
            raise CoordinationError(f"queue item without a string 'id': {item!r:.200}")
    return [dict(item) for item in items]


# -- the process: one zmq context and the brokers it hosts ------------------------


class _Process:
    def __init__(self) -> None:
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.context: zmq.Context[zmq.Socket[bytes]] | None = None
        self.brokers: dict[str, _Broker] = {}
        self.gate: curve.Gate | None = None

    def zmq_context(self) -> zmq.Context[zmq.Socket[bytes]]:
        with self.lock:
            if self.context is None:
                self.context = zmq.Context()
            return self.context


_process = _Process()


def this_process() -> _Process:
    """The state of this process; after a fork the child starts afresh (threads do not survive)."""
    global _process
    if _process.pid != os.getpid():
        _process = _Process()
    return _process


def host_broker(address: ZmqAddress) -> str | None:
    """Make this process host the broker of ``address`` if it can; None if it does, else why not."""
    process = this_process()
    context = process.zmq_context()
    with process.lock:
        broker = process.brokers.get(address.endpoint)
        if broker is not None:
            if broker.journal.root != address.journal:
                raise CoordinationError(
                    f"this process already hosts the zmq broker at {address.endpoint} "
                    f"with journal {broker.journal.root}, not {address.journal}"
                )
            return None
        if address.curve and process.gate is None:
            process.gate = curve.Gate(context)
        for _ in range(2):
            # Keys are written only by the process that binds: a manager on another host
            # that shares $TROY_HOME must not leave keys that are not its broker's.
            made = None
            if address.curve:
                if os.path.exists(address.key_file):
                    keys = curve.read_keys(address.key_file)
                else:
                    keys = made = curve.new_keys(address.key_file)
            router = context.socket(zmq.ROUTER)
            router.linger = 0
            router.ipv6 = address.endpoint.startswith("tcp://[")
            try:
                if address.curve and process.gate is not None:
                    process.gate.protect(router, address.endpoint, keys)
                router.bind(address.endpoint)
            except zmq.ZMQError as exc:
                router.close()
                return str(exc)
            try:
                if made is not None and curve.save_keys(made) != made:
                    router.close()  # another process wrote the key file first: bind with its keys
                    continue
                router.bind(inproc(address.endpoint))
                broker = _Broker(address.endpoint, address.journal, router)
            except BaseException:
                router.close()
                raise
            process.brokers[address.endpoint] = broker
            return None
        return f"the key file {address.key_file} changed while this process bound the port"


def inproc(endpoint: str) -> str:
    """Where the connections of the broker's own process reach it (same protocol, no TCP)."""
    return f"inproc://troy-zmq-broker/{endpoint}"


def hosted_endpoints() -> list[str]:
    """Endpoints whose broker this process hosts."""
    return sorted(this_process().brokers)


# -- the broker -------------------------------------------------------------------


class _Writer(FileCoordination):
    """The journal as one client connection writes it: its appends go to its own stream files."""

    def __init__(self, root: str, writer: str) -> None:
        self._fixed_writer = writer
        super().__init__(Path(root).as_uri())

    @property
    def writer(self) -> str:
        return self._fixed_writer

    def read(
        self, stream: str, cursor: Cursor = None, skip_own: bool = False
    ) -> tuple[list[dict[str, Any]], Cursor]:
        if skip_own:
            # After a broker restart this writer does not know where its files end: the broker
            # is their only writer and works one request at a time, so each file's size is it.
            folder = os.path.join(self._streams, check_name(stream))
            if folder not in self._own_ends:
                with contextlib.suppress(OSError):
                    own = os.path.join(folder, self._own_file(folder))
                    self._own_ends[folder] = os.path.getsize(own)
        return super().read(stream, cursor, skip_own)


class _Session:
    """What the broker keeps about one client connection."""

    def __init__(self) -> None:
        self.last = 0
        self.reply: list[bytes] | None = None
        self.writer: _Writer | None = None
        #: Change counts of the queues it claimed from and streams it read, as it did.
        self.seen: dict[tuple[str, str], int] = {}


class _Held:
    """A ``wait`` request the broker answers when its queue or stream changes, or at ``until``."""

    def __init__(
        self,
        route: bytes,
        rid: bytes,
        session: _Session,
        names: tuple[tuple[str, str], ...],
        until: float,
    ) -> None:
        self.route, self.rid, self.session, self.names, self.until = (
            route,
            rid,
            session,
            names,
            until,
        )


class _Broker:
    """Executes the requests that arrive on a bound ROUTER socket, one at a time, in a thread."""

    def __init__(self, endpoint: str, journal: str, router: zmq.Socket[bytes]) -> None:
        self.endpoint = endpoint
        self.journal = FileCoordination(Path(journal).as_uri(), serve=True)
        self._router = router
        self._sessions: OrderedDict[bytes, _Session] = OrderedDict()
        #: How often each ("q", queue) and ("s", stream) changed since the broker started.
        self._changes: dict[tuple[str, str], int] = {}
        self._held: list[_Held] = []
        #: When the first held wait is due, and whether anything changed since the last look.
        self._next_due = float("inf")
        self._dirty = False
        #: The peer routing id of the request being handled.
        self._route = b""
        self._thread = threading.Thread(
            target=self._serve, name=f"troy zmq broker {endpoint}", daemon=True
        )
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                timeout = None
                if self._held:
                    left = self._next_due - time.monotonic()
                    timeout = max(1, int(1000 * left) + 1)
                if self._router.poll(timeout, zmq.POLLIN):
                    frames = self._router.recv_multipart()
                    self._route = frames[0]
                    reply = self.handle(frames[1:])
                    if reply is not None:
                        with contextlib.suppress(zmq.ZMQError):
                            self._router.send_multipart([frames[0], *reply])
                self._release()
            except zmq.ZMQError:
                break  # the context is gone: the process is exiting
        self._router.close()

    def _changed(self, kind: str, name: str) -> None:
        self._changes[kind, name] = self._changes.get((kind, name), 0) + 1
        self._dirty = True

    def _release(self) -> None:
        """Answer the held waits whose queue or stream changed, or whose time is up."""
        now = time.monotonic()
        if not self._held or (not self._dirty and now < self._next_due):
            return  # most requests (a claim, a read, a beat) release nothing: no scan
        self._dirty = False
        kept = []
        for held in self._held:
            if held.until > now and not self._news(held.session, held.names):
                kept.append(held)
                continue
            reply = [b"ok", b"true"]
            if held.session.last == int(held.rid):
                held.session.reply = reply
            with contextlib.suppress(zmq.ZMQError):
                self._router.send_multipart([held.route, held.rid, *reply])
        self._held = kept
        self._next_due = min((held.until for held in kept), default=float("inf"))

    def _news(self, session: _Session, names: tuple[tuple[str, str], ...]) -> bool:
        """Whether one of ``names`` changed since the session last claimed or read it."""
        return any(self._changes.get(name, 0) != session.seen.get(name, -1) for name in names)

    def _hold(self, session: _Session, rid: bytes, queue: str, stream: str, timeout: float) -> bool:
        """Hold a wait request (True) unless its queue or stream changed since the
        connection last claimed or read it (False: answer now)."""
        names = (("q", check_name(queue)), ("s", check_name(stream)))
        if self._news(session, names):
            return False
        until = time.monotonic() + max(0.0, min(float(timeout), MAX_HOLD))
        self._held.append(_Held(self._route, rid, session, names, until))
        self._next_due = min(self._next_due, until)
        return True

    def handle(self, frames: list[bytes]) -> list[bytes] | None:
        """The reply frames to one request (without the peer's routing id); None to ignore it."""
        if len(frames) != 5 or frames[0] != PROTOCOL:
            rid = frames[2] if len(frames) > 2 else b""
            return [rid, b"err", b"not a troy-zmq/1 request: check both sides run the same troy"]
        _, connection, rid, op, body = frames
        try:
            number = int(rid)
        except ValueError:
            number = 0
        if number <= 0 or not _CONNECTION_ID.fullmatch(connection):
            return [rid, b"err", b"bad connection id or request number"]
        session = self._sessions.get(connection)
        if session is None:
            session = self._sessions[connection] = self._load_session(connection)
            if len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        else:
            self._sessions.move_to_end(connection)
        if number <= session.last:
            if number == session.last and session.reply is not None:
                return [rid, *session.reply]  # a retry: the same reply, not a second execution
            for held in self._held:  # a held wait retried on a new socket: answer there
                if held.session is session and held.rid == rid:
                    held.route = self._route
            return None  # the client has moved on
        session.last = number
        if op == b"wait":  # answered later (see _release), or now if something changed
            with contextlib.suppress(ValueError, TypeError):
                queue, stream, timeout = json.loads(body)
                session.reply = None
                if self._hold(session, rid, queue, stream, timeout):
                    return None
        try:
            answer = self._execute(connection, session, op.decode(), json.loads(body))
            result = _REPLY_ENCODER.encode(answer).encode()
            reply = [b"ok", result]
        except CoordinationError as exc:
            reply = [b"err", str(exc).encode()]
        except Exception as exc:  # the broker must outlive any request
            reply = [b"err", f"broker at {self.endpoint}: {type(exc).__name__}: {exc}".encode()]
        session.reply = reply
        if op.decode(errors="replace") not in _READ_ONLY:
            # Failing to journal it only loses the dedupe on a successor: still answer.
            with contextlib.suppress(OSError):
                self._save_session(connection, number, reply)
        return [rid, *reply]

    def _session_path(self, connection: bytes) -> str:
        return os.path.join(self.journal.root, _SESSIONS, connection.decode() + ".json")

    def _load_session(self, connection: bytes) -> _Session:
        """What the journal says about a connection: its last write request and the reply."""
        session = _Session()
        path = self._session_path(connection)
        try:
            with open(path, "rb") as file:
                saved = json.loads(file.read())
            session.last = int(saved["last"])
            session.reply = [part.encode() for part in saved["reply"]]
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CoordinationError(f"broker journal {path} is unreadable: {exc}") from exc
        return session

    def _save_session(self, connection: bytes, number: int, reply: list[bytes]) -> None:
        """Journal the reply to a write before it is sent: a successor answers a retry with it."""
        path = self._session_path(connection)
        folder = os.path.dirname(path)
        private_mkdir(folder)
        saved = {"last": number, "reply": [part.decode() for part in reply]}
        private_write(path, encode(saved))

    def _writer(self, connection: bytes, session: _Session) -> _Writer:
        if session.writer is None:
            session.writer = _Writer(self.journal.root, connection.decode())
        return session.writer

    def _execute(self, connection: bytes, session: _Session, op: str, args: Any) -> Any:
        journal = self.journal
        match op, args:
            case "ping", []:
                return {"pid": os.getpid(), "journal": journal.root}
            case "put_record", [key, dict() as record]:
                return journal.put_record(key, record)
            case "get_record", [key]:
                return journal.get_record(key)
            case "list_records", [prefix]:
                return journal.list_records(prefix)
            case "wait", [str(), str(), float() | int()]:
                return True  # not held: something changed
            case "append", [stream, list() as events]:
                self._changed("s", stream)
                return self._writer(connection, session).append(stream, events)
            case "read", [stream, cursor, bool() as skip_own]:
                session.seen["s", stream] = self._changes.get(("s", stream), 0)
                if skip_own:
                    return self._writer(connection, session).read(stream, cursor, skip_own=True)
                return journal.read(stream, cursor)
            case "commit", [stream, list() as events, dict() as queues]:
                check_name(stream)
                checked = {queue: check_items(queue, items) for queue, items in queues.items()}
                if not all(isinstance(event, dict) for event in events):
                    raise CoordinationError(f"events for {stream} are not all JSON objects")
                # The journal's own commit: all or nothing, also on a full disk (an
                # append that landed with some queues and not others would make the
                # manager place those units again: two copies of one attempt).
                self._writer(connection, session).commit(stream, events, checked)
                self._changed("s", stream)
                for queue in checked:
                    self._changed("q", queue)
                return None
            case "enqueue", [queue, list() as items]:
                self._changed("q", queue)
                return journal.enqueue(queue, items)
            case "claim", [queue, claimer, int() as max_items]:
                session.seen["q", queue] = self._changes.get(("q", queue), 0)
                return journal.claim(queue, claimer, max_items)
            case "withdraw", [queue, list() as ids]:
                return journal.withdraw(queue, ids)
            case "create_record", [key, dict() as record]:
                return journal.create_record(key, record)
            case "allocate", [counter, int() as count]:
                return journal.allocate(counter, count)
            case "ack", [queue, claimer, list() as ids]:
                check_name(queue)
                return journal.ack(queue, check_name(claimer), ids)
            case "compact", [stream, list() as events]:
                if not all(isinstance(event, dict) for event in events):
                    raise CoordinationError(f"events for {stream} are not all JSON objects")
                self._changed("s", stream)
                return journal.compact(stream, events)
        raise CoordinationError(f"broker at {self.endpoint}: bad request {op}{args!r:.200}")
