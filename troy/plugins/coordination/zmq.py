"""The ``zmq`` coordination plugin: a broker that a manager process hosts, over ZeroMQ.

The URL is ``tcp://host:port``, with optional query parameters ``journal=<dir>``
(default ``$TROY_HOME/zmq/<host>_<port>``), ``retry=<seconds>``, and for CURVE
(on unless ``curve=off``): ``curve_keys=<file>`` (default
``<journal>/curve-keys``), ``curve_serverkey=`` and the secret ``curve_secretkey=``.

**Security.**  The broker is a CURVE server (zmq_curve.py): everything on TCP
is encrypted, and it answers only clients that hold the client key pair it
made with its own (kept in its key file, mode 0600); any other peer gets no
answer and changes nothing.  A client takes its keys from the URL's
``curve_serverkey=``/``curve_secretkey=`` (an agent: from its environment,
`agent_secrets`) or else from the key file.  Connections inside the broker's
process use ``inproc://``, where no key is needed.

**Broker.**  A manager's connection (``serve=True``) hosts the broker when it
can bind the port; it keeps everything in a journal directory (zmq_broker.py
says how it binds, journals and takes over).

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
on the journal, with the file plugin's semantics.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Collection, Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar

try:
    import zmq
except ImportError:  # the plugin loads without pyzmq and says what to install when used
    zmq = None  # type: ignore[assignment]

from troy.model import secrets as secret_values
from troy.model.errors import CoordinationError, CoordinationRefused
from troy.plugins.coordination import zmq_broker
from troy.plugins.coordination import zmq_curve as curve
from troy.plugins.coordination.base import (
    DEFAULT_RETRY,
    Coordination,
    Cursor,
    check_name,
    new_writer_id,
)
from troy.plugins.coordination.zmq_address import parse_url
from troy.plugins.options import Option, choice, number, text

#: Seconds that opening a connection waits for the broker to answer.
OPEN_TIMEOUT = 2.0
#: Seconds a request waits for its reply before the socket is replaced (doubling up to the max).
REPLY_WAIT, REPLY_WAIT_MAX = 1.0, 4.0
BACKOFF, BACKOFF_MAX = 0.05, 1.0

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
            "curve": Option(
                "on",
                "CURVE authentication and encryption (off: anyone who reaches the port is served)",
                choice("on", "off", ignore_case=True),
            ),
            "curve_keys": Option(
                None,
                "the broker's CURVE key file (mode 0600); default JOURNAL/curve-keys",
                text(),
            ),
            curve.SERVER_KEY: Option(
                None,
                "the broker's CURVE public key (Z85), instead of the key file",
                curve.key_check(),
                secret=True,  # not secret, but given with curve_secretkey (troy.model.secrets)
            ),
            curve.SECRET_KEY: Option(
                None,
                "the client's CURVE secret key (Z85), instead of the key file",
                curve.key_check(),
                secret=True,
            ),
        }
    )

    def __init__(self, url: str, *, serve: bool = False) -> None:
        super().__init__(url, serve=serve)
        self.shown_url = secret_values.redact_url(url, self.secret_options())
        if zmq is None:
            raise CoordinationError(
                f"coordination URL {self.shown_url} needs pyzmq: pip install troy[zmq]"
                " (or pip install pyzmq)"
            )
        self.address = parse_url(url)
        self.endpoint = self.address.endpoint
        if self.address.curve and not zmq.has("curve"):
            raise CoordinationError(
                f"coordination URL {self.shown_url}: this pyzmq has no CURVE (libsodium);"
                " install pyzmq's wheel, or give curve=off on a network only your hosts reach"
            )
        self._socket: zmq.Socket[bytes] | None = None
        self._monitor: zmq.Socket[bytes] | None = None
        self._new_process()
        why_not_hosted = zmq_broker.host_broker(self.address) if serve else None
        self.keys = self._client_keys() if self.address.curve else None
        try:
            self.broker = self._call("ping", [], window=OPEN_TIMEOUT)
        except CoordinationError as exc:
            self.close()
            if self.refused is not None:
                raise
            hint = f" (this process could not host it either: {why_not_hosted})"
            raise CoordinationError(
                f"no troy zmq broker answers at {self.endpoint}{hint if why_not_hosted else ''}"
                f"; start a manager (serve=True) with this URL first (URL {self.shown_url})"
            ) from exc

    def _client_keys(self) -> curve.ClientKeys:
        """This client's CURVE keys: from the URL, else from the broker's key file."""
        given = curve.client_keys_from_url(self.address.serverkey, self.address.secretkey)
        if given is not None:
            return given
        path = self.address.key_file
        if not os.path.exists(path):
            raise CoordinationError(
                f"zmq coordination {self.shown_url}: no CURVE keys for the broker at"
                f" {self.endpoint}: its key file {path} does not exist (the broker makes it"
                " when it first starts, so none has run with this journal on this host). On"
                " another host give curve_keys=<a copy of it> (mode 0600), or"
                f" {curve.SERVER_KEY}= and {curve.SECRET_KEY}= (docs/coordination.md)"
            )
        return curve.read_keys(path).for_client()

    def agent_secrets(self) -> dict[str, str]:
        """The URL's secrets and this client's CURVE keys: an agent anywhere connects with them."""
        hidden = super().agent_secrets()
        if self.keys is not None:
            hidden[curve.SERVER_KEY] = self.keys.server_public.decode()
            hidden[curve.SECRET_KEY] = self.keys.client_secret.decode()
        return hidden

    def _new_process(self) -> None:
        """Start afresh in this process: a new id, a new lock, no socket (a fork inherits none)."""
        self._pid = os.getpid()
        self._lock = threading.Lock()
        #: Set when the broker predates the "wait" request (contract 1.4).
        self._cannot_wait = False
        self._socket = None  # a parent's socket is not ours to close
        self._monitor = None
        #: Why the broker last refused this client's handshake (None: it never did).
        self.refused: str | None = None
        self.connection_id = new_writer_id()
        self._request = 0

    # -- transport -----------------------------------------------------------------
    def _connect(self) -> zmq.Socket[bytes]:
        process = zmq_broker.this_process()
        dealer = process.zmq_context().socket(zmq.DEALER)
        dealer.linger = 0
        if self.endpoint in process.brokers:
            dealer.connect(
                zmq_broker.inproc(self.endpoint)
            )  # half the latency of TCP over loopback
        else:
            dealer.ipv6 = self.endpoint.startswith("tcp://[")
            if self.keys is not None:
                curve.use_client_keys(dealer, self.keys)
            # A refused client gets no answer: the handshake's outcome says why.
            self._monitor = curve.watch_handshakes(dealer)
            dealer.connect(self.endpoint)
        self._socket = dealer
        return dealer

    def _disconnect(self) -> None:
        if self._socket is not None:
            if self._monitor is not None:
                self.refused = curve.handshake_failure(self._monitor) or self.refused
                self._socket.disable_monitor()
                self._monitor.close(linger=0)
                self._monitor = None
            self._socket.close(linger=0)
            self._socket = None

    def _call(
        self, op: str, args: list[Any], window: float | None = None, held: float = 0.0
    ) -> Any:
        """Send one request until the broker answers or ``window`` seconds have passed.

        ``held``: seconds the broker may hold the request before it answers (a wait).
        """
        try:
            body = zmq_broker.encode(args)
        except (TypeError, ValueError) as exc:
            raise CoordinationError(f"{op} arguments are not JSON-ready: {exc}") from exc
        if self._pid != os.getpid():
            self._new_process()
        # Even with retry=0 a request gets one full wait for its reply.
        window = max(REPLY_WAIT + held, self.address.retry if window is None else window)
        with self._lock:
            self._request += 1
            rid = str(self._request).encode()
            request = [zmq_broker.PROTOCOL, self.connection_id.encode(), rid, op.encode(), body]
            deadline = time.monotonic() + window
            wait, backoff = REPLY_WAIT + held, BACKOFF
            self.refused = None
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
                    if self.refused is not None:
                        raise CoordinationRefused(self._no_answer(op, window))
                    raise CoordinationError(self._no_answer(op, window))
                if self.serve:
                    # Take over from a host process that is gone; if this process cannot
                    # (a key file it cannot write on a full disk), try again next round.
                    with contextlib.suppress(CoordinationError):
                        zmq_broker.host_broker(self.address)
                time.sleep(max(0.0, min(backoff, deadline - time.monotonic())))
                wait = min(2 * wait, REPLY_WAIT_MAX + held)
                backoff = min(2 * backoff, BACKOFF_MAX)

    def _no_answer(self, op: str, window: float) -> str:
        """What went wrong when the broker did not answer ``op`` within ``window`` seconds."""
        keys = f"CURVE keys from {self.keys.source}" if self.keys else "no CURVE keys (curve=off)"
        if self.refused is not None:
            return (
                f"the troy zmq broker at {self.endpoint} refused this client (tried {op} for"
                f" {window:g} s): {self.refused}; this client has {keys} (URL {self.shown_url})"
            )
        return (
            f"no answer from the troy zmq broker at {self.endpoint} to {op} within {window:g} s"
            f" (retry= in the URL sets how long to try; this client has {keys};"
            f" URL {self.shown_url})"
        )

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
            self._call("append", [stream, zmq_broker.event_list(stream, events)])

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
        checked = {queue: zmq_broker.check_items(queue, items) for queue, items in queues.items()}
        checked = {queue: items for queue, items in checked.items() if items}
        if events or checked:
            self._call("commit", [stream, zmq_broker.event_list(stream, events), checked])

    # -- queues --------------------------------------------------------------------
    def enqueue(self, queue: str, items: Sequence[Mapping[str, Any]]) -> None:
        checked = zmq_broker.check_items(queue, items)
        if checked:
            self._call("enqueue", [queue, checked])

    def claim(self, queue: str, claimer: str, max_items: int) -> list[dict[str, Any]]:
        check_name(queue)
        items: list[dict[str, Any]] = self._call(
            "claim", [queue, check_name(claimer), int(max_items)]
        )
        return items

    def wait_for_work(self, queue: str, stream: str, cursor: Cursor, timeout: float) -> bool:
        """The broker holds the request until the queue or stream changes since this
        connection last claimed or read it, or for at most zmq_broker.MAX_HOLD s.

        ``cursor`` is not needed: the broker counts the changes it carried out.  A
        broker from before contract 1.4 refuses the request: then False, from then on.
        """
        if self._cannot_wait:
            return False
        hold = min(float(timeout), zmq_broker.MAX_HOLD)
        try:
            self._call("wait", [check_name(queue), check_name(stream), hold], held=hold)
        except CoordinationError as exc:
            if "bad request wait" not in str(exc):
                raise
            self._cannot_wait = True
            return False
        return True

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
        return bool(
            self._call("compact", [check_name(stream), zmq_broker.event_list(stream, events)])
        )

    def withdraw(self, queue: str, ids: Collection[str]) -> list[str]:
        check_name(queue)
        wanted = list(ids)
        removed: list[str] = self._call("withdraw", [queue, wanted]) if wanted else []
        return removed
