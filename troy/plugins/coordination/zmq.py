"""The ``zmq`` coordination plugin: a broker that a manager process hosts, over ZeroMQ.

The URL is ``tcp://host:port``, with optional query parameters ``journal=<dir>``
(default ``$TROY_HOME/zmq/<host>_<port>``) and ``retry=<seconds>``.

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

**Protocol.**  A client's DEALER socket sends ``[b"troy-zmq/1", connection id,
request number, operation, JSON array of arguments]``; the broker answers
``[request number, b"ok" | b"err", JSON result | message]``.  A connection
sends one request at a time (a lock guards its socket), with increasing
numbers.  A call whose reply does not come within REPLY_WAIT (doubling up to
REPLY_WAIT_MAX) closes its socket, opens a new one and sends the same request
again after a backoff (0.05 s doubling to 1 s), until ``retry`` seconds have
passed; then it raises CoordinationError naming the endpoint.  The broker keeps
each connection's last request number and reply: a repeated request gets the
same reply without running again (so a slow request is not run twice either),
an older one gets none.  The reply to every request that writes is journaled
(``zmq-sessions/<connection id>.json`` in the journal) before it is sent, so a
successor broker, after the host process died, answers a retried request from
the journal without running it again.  Only a broker killed between carrying
out a write and journaling its reply (one small file write later) may run its
retry once more.  ``create_record``, ``allocate``, ``ack`` and ``compact`` run
on the journal, with the file plugin's semantics.  The broker trusts whoever
reaches its port: bind it to an address that only your hosts can reach.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar
from urllib.parse import parse_qs, unquote, urlsplit

try:
    import zmq
except ImportError:  # the plugin loads without pyzmq and says what to install when used
    zmq = None  # type: ignore[assignment]

from troy.model.config import troy_home
from troy.model.errors import CoordinationError
from troy.plugins.coordination.base import (
    DEFAULT_RETRY,
    Coordination,
    Cursor,
    check_name,
    new_writer_id,
)
from troy.plugins.coordination.file import FileCoordination
from troy.plugins.options import Option, number, text

PROTOCOL = b"troy-zmq/1"
#: Seconds that opening a connection waits for the broker to answer.
OPEN_TIMEOUT = 2.0
#: Seconds a request waits for its reply before the socket is replaced (doubling up to the max).
REPLY_WAIT, REPLY_WAIT_MAX = 1.0, 4.0
BACKOFF, BACKOFF_MAX = 0.05, 1.0
#: Connections whose last reply the broker remembers (least recently used are forgotten).
MAX_SESSIONS = 4096

_CONNECTION_ID = re.compile(rb"[A-Za-z0-9_-]{1,128}")
#: Requests that change nothing: their replies are not journaled (a retry just runs again).
_READ_ONLY = frozenset({"ping", "get_record", "list_records", "read"})
#: The journal's folder of per-connection files: last write request and its reply.
_SESSIONS = "zmq-sessions"
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
#: Replies carry what the journal holds as it is: a NaN someone wrote into a queue file
#: reaches the claimer, which refuses that item, instead of failing the whole claim (and
#: losing the items claimed with it).  Requests stay strict (the journal refuses NaN anyway).
_REPLY_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=True)


@dataclass(frozen=True)
class ZmqAddress:
    """What a ``tcp://`` coordination URL says: the broker, its journal, the retry window."""

    endpoint: str
    journal: str
    retry: float


def parse_url(url: str) -> ZmqAddress:
    """The address in ``tcp://host:port[?journal=<dir>&retry=<seconds>]``, or CoordinationError."""
    parts = urlsplit(url)
    try:
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise CoordinationError(f"zmq coordination URL {url}: {exc}") from exc
    if parts.scheme.lower() != "tcp" or not host or not port:
        raise CoordinationError(f"not a zmq coordination URL (tcp://host:port): {url}")
    if parts.path not in ("", "/") or parts.fragment or parts.username or parts.password:
        raise CoordinationError(f"zmq coordination URL {url} takes only host, port and query")
    query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=False)
    unknown = sorted(set(query) - {"journal", "retry"})
    if unknown or any(len(values) > 1 for values in query.values()):
        raise CoordinationError(
            f"zmq coordination URL {url}: query takes journal= and retry= once each"
        )
    try:
        retry = float(query["retry"][0]) if "retry" in query else DEFAULT_RETRY
    except ValueError:
        retry = -1.0
    if not 0 <= retry < float("inf"):
        raise CoordinationError(f"zmq coordination URL {url}: retry= must be seconds >= 0")
    if "journal" in query:
        journal = os.path.abspath(os.path.expanduser(unquote(query["journal"][0])))
    else:
        journal = str(troy_home() / "zmq" / re.sub(r"[^A-Za-z0-9._-]+", "_", f"{host}_{port}"))
    bracketed = f"[{host}]" if ":" in host else host
    return ZmqAddress(f"tcp://{bracketed}:{port}", journal, retry)


