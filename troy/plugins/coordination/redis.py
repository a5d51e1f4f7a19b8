"""The ``redis`` coordination plugin: records, streams and queues on a Redis server.

URL: ``redis://[[user]:password@]host[:port][/db][?prefix=troy&retry=30]``, or
``rediss://`` for TLS (``ssl_ca_certs=``, ``ssl_certfile=``, ``ssl_keyfile=`` (paths) and
``ssl_cert_reqs=none|optional|required`` may be added).  The password may instead come
from ``?password_file=`` or ``$TROY_REDIS_PASSWORD`` (see redis_connect).  Many troy
installations can share one server, each under its own ``prefix`` (a coordination
name, default ``troy``).  Needs Redis >= 7.0 (Lua scripts with flags) and redis-py >= 5
(``pip install troy[redis]``).  Keys, with ``P`` the prefix::

    P:rec:<key>                      STRING   one record, JSON
    P:kids:<parent>                  SET      keys of the records directly below <parent>
    P:stream:<stream>                STREAM   one entry per batch: w=<writer id>, e=<JSON array>
    P:q:<queue>                      LIST     pending items, JSON, oldest first
    P:q:<queue>:wake                 STREAM   one entry per enqueue (the last kept): wakes
                                              claimers blocked in wait_for_work (XREAD BLOCK)
    P:claimed:<queue>:<claimer>      LIST     items the claimer took, in order; '' once acked
    P:claimed:<queue>:<claimer>:base STRING   acked items popped off that list's head
    P:ctr:<counter>                  STRING   an allocate counter: the next free number
    P:op:<writer id>-<n>             STRING/LIST   outcome of one write, kept for the retry window

Names cannot contain ``:``, so no two names (nor two prefixes) share a key.  A
stream cursor is the id of the last entry read (``"1718000000000-0"``).  Every
call is one round trip (a read of a long stream one per 512 batches): writes are
Lua scripts, so each is atomic, and a ``commit`` appends its event batch and
enqueues its items in one script.  Queue items are stored as compact JSON with
``"id"`` first, which lets ``withdraw`` find them by a string prefix instead of
parsing every item.  One server (or a primary), not Redis Cluster: a commit's
keys need not share a slot.

Failures.  Every call retries connection errors, timeouts and a server loading its
data after a restart, with backoff from 0.05 s doubling to 1 s, for up to ``retry``
seconds, then raises CoordinationError naming host:port.  A retried call may find
that its first attempt did take effect (the reply was lost): every write therefore
carries a token unique to the call (``P:op:...``, expiring after the retry window)
and the server applies it at most once: a retried append, enqueue or commit is not
recorded twice, and a retried claim or withdraw returns what its first attempt
took.  (An item id enqueued again by a *later* call is queued again: an agent
returns the units it did not start that way.)  Only when the retry window runs out
after an attempt with an unknown outcome does the caller not learn what happened:
the CoordinationError it gets may come from a write that was applied, and a claim's
items may then sit in the claimer's list only.  Durability is the server's: run it
with ``--appendonly yes --appendfsync always`` to lose nothing when it restarts.

The password is never put in messages or ``repr``; `public_url` leaves it out (and
``password_file=``) and `agent_secrets` hands it to agents.  ``ack`` blanks the
acknowledged items of a claimed list and pops blanks off its head (counting them in
``:base``, so the positions a retried claim reads keep their meaning); a list whose
items are all acked is deleted.  ``create_record`` (SET NX) and ``allocate`` (INCRBY)
carry tokens like every write, so a retry answers as the first attempt did.
``compact`` trims the stream to nothing and adds the summary as one entry marked
``c``, in one script; the stream keeps its last id, so the summary's is greater than
any old cursor.  A read from the start that meets the summary after older entries (the
stream was compacted between two of its XRANGEs) keeps only the summary.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import os
import re
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from troy.model import secrets
from troy.model.errors import CoordinationError, CoordinationRefused
from troy.plugins.coordination.base import (
    DEFAULT_RETRY,
    Coordination,
    Cursor,
    check_name,
    encode_array,
    parse_each,
)
from troy.plugins.coordination.redis_connect import (
    CERT_REQS,
    PASSWORD_ENV,
    PASSWORD_FILE,
    TLS_FILES,
    explain,
    resolve_password,
    tls_settings,
)
from troy.plugins.coordination.redis_scripts import (
    ACK,
    ALLOCATE,
    CLAIM,
    COMPACT,
    CREATE_RECORD,
    WITHDRAW,
    WRITE,
)
from troy.plugins.options import Option, choice, number, text

if TYPE_CHECKING:
    import redis as redis_module
    from redis.commands.core import Script

T = TypeVar("T")

DEFAULT_PREFIX = "troy"
DEFAULT_PORT = 6379
#: Seconds to connect, and to wait for the answer to the check at connect time.
CONNECT_TIMEOUT = 2.0
#: Seconds to wait for the answer to a call before counting the connection as lost.
SOCKET_TIMEOUT = 10.0
#: Stream entries (event batches) fetched per round trip by ``read``.
READ_COUNT = 512
FIRST_BACKOFF, MAX_BACKOFF = 0.05, 1.0
MIN_SERVER = (7, 0)

_STREAM_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")
_OPTIONS = ("prefix", "retry", PASSWORD_FILE, *TLS_FILES, "ssl_cert_reqs")
# ensure_ascii (the default) keeps items plain ASCII, so the prefix test of withdraw is exact.
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def _import_redis() -> Any:
    try:
        import redis
    except ImportError as exc:
        raise CoordinationError(
            "the redis coordination plugin needs redis-py: pip install troy[redis]"
        ) from exc
    return redis


def _encode(value: Any, what: str) -> bytes:
    try:
        return _ENCODER.encode(value).encode()
    except (TypeError, ValueError) as exc:
        raise CoordinationError(f"{what} is not JSON-ready: {exc}") from exc


def _parse_array(parts: Sequence[bytes], where: str) -> list[Any]:
    """The JSON values of ``parts``, parsed in one call."""
    try:
        values = json.loads(b"[" + b",".join(parts) + b"]")
    except (ValueError, RecursionError) as exc:
        raise CoordinationError(f"corrupt JSON in {where}: {exc}") from exc
    if not isinstance(values, list) or len(values) != len(parts):
        raise CoordinationError(f"corrupt JSON in {where}")
    return values


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"[0-9]+", text)[:3])


class RedisCoordination(Coordination):
    """Records, streams and queues on one Redis server; see the module docstring."""

    name = "redis"
    schemes = ("redis", "rediss")
    #: Connections from any process or host to the same server and prefix see one state.
    capabilities: ClassVar[frozenset[str]] = frozenset({"multiprocess"})
    option_specs: ClassVar[Mapping[str, Option]] = MappingProxyType(
        {
            "prefix": Option(
                DEFAULT_PREFIX,
                "the coordination name: installations sharing a server each use their own;"
                " /-separated words of [A-Za-z0-9._-]",
                text(),
            ),
            "retry": Option(
                DEFAULT_RETRY,
                "seconds a call keeps retrying a server that does not answer",
                number(0, text=True),
            ),
            PASSWORD_FILE: Option(
                None,
                "a private file (mode 0600) whose first line is the password, instead of the"
                f" URL's user part; else ${PASSWORD_ENV} is used; agents get the password itself",
                text(),
            ),
            "ssl_ca_certs": Option(
                None,
                "rediss:// only: a file of CA certificates to check the server's (on every host)",
                text(),
            ),
            "ssl_certfile": Option(
                None,
                "rediss:// only: this client's certificate, for a server that asks for one"
                " (on every host)",
                text(),
            ),
            "ssl_keyfile": Option(
                None,
                "rediss:// only: the private key of ssl_certfile (on every host; troy does not"
                " ship it)",
                text(),
            ),
            "ssl_cert_reqs": Option(
                "required",
                "rediss:// only: how strictly the server's certificate is checked",
                choice(*CERT_REQS),
            ),
        }
    )

    def __init__(self, url: str, *, serve: bool = False) -> None:
        super().__init__(url, serve=serve)
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in self.schemes:
            raise CoordinationError(f"not a redis coordination URL: {secrets.redact_url(url)}")
        try:
            port = parts.port or DEFAULT_PORT
        except ValueError as exc:
            raise CoordinationError(
                f"redis coordination URL {secrets.redact_url(url)} has a bad port"
            ) from exc
        self.host = parts.hostname or "localhost"
        self.port = port
        #: host:port, for messages.
        self.where = f"[{self.host}]:{port}" if ":" in self.host else f"{self.host}:{port}"
        #: The URL as messages and ``repr`` show it: without its password.
        self._safe_url = secrets.redact_url(url)
        path = parts.path.strip("/")
        if path and not path.isdigit():
            raise CoordinationError(
                f"redis coordination URL {self._safe_url}: the path must be a database "
                f"number, not {path!r}"
            )
        self.db = int(path or 0)
        options = self._options(parts.query)
        self._tls = scheme == "rediss"
        self._password = resolve_password(
            unquote(parts.password) if parts.password is not None else None,
            options.pop(PASSWORD_FILE, None),
            os.environ,
            self._safe_url,
        )
        self.prefix = options.pop("prefix", DEFAULT_PREFIX)
        if not re.fullmatch(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*", self.prefix):
            raise CoordinationError(
                f"redis coordination URL {self._safe_url}: prefix {self.prefix!r} must be "
                f"/-separated words of [A-Za-z0-9._-]"
            )
        retry = options.pop("retry", None)
        try:
            self.retry = DEFAULT_RETRY if retry is None else float(retry)
        except ValueError:
            self.retry = math.nan
        if not (self.retry >= 0 and math.isfinite(self.retry)):
            raise CoordinationError(
                f"redis coordination URL {self._safe_url}: retry={retry} is not a number of seconds"
            )
        #: Seconds a write's token lives: longer than any retry of that write can come.
        self._token_ttl = math.ceil(self.retry + 2 * SOCKET_TIMEOUT) + 60
        self._counter = itertools.count()
        #: The last entry seen of each queue's wake-up stream (wait_for_work).
        self._wake_ids: dict[str, str] = {}
        self._redis = _import_redis()
        from redis.backoff import NoBackoff
        from redis.exceptions import AuthenticationError, AuthorizationError
        from redis.retry import Retry

        #: Errors that retrying cannot cure, although redis-py makes them ConnectionErrors.
        self._refused: tuple[type[Exception], ...] = (AuthenticationError, AuthorizationError)
        self._transient: tuple[type[Exception], ...] = (
            self._redis.ConnectionError,
            self._redis.TimeoutError,
            TimeoutError,
            ConnectionError,
        )
        ssl = tls_settings(options, self._safe_url) if self._tls else {}
        if options:
            raise CoordinationError(
                f"redis coordination URL {self._safe_url}: unknown option(s) "
                f"{', '.join(sorted(options))}; known: {', '.join(_OPTIONS)}"
                + ("" if scheme == "rediss" else " (ssl_* with rediss:// only)")
            )
        settings: dict[str, Any] = {
            "host": self.host,
            "port": port,
            "db": self.db,
            "username": unquote(parts.username) if parts.username else None,
            "password": self._password,
            "socket_connect_timeout": CONNECT_TIMEOUT,
            "retry": Retry(NoBackoff(), 0),  # _call retries instead
            **ssl,
        }
        self._check(settings)
        self._client: redis_module.Redis = self._redis.Redis(
            socket_timeout=SOCKET_TIMEOUT, **settings
        )
        self._write_script: Script = self._client.register_script(WRITE)
        self._claim_script: Script = self._client.register_script(CLAIM)
        self._withdraw_script: Script = self._client.register_script(WITHDRAW)
        self._create_script: Script = self._client.register_script(CREATE_RECORD)
        self._allocate_script: Script = self._client.register_script(ALLOCATE)
        self._ack_script: Script = self._client.register_script(ACK)
        self._compact_script: Script = self._client.register_script(COMPACT)

    def public_url(self) -> str:
        """The URL without its password, nor ``password_file=`` (agents get the password)."""
        public = super().public_url()
        parts = urlsplit(public)
        query = parse_qsl(parts.query, keep_blank_values=True)
        if not any(name == PASSWORD_FILE for name, _ in query):
            return public
        kept = [(name, value) for name, value in query if name != PASSWORD_FILE]
        return parts._replace(query=urlencode(kept, safe="/:,~")).geturl()

    def agent_secrets(self) -> dict[str, str]:
        """The password, wherever it came from (URL, password_file= or the environment).

        An agent joins it to `public_url` as the URL's password: it needs neither
        the file nor the variable.  TLS files are not secrets here: their paths
        stay in the URL and must exist on the agent's host.
        """
        return {secrets.PASSWORD: self._password} if self._password else {}

    def _options(self, query: str) -> dict[str, str]:
        options: dict[str, str] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            if key in options:
                raise CoordinationError(
                    f"redis coordination URL {self._safe_url} gives {key}= twice"
                )
            options[key] = value
        return options

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._safe_url!r})"

    def _scrub(self, text: object) -> str:
        message = str(text)
        if self._password:
            message = message.replace(self._password, secrets.REDACTED)
        return secrets.scrub(message)

    def _refusal(self, exc: BaseException) -> str:
        """What a failed connect most likely means, and the redacted URL, for a message."""
        hint = explain(exc, self._tls)
        return f"{hint + ' ' if hint else ''}({self._safe_url}): {self._scrub(exc)}"

    def _check(self, settings: dict[str, Any]) -> None:
        """PING the server and check its version; CoordinationError at once if it does not answer.

        A server that answers that it is still loading its data is waited for, as in a call.
        """
        client = self._redis.Redis(socket_timeout=CONNECT_TIMEOUT, **settings)
        unreachable: tuple[type[Exception], ...] = (*self._transient, OSError)
        try:
            deadline = time.monotonic() + self.retry
            delay = FIRST_BACKOFF
            while True:
                try:
                    client.ping()
                    try:
                        info = cast(dict[str, Any], client.info("server"))
                    except self._redis.ResponseError:  # INFO not allowed to this user
                        info = {}
                    break
                except self._redis.BusyLoadingError as exc:
                    if time.monotonic() + delay > deadline:
                        raise CoordinationError(
                            f"Redis at {self.where} is still loading its data after "
                            f"{self.retry:g} s"
                        ) from exc
                    time.sleep(delay)
                    delay = min(2 * delay, MAX_BACKOFF)
                except self._refused as exc:
                    raise CoordinationRefused(
                        f"Redis at {self.where} refused the credentials: {self._refusal(exc)}"
                    ) from exc
                except unreachable as exc:
                    raise CoordinationError(
                        f"cannot connect to Redis at {self.where}: {self._refusal(exc)}"
                    ) from exc
                except self._redis.RedisError as exc:
                    raise CoordinationError(
                        f"Redis at {self.where} answered PING with an error: {self._scrub(exc)}"
                    ) from exc
        finally:
            client.close()
        version = str(info.get("redis_version", ""))
        if version and _version(version) < MIN_SERVER:
            raise CoordinationError(
                f"Redis at {self.where} runs version {version}; troy needs "
                f"{'.'.join(map(str, MIN_SERVER))} or later"
            )

    # -- plumbing ----------------------------------------------------------------
    def _key(self, kind: str, name: str) -> str:
        return f"{self.prefix}:{kind}:{name}"

    def _token(self) -> str:
        """A key naming one write, so that its retries are applied at most once."""
        return f"{self.prefix}:op:{self.writer}-{next(self._counter)}"

    def _call(self, what: str, operation: Callable[[], T]) -> T:
        """``operation()``, retried through outages for up to ``retry`` seconds."""
        deadline = time.monotonic() + self.retry
        delay = FIRST_BACKOFF
        while True:
            try:
                return operation()
            except self._refused as exc:
                raise CoordinationError(
                    f"Redis at {self.where} refused to {what}: {self._scrub(exc)}"
                ) from exc
            except self._transient as exc:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CoordinationError(
                        f"Redis at {self.where} did not answer for {self.retry:g} s "
                        f"({what}): {self._scrub(exc)}"
                    ) from exc
                time.sleep(min(delay, left))
                delay = min(2 * delay, MAX_BACKOFF)
            except self._redis.RedisError as exc:
                raise CoordinationError(
                    f"Redis at {self.where} failed to {what}: {self._scrub(exc)}"
                ) from exc

    def close(self) -> None:
        """Close this connection's sockets."""
        self._client.close()
        self._client.connection_pool.disconnect()

    # -- records -----------------------------------------------------------------
    def put_record(self, key: str, record: Mapping[str, Any]) -> None:
        """SET the record and add its key to its parent's SET of children, in one transaction."""
        check_name(key)
        data = _encode(dict(record), f"record {key}")
        parent = key.rpartition("/")[0]

        def put() -> None:
            pipe = self._client.pipeline(transaction=True)
            pipe.set(self._key("rec", key), data)
            if parent:
                pipe.sadd(self._key("kids", parent), key)
            pipe.execute()

        self._call(f"put record {key}", put)

    def get_record(self, key: str) -> dict[str, Any] | None:
        """The record under ``key``, or None."""
        check_name(key)
        data = self._call(f"get record {key}", lambda: self._client.get(self._key("rec", key)))
        if data is None:
            return None
        try:
            record = json.loads(cast(bytes, data))
        except ValueError as exc:
            raise CoordinationError(f"record {key} in Redis at {self.where} is corrupt") from exc
        if not isinstance(record, dict):
            raise CoordinationError(f"record {key} in Redis at {self.where} is not an object")
        return record

    def create_record(self, key: str, record: Mapping[str, Any]) -> bool:
        """SET NX the record (and add its key to its parent's children) in one script, once."""
        check_name(key)
        data = _encode(dict(record), f"record {key}")
        parent = key.rpartition("/")[0]
        token = self._token()
        keys = [token, self._key("rec", key), self._key("kids", parent) if parent else token]
        stored = self._call(
            f"create record {key}",
            lambda: self._create_script(keys=keys, args=[self._token_ttl, data, key]),
        )
        return bool(stored)

    def allocate(self, counter: str, count: int) -> int:
        """INCRBY ``P:ctr:<counter>`` in a script that a retry does not apply twice."""
        check_name(counter)
        if count < 1:
            raise CoordinationError(f"allocate: count must be at least 1, got {count}")
        keys = [self._token(), self._key("ctr", counter)]
        first = self._call(
            f"allocate from counter {counter}",
            lambda: self._allocate_script(keys=keys, args=[self._token_ttl, count]),
        )
        return int(cast(int, first))

    def list_records(self, prefix: str) -> list[str]:
        """Keys directly below ``prefix``, sorted: one SMEMBERS."""
        check_name(prefix)
        members = self._call(
            f"list records below {prefix}",
            lambda: cast(set[bytes], self._client.smembers(self._key("kids", prefix))),
        )
        return sorted(member.decode() for member in members)

    # -- streams and writes --------------------------------------------------------
    def _write(
        self,
        what: str,
        stream: str | None,
        events: Sequence[Mapping[str, Any]],
        queues: Mapping[str, Sequence[Mapping[str, Any]]],
    ) -> None:
        """Append ``events`` to ``stream`` and push the queues' items, in one script, once."""
        batch = b""
        if stream is not None and events:
            batch = encode_array(events, _encode, f"event batch for {stream}")
        token = self._token()
        keys = [token, self._key("stream", stream) if stream is not None and batch else token]
        args: list[Any] = [self._token_ttl, self.writer, batch]
        for queue, items in queues.items():
            if items:
                keys.append(self._key("q", queue))
                args.append(len(items))
                args.extend(self._items(queue, items))
        if not batch and len(keys) == 2:
            return
        self._call(what, lambda: self._write_script(keys=keys, args=args))

    @staticmethod
    def _items(queue: str, items: Sequence[Mapping[str, Any]]) -> list[bytes]:
        encoded = []
        for item in items:
            if not isinstance(item, Mapping) or not isinstance(item.get("id"), str):
                raise CoordinationError(f"queue item without a string 'id': {item!r:.200}")
            # "id" first: withdraw finds an item by this prefix.
            encoded.append(_encode({"id": item["id"], **item}, f"item {item['id']} for {queue}"))
        return encoded

    def append(self, stream: str, events: Sequence[Mapping[str, Any]]) -> None:
        """XADD the batch as one stream entry holding a JSON array."""
        check_name(stream)
        self._write(f"append to stream {stream}", stream, events, {})

    def commit(
        self,
        stream: str,
        events: Sequence[Mapping[str, Any]],
        queues: Mapping[str, Sequence[Mapping[str, Any]]],
    ) -> None:
        """Append the batch and enqueue every queue's items in one atomic script."""
        check_name(stream)
        for queue in queues:
            check_name(queue)
        self._write(f"commit to stream {stream}", stream, events, queues)

    def compact(self, stream: str, events: Sequence[Mapping[str, Any]]) -> bool:
        """Empty the stream and add the summary as one entry, in one script.

        A retry adds the same summary again, which leaves the same stream.
        """
        check_name(stream)
        summary = _encode([dict(event) for event in events], f"summary of {stream}")
        keys = [self._key("stream", stream)]
        self._call(
            f"compact stream {stream}",
            lambda: self._compact_script(keys=keys, args=[self.writer, summary]),
        )
        return True

    def read(
        self, stream: str, cursor: Cursor = None, skip_own: bool = False
    ) -> tuple[list[dict[str, Any]], Cursor]:
        """Batches after ``cursor`` (the last stream entry id read), READ_COUNT per XRANGE.

        A read from the start that meets a summary (``c`` field) after other
        entries saw the stream compacted between two XRANGEs: it keeps the summary only.
        """
        check_name(stream)
        if cursor is not None and not (isinstance(cursor, str) and _STREAM_ID.fullmatch(cursor)):
            raise CoordinationError(f"not a redis coordination stream cursor: {cursor!r:.200}")
        key = self._key("stream", stream)
        own = self.writer.encode() if skip_own else None
        batches: list[bytes] = []
        last = cursor

        def fetch(start: str) -> list[tuple[bytes, dict[bytes, bytes]]]:
            entries = self._client.xrange(key, start, "+", count=READ_COUNT)
            return cast(list[tuple[bytes, dict[bytes, bytes]]], entries)

        while True:
            start = "-" if last is None else f"({last}"
            entries = self._call(f"read stream {stream}", functools.partial(fetch, start))
            for _, fields in entries:
                if cursor is None and b"c" in fields:
                    batches.clear()  # compacted while we read: the summary replaces it all
                if own is None or fields.get(b"w") != own:
                    batches.append(fields.get(b"e", b"[]"))
            if entries:
                last = entries[-1][0].decode()
            if len(entries) < READ_COUNT:
                break
        events: list[dict[str, Any]] = []
        for batch in _parse_array(batches, f"stream {stream}"):
            if not isinstance(batch, list) or not all(isinstance(e, dict) for e in batch):
                raise CoordinationError(f"corrupt batch in stream {stream}: not events")
            events.extend(batch)
        return events, last

    # -- queues --------------------------------------------------------------------
    def enqueue(self, queue: str, items: Sequence[Mapping[str, Any]]) -> None:
        """RPUSH the items, once even if the call is retried."""
        check_name(queue)
        self._write(f"enqueue to {queue}", None, (), {queue: items})

    def claim(self, queue: str, claimer: str, max_items: int) -> list[dict[str, Any]]:
        """LPOP up to ``max_items`` and RPUSH them to the claimer's list, in one script."""
        check_name(queue)
        check_name(claimer)
        if max_items < 1:
            return []
        claimed = f"{self._key('claimed', queue)}:{claimer}"
        keys = [self._key("q", queue), claimed, self._token(), f"{claimed}:base"]
        items = self._call(
            f"claim from {queue}",
            lambda: cast(
                list[bytes], self._claim_script(keys=keys, args=[max_items, self._token_ttl])
            ),
        )
        if not items:
            return []
        try:
            return cast(list[dict[str, Any]], _parse_array(items, f"queue {queue}"))
        except CoordinationError:  # one item that is not JSON must not hide the others
            return parse_each(items, f"queue {queue}")

    def wait_for_work(self, queue: str, stream: str, cursor: Cursor, timeout: float) -> bool:
        """XREAD BLOCK on the queue's wake-up stream and ``stream`` after ``cursor``.

        The wake-up stream's last id is remembered per queue: the first call only
        fetches it and returns at once (look now), so an enqueue between the
        caller's claim and its next wait is never missed.
        """
        check_name(queue)
        check_name(stream)
        if cursor is not None and not (isinstance(cursor, str) and _STREAM_ID.fullmatch(cursor)):
            raise CoordinationError(f"not a redis coordination stream cursor: {cursor!r:.200}")
        wake = self._key("q", queue) + ":wake"
        seen = self._wake_ids.get(queue)
        if seen is None:
            last = self._call(
                f"wait for {queue}",
                lambda: cast(list[tuple[bytes, Any]], self._client.xrevrange(wake, count=1)),
            )
            self._wake_ids[queue] = last[0][0].decode() if last else "0-0"
            return True
        # Below the socket timeout, which would count a longer block as a lost connection.
        block = max(1, int(1000 * min(timeout, SOCKET_TIMEOUT / 2)))
        keys: dict[Any, Any] = {wake: seen, self._key("stream", stream): cursor or "0-0"}
        found = self._call(
            f"wait for {queue}",
            lambda: cast(list[Any], self._client.xread(keys, count=1, block=block)),
        )
        for key, entries in found or []:
            if key == wake.encode() and entries:
                self._wake_ids[queue] = entries[-1][0].decode()
        return True

    def ack(self, queue: str, claimer: str, ids: Collection[str]) -> None:
        """Blank the acknowledged items in the claimer's list and pop blanks off its head."""
        check_name(queue)
        check_name(claimer)
        wanted = [_encode(ident, "item id") for ident in dict.fromkeys(ids)]
        if not wanted:
            return
        claimed = f"{self._key('claimed', queue)}:{claimer}"
        self._call(
            f"acknowledge items of {queue}",
            lambda: self._ack_script(keys=[claimed, f"{claimed}:base"], args=wanted),
        )

    def withdraw(self, queue: str, ids: Collection[str]) -> list[str]:
        """Remove the named pending items in one script; their ids, in queue order."""
        check_name(queue)
        wanted = [_encode(ident, "item id") for ident in dict.fromkeys(ids)]
        if not wanted:
            return []
        keys = [self._key("q", queue), self._token()]
        found = self._call(
            f"withdraw from {queue}",
            lambda: cast(
                list[bytes], self._withdraw_script(keys=keys, args=[self._token_ttl, *wanted])
            ),
        )
        return [cast(str, ident) for ident in _parse_array(found, f"queue {queue}")]