def _encode(value: Any) -> bytes:
    return _ENCODER.encode(value).encode()


def _events(stream: str, events: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    try:
        return [dict(event) for event in events]
    except (TypeError, ValueError) as exc:
        raise CoordinationError(f"events for {stream} are not all mappings: {exc}") from exc


def _check_items(queue: str, items: Any) -> list[dict[str, Any]]:
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

    def zmq_context(self) -> zmq.Context[zmq.Socket[bytes]]:
        with self.lock:
            if self.context is None:
                self.context = zmq.Context()
            return self.context


_process = _Process()


def _this_process() -> _Process:
    """The state of this process; after a fork the child starts afresh (threads do not survive)."""
    global _process
    if _process.pid != os.getpid():
        _process = _Process()
    return _process


def host_broker(address: ZmqAddress) -> str | None:
    """Make this process host the broker of ``address`` if it can; None if it does, else why not."""
    process = _this_process()
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
        router = context.socket(zmq.ROUTER)
        router.linger = 0
        router.ipv6 = address.endpoint.startswith("tcp://[")
        try:
            router.bind(address.endpoint)
        except zmq.ZMQError as exc:
            router.close()
            return str(exc)
        try:
            router.bind(_inproc(address.endpoint))
            process.brokers[address.endpoint] = _Broker(address.endpoint, address.journal, router)
        except BaseException:
            router.close()
            raise
        return None


def _inproc(endpoint: str) -> str:
    """Where the connections of the broker's own process reach it (same protocol, no TCP)."""
    return f"inproc://troy-zmq-broker/{endpoint}"


def hosted_endpoints() -> list[str]:
    """Endpoints whose broker this process hosts."""
    return sorted(_this_process().brokers)


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


class _Broker:
    """Executes the requests that arrive on a bound ROUTER socket, one at a time, in a thread."""

    def __init__(self, endpoint: str, journal: str, router: zmq.Socket[bytes]) -> None:
        self.endpoint = endpoint
        self.journal = FileCoordination(Path(journal).as_uri())
        self._router = router
        self._sessions: OrderedDict[bytes, _Session] = OrderedDict()
        self._thread = threading.Thread(
            target=self._serve, name=f"troy zmq broker {endpoint}", daemon=True
        )
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                frames = self._router.recv_multipart()
            except zmq.ZMQError:
                break  # the context is gone: the process is exiting
            reply = self.handle(frames[1:])
            if reply is not None:
                with contextlib.suppress(zmq.ZMQError):
                    self._router.send_multipart([frames[0], *reply])
        self._router.close()

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
            return None  # the client has moved on
        session.last = number
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
        os.makedirs(folder, exist_ok=True)
        saved = {"last": number, "reply": [part.decode() for part in reply]}
        temp = f"{path}.{os.getpid()}.tmp"
        with open(temp, "wb") as file:
            file.write(_encode(saved))
        os.replace(temp, path)

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
            case "append", [stream, list() as events]:
                return self._writer(connection, session).append(stream, events)
            case "read", [stream, cursor, bool() as skip_own]:
                if skip_own:
                    return self._writer(connection, session).read(stream, cursor, skip_own=True)
                return journal.read(stream, cursor)
            case "commit", [stream, list() as events, dict() as queues]:
                check_name(stream)
                checked = {queue: _check_items(queue, items) for queue, items in queues.items()}
                if not all(isinstance(event, dict) for event in events):
                    raise CoordinationError(f"events for {stream} are not all JSON objects")
                # The journal's own commit: all or nothing, also on a full disk (an
                # append that landed with some queues and not others would make the
                # manager place those units again: two copies of one attempt).
                self._writer(connection, session).commit(stream, events, checked)
                return None
            case "enqueue", [queue, list() as items]:
                return journal.enqueue(queue, items)
            case "claim", [queue, claimer, int() as max_items]:
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
                return journal.compact(stream, events)
        raise CoordinationError(f"broker at {self.endpoint}: bad request {op}{args!r:.200}")


# -- the client -------------------------------------------------------------------


class ZmqCoordination(Coordination):
    """A connection to the troy broker at ``tcp://host:port``; see the module docstring."""

    name = "zmq"
    schemes = ("tcp",)
    #: Every connection, in any process on any host, reaches the same broker.
    capabilities: ClassVar[frozenset[str]] = frozenset({"multiprocess"})
    option_specs: ClassVar[Mapping[str, Option]] = MappingProxyType(
        {
            "journal": Option(
                None,
                "the broker's journal directory; default $TROY_HOME/zmq/HOST_PORT",
                text(),
            ),
            "retry": Option(
                DEFAULT_RETRY,
                "seconds a call keeps retrying a broker that does not answer",
                number(0, text=True),
            ),
        }
    )

    def __init__(self, url: str, *, serve: bool = False) -> None:
        super().__init__(url, serve=serve)
        if zmq is None:
            raise CoordinationError(
                f"coordination URL {url} needs pyzmq: pip install troy[zmq] (or pip install pyzmq)"
            )
        self.address = parse_url(url)
        self.endpoint = self.address.endpoint
        self._socket: zmq.Socket[bytes] | None = None
        self._new_process()
        why_not_hosted = host_broker(self.address) if serve else None
        try:
            self.broker = self._call("ping", [], window=OPEN_TIMEOUT)
        except CoordinationError as exc:
            self.close()
            hint = f" (this process could not host it either: {why_not_hosted})"
            raise CoordinationError(
                f"no troy zmq broker answers at {self.endpoint}{hint if why_not_hosted else ''}"
                f"; start a manager (serve=True) with this URL first"
            ) from exc

    def _new_process(self) -> None:
        """Start afresh in this process: a new id, a new lock, no socket (a fork inherits none)."""
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._socket = None  # a parent's socket is not ours to close
        self.connection_id = new_writer_id()
        self._request = 0

    # -- transport -----------------------------------------------------------------
    def _connect(self) -> zmq.Socket[bytes]:
        process = _this_process()
        dealer = process.zmq_context().socket(zmq.DEALER)
        dealer.linger = 0
        if self.endpoint in process.brokers:
            dealer.connect(_inproc(self.endpoint))  # half the latency of TCP over loopback
        else:
            dealer.ipv6 = self.endpoint.startswith("tcp://[")
            dealer.connect(self.endpoint)
        self._socket = dealer
        return dealer

    def _disconnect(self) -> None:
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None

    def _call(self, op: str, args: list[Any], window: float | None = None) -> Any:
        """Send one request until the broker answers or ``window`` seconds have passed."""
        try:
            body = _encode(args)
        except (TypeError, ValueError) as exc:
            raise CoordinationError(f"{op} arguments are not JSON-ready: {exc}") from exc
        if self._pid != os.getpid():
            self._new_process()
        # Even with retry=0 a request gets one full wait for its reply.
        window = max(REPLY_WAIT, self.address.retry if window is None else window)
        with self._lock:
            self._request += 1
            rid = str(self._request).encode()
            request = [PROTOCOL, self.connection_id.encode(), rid, op.encode(), body]
            deadline = time.monotonic() + window
            wait, backoff = REPLY_WAIT, BACKOFF
            while True:
                dealer = self._socket or self._connect()
                reply = None
                with contextlib.suppress(zmq.ZMQError):  # e.g. Again: treated as no answer
                    dealer.send_multipart(request, flags=zmq.NOBLOCK)
                    reply = self._receive(dealer, rid, min(wait, deadline - time.monotonic()))
                if reply is not None:
                    status, payload = reply
                    if status == b"ok":
                        return json.loads(payload)
                    raise CoordinationError(payload.decode(errors="replace"))
                # No answer: the broker may be gone, or have lost our request with its connection.
                self._disconnect()
                if time.monotonic() >= deadline:
                    raise CoordinationError(
                        f"no answer from the troy zmq broker at {self.endpoint} to {op} "
                        f"within {window:g} s (retry= in the URL sets how long to try)"
                    )
                if self.serve:
                    host_broker(self.address)  # take over from a host process that is gone
                time.sleep(max(0.0, min(backoff, deadline - time.monotonic())))
                wait, backoff = min(2 * wait, REPLY_WAIT_MAX), min(2 * backoff, BACKOFF_MAX)

    @staticmethod
    def _receive(
        dealer: zmq.Socket[bytes], rid: bytes, timeout: float
    ) -> tuple[bytes, bytes] | None:
        """The reply to request ``rid``, skipping late replies to earlier ones; None on timeout."""
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0 or not dealer.poll(max(1, int(left * 1000)), zmq.POLLIN):
                return None
            frames = dealer.recv_multipart()
            if len(frames) == 3 and frames[0] == rid:
                return frames[1], frames[2]

    def close(self) -> None:
        """Close this connection's socket; a later call opens a new one."""
        if self._pid != os.getpid():
            self._new_process()
            return
        with self._lock:
            self._disconnect()

    # -- records -------------------------------------------------------------------
    def put_record(self, key: str, record: Mapping[str, Any]) -> None:
        self._call("put_record", [check_name(key), dict(record)])

    def get_record(self, key: str) -> dict[str, Any] | None:
        record: dict[str, Any] | None = self._call("get_record", [check_name(key)])
        return record

    def list_records(self, prefix: str) -> list[str]:
        keys: list[str] = self._call("list_records", [check_name(prefix)])
        return keys

    # -- streams -------------------------------------------------------------------
    def append(self, stream: str, events: Sequence[Mapping[str, Any]]) -> None:
        check_name(stream)
        if events:
            self._call("append", [stream, _events(stream, events)])

    def read(
        self, stream: str, cursor: Cursor = None, skip_own: bool = False
    ) -> tuple[list[dict[str, Any]], Cursor]:
        events, cursor = self._call("read", [check_name(stream), cursor, bool(skip_own)])
        return events, cursor

    def commit(
        self,
        stream: str,
        events: Sequence[Mapping[str, Any]],
        queues: Mapping[str, Sequence[Mapping[str, Any]]],
    ) -> None:
        """Append and enqueue in one request, which the broker carries out before any other."""
        check_name(stream)
        checked = {queue: _check_items(queue, items) for queue, items in queues.items()}
        checked = {queue: items for queue, items in checked.items() if items}
        if events or checked:
            self._call("commit", [stream, _events(stream, events), checked])

    # -- queues --------------------------------------------------------------------
    def enqueue(self, queue: str, items: Sequence[Mapping[str, Any]]) -> None:
        checked = _check_items(queue, items)
        if checked:
            self._call("enqueue", [queue, checked])

    def claim(self, queue: str, claimer: str, max_items: int) -> list[dict[str, Any]]:
        check_name(queue)
        items: list[dict[str, Any]] = self._call(
            "claim", [queue, check_name(claimer), int(max_items)]
        )
        return items

    def create_record(self, key: str, record: Mapping[str, Any]) -> bool:
        """Store the record if absent, as the broker's journal does (a hard link)."""
        return bool(self._call("create_record", [check_name(key), dict(record)]))

    def allocate(self, counter: str, count: int) -> int:
        """Reserve numbers from the broker's journal; a retried request is not run twice."""
        if count < 1:
            raise CoordinationError(f"allocate: count must be at least 1, got {count}")
        return int(self._call("allocate", [check_name(counter), int(count)]))

    def ack(self, queue: str, claimer: str, ids: Collection[str]) -> None:
        """Drop acknowledged items from the claimer's claimed bundles in the journal."""
        check_name(queue)
        wanted = list(ids)
        if wanted:
            self._call("ack", [queue, check_name(claimer), wanted])

    def compact(self, stream: str, events: Sequence[Mapping[str, Any]]) -> bool:
        """Replace the stream by a summary in the journal (see the file plugin)."""
        return bool(self._call("compact", [check_name(stream), _events(stream, events)]))

    def withdraw(self, queue: str, ids: Collection[str]) -> list[str]:
        check_name(queue)
        wanted = list(ids)
        removed: list[str] = self._call("withdraw", [queue, wanted]) if wanted else []
        return removed
