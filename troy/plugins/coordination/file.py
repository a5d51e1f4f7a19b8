"""The ``file`` coordination plugin: a directory on a local or shared filesystem.

The URL is ``file:///abs/path`` (``file://localhost/abs/path``) or a plain path;
a relative path is made absolute against the current directory, and the
directory is created if missing.  Layout below it::

    records/<key>.json                                  one record per file
    streams/<stream>/<writer>.jsonl                     one append-only log per writer
    queues/<queue>/@pending/<bundle>.<start>.jsonl      unclaimed items, one JSON per line
    queues/<queue>/@claimed/<claimer>/<same name>       what each claimer took
    queues/<queue>/@tmp/                                temp files, withdrawals in progress

Everything rests on two guarantees that local filesystems and NFS both give:
``rename`` is atomic (of several processes renaming the same file, exactly one
succeeds, the others get ENOENT), and a file written under a temp name and
renamed into place is seen whole or not at all.

- **Records** are written to a temp file beside the record and renamed over it.
- **Streams**: every connection (every process, after a fork) appends to its
  own file, so writers on different hosts never share a file; O_APPEND is not
  atomic across NFS clients.  A batch is ONE line holding a JSON array, written
  with one ``os.write``: its newline is the last byte to land, and readers only
  take complete lines, so a reader never sees part of a batch, even while the
  write is in progress.  (Lines holding a single JSON object are read as a batch
  of one, for other tools that append events.)  A cursor maps writer file names
  to byte offsets: ``{"host-12-9f3a1c2b.jsonl": 4096}``.
- **Queues**: ``enqueue`` publishes one bundle file per call.  Bundle names sort
  in enqueue order (per connection strictly; across hosts as far as their
  clocks agree); ``<start>`` is where a piece of a split bundle starts in the
  original batch, so the pieces sort in item order.
  ``claim`` renames a bundle out of ``@pending`` into the claimer's folder:
  the rename decides who gets it.  A claimer that wins more items than it
  wants publishes the rest back into ``@pending`` (in pieces of doubling size,
  so draining a big bundle in small batches rewrites each item O(log n) times,
  not O(n)), then truncates its claimed file to what it took.  A claim lists
  ``@pending`` only when the names left from its last listing run out or
  turn out stale, so a long queue is not listed on every claim.
  ``withdraw`` renames a bundle that holds a wanted id into ``@tmp``, publishes
  back what it must keep under the same name, and deletes the rest.

Nothing is fsynced: a batch survives the crash of any process, but not
necessarily the loss of the machine's page cache.  Key, stream and queue names
may not contain ``.`` as a word (``a/./b``), which would alias another name.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import threading
import time
from collections import deque
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

from troy.model.errors import CoordinationError
from troy.plugins.coordination.base import Coordination, Cursor, check_name

_PENDING, _CLAIMED, _TMP = "@pending", "@claimed", "@tmp"
_START_DIGITS = 9
_WORD = re.compile(r"[A-Za-z0-9._-]+")
_BUNDLE = re.compile(rf"[0-9]{{20}}-[A-Za-z0-9_-]+-[0-9]+\.[0-9]{{{_START_DIGITS}}}\.jsonl")


def root_of(url: str) -> str:
    """The absolute directory that a ``file://`` URL or a plain path names."""
    parts = urlsplit(url)
    if not parts.scheme:
        path = url
    elif parts.scheme.lower() == "file":
        if parts.netloc not in ("", "localhost"):
            raise CoordinationError(
                f"file coordination URL {url} names host {parts.netloc!r}; "
                f"use file:///absolute/path (on a shared filesystem for many hosts)"
            )
        if parts.query or parts.fragment:
            raise CoordinationError(f"file coordination URL {url} takes no query or fragment")
        path = unquote(parts.path)
    else:
        raise CoordinationError(f"not a file coordination URL: {url}")
    if not path:
        raise CoordinationError(f"file coordination URL {url!r} names no directory")
    return os.path.abspath(os.path.expanduser(path))


def _name(name: str) -> str:
    """``name`` as a relative path, once the contract's check_name has accepted it."""
    return check_name(name)


# ensure_ascii (the default) escapes every control character: no newline inside a line.
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def _dumps(value: Any, what: str) -> bytes:
    try:
        return _ENCODER.encode(value).encode()
    except (TypeError, ValueError) as exc:
        raise CoordinationError(f"{what} is not JSON-ready: {exc}") from exc


def _loads(line: bytes, path: str) -> Any:
    try:
        return json.loads(line)
    except ValueError as exc:
        raise CoordinationError(f"corrupt line in {path}: {line[:80]!r}: {exc}") from exc


def _load_lines(lines: list[bytes], path: str) -> list[Any]:
    """The JSON value of each line, parsed in one call (a tenth of the time of one per line)."""
    try:
        values: list[Any] = json.loads(b"[" + b",".join(lines) + b"]")
    except ValueError:
        return [_loads(line, path) for line in lines]  # names the corrupt line
    if len(values) != len(lines):  # a line such as `1,2` parsed as two values
        return [_loads(line, path) for line in lines]
    return values


def _split(data: bytes) -> list[bytes]:
    """The lines of a bundle (each written with a trailing newline)."""
    return data.split(b"\n")[:-1] if data else []


def _lines(lines: Iterable[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in lines)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read(path: str) -> bytes:
    with open(path, "rb") as file:
        return file.read()


def _positions(cursor: Cursor) -> dict[str, int]:
    if cursor is None:
        return {}
    if isinstance(cursor, dict) and all(
        isinstance(key, str) and type(value) is int and value >= 0 for key, value in cursor.items()
    ):
        return dict(cursor)
    raise CoordinationError(f"not a file coordination stream cursor: {cursor!r:.200}")


class FileCoordination(Coordination):
    """Records, streams and queues as files in one directory tree; see the module docstring."""

    name = "file"
    schemes = ("file",)
    #: Connections in other processes (and on other hosts sharing the directory) see one state.
    capabilities: ClassVar[frozenset[str]] = frozenset({"multiprocess"})

    def __init__(self, url: str, *, serve: bool = False) -> None:
        super().__init__(url, serve=serve)
        self.root = root_of(url)
        self._records = os.path.join(self.root, "records")
        self._streams = os.path.join(self.root, "streams")
        self._queues = os.path.join(self.root, "queues")
        self._dirs: set[str] = set()
        self._counter = itertools.count()
        self._last_ns = 0
        #: Per pending folder: bundle names of the last listing not yet tried.
        self._listings: dict[str, deque[str]] = {}
        #: Per stream folder: where this connection's own file ends after its last append.
        self._own_ends: dict[str, int] = {}
        self._append_lock = threading.Lock()
        for folder in (self._records, self._streams, self._queues):
            self._mkdir(folder)
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise CoordinationError(f"coordination directory {self.root} is not writable")

    # -- files ---------------------------------------------------------------
    def _mkdir(self, folder: str) -> None:
        if folder in self._dirs:
            return
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise CoordinationError(f"cannot create directory {folder}: {exc}") from exc
        self._dirs.add(folder)

    def _temp_name(self, tmp_dir: str) -> str:
        return os.path.join(tmp_dir, f".{self.writer}-{next(self._counter)}.tmp")

    def _publish(self, path: str, data: bytes, tmp_dir: str) -> None:
        """Make ``path`` hold ``data``, atomically, through a temp file in ``tmp_dir``."""
        for attempt in (1, 2):
            tmp = self._temp_name(tmp_dir)
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
                try:
                    _write_all(fd, data)
                finally:
                    os.close(fd)
                os.replace(tmp, path)
                return
            except FileNotFoundError as exc:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                if attempt == 2:
                    raise CoordinationError(f"cannot write {path}: {exc}") from exc
                # Someone removed a folder we had made: make it again, once.
                for folder in (tmp_dir, os.path.dirname(path)):
                    self._dirs.discard(folder)
                    self._mkdir(folder)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise CoordinationError(f"cannot write {path}: {exc}") from exc

    # -- records -------------------------------------------------------------
    def _record_path(self, key: str) -> str:
        return os.path.join(self._records, _name(key) + ".json")

    def put_record(self, key: str, record: Mapping[str, Any]) -> None:
        """Store ``record`` as ``records/<key>.json``, replacing it atomically."""
        path = self._record_path(key)
        data = _dumps(dict(record), f"record {key}")
        folder = os.path.dirname(path)
        self._mkdir(folder)
        self._publish(path, data, folder)

    def get_record(self, key: str) -> dict[str, Any] | None:
        """The record under ``key``, or None."""
        path = self._record_path(key)
        try:
            data = _read(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise CoordinationError(f"cannot read record {path}: {exc}") from exc
        record = _loads(data, path)
        if not isinstance(record, dict):
            raise CoordinationError(f"record {path} does not hold a JSON object")
        return record

    def list_records(self, prefix: str) -> list[str]:
        """Keys directly below ``prefix``, sorted; temp files and deeper keys are not listed."""
        folder = os.path.join(self._records, _name(prefix))
        try:
            with os.scandir(folder) as entries:
                names = [entry.name for entry in entries if entry.is_file()]
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as exc:
            raise CoordinationError(f"cannot list records in {folder}: {exc}") from exc
        # Skips temp files (.tmp) and strays; a key's last word is never "." (see _name).
        stems = [n[:-5] for n in names if n.endswith(".json") and _WORD.fullmatch(n)]
        return sorted(f"{prefix}/{stem}" for stem in stems if stem not in ("", "."))

    # -- streams -------------------------------------------------------------
    def append(self, stream: str, events: Sequence[Mapping[str, Any]]) -> None:
        """Append the batch as one JSON-array line to this writer's file, in one write."""
        folder = os.path.join(self._streams, _name(stream))
        if not events:
            return
        line = _dumps([dict(event) for event in events], f"event batch for {stream}") + b"\n"
        self._mkdir(folder)
        path = os.path.join(folder, self.writer + ".jsonl")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        except OSError as exc:
            raise CoordinationError(f"cannot open stream file {path}: {exc}") from exc
        written = 0
        try:
            with self._append_lock:  # threads of this connection share its file
                while written < len(line):
                    written += os.write(fd, line[written:])
                self._own_ends[folder] = os.lseek(fd, 0, os.SEEK_CUR)
        except OSError as exc:
            if written:
                # The file is ours alone and no reader takes a line without its newline:
                # cutting the torn batch off is safe, and keeps the next batch readable.
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, os.fstat(fd).st_size - written)
            raise CoordinationError(f"cannot append to stream file {path}: {exc}") from exc
        finally:
            os.close(fd)

    def read(
        self, stream: str, cursor: Cursor = None, skip_own: bool = False
    ) -> tuple[list[dict[str, Any]], Cursor]:
        """Complete batches after ``cursor``: each writer's in order, writers by file name."""
        folder = os.path.join(self._streams, _name(stream))
        positions = _positions(cursor)
        try:
            with os.scandir(folder) as entries:
                logs = sorted(
                    (entry.name, entry.stat().st_size)
                    for entry in entries
                    if entry.name.endswith(".jsonl") and entry.is_file()
                )
        except (FileNotFoundError, NotADirectoryError):
            return [], positions
        except OSError as exc:
            raise CoordinationError(f"cannot list stream {folder}: {exc}") from exc
        events: list[dict[str, Any]] = []
        own = self.writer + ".jsonl" if skip_own else None
        for name, size in logs:
            offset = positions.get(name, 0)
            if size <= offset:
                continue
            if name == own:
                # Skip our own batches unread, up to the end of the last one completed.
                with self._append_lock:
                    positions[name] = max(offset, self._own_ends.get(folder, offset))
                continue
            path = os.path.join(folder, name)
            try:
                fd = os.open(path, os.O_RDONLY)
                try:
                    data = os.pread(fd, size - offset, offset)
                finally:
                    os.close(fd)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise CoordinationError(f"cannot read stream file {path}: {exc}") from exc
            end = data.rfind(b"\n")
            if end < 0:
                continue  # only a batch still being written (or torn by a crash)
            lines = [line for line in data[:end].split(b"\n") if line]
            for line, batch in zip(lines, _load_lines(lines, path), strict=True):
                if isinstance(batch, dict):
                    events.append(batch)
                elif isinstance(batch, list) and all(isinstance(e, dict) for e in batch):
                    events.extend(batch)
                else:
                    raise CoordinationError(f"corrupt line in {path}: {line[:80]!r}: not events")
            positions[name] = offset + end + 1
        return events, positions

    # -- queues --------------------------------------------------------------
    def _queue_dirs(self, queue: str) -> tuple[str, str, str]:
        base = os.path.join(self._queues, _name(queue))
        return os.path.join(base, _PENDING), os.path.join(base, _CLAIMED), os.path.join(base, _TMP)

    def _pending(self, pending: str) -> list[str]:
        try:
            # listdir, not scandir: only names are needed, and it is twice as fast.
            names = os.listdir(pending)
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as exc:
            raise CoordinationError(f"cannot list queue {pending}: {exc}") from exc
        return sorted(name for name in names if _BUNDLE.fullmatch(name))

    def enqueue(self, queue: str, items: Sequence[Mapping[str, Any]]) -> None:
        """Publish the items as one bundle at the end of the queue."""
        pending, _, tmp = self._queue_dirs(queue)
        if not items:
            return
        lines = []
        for item in items:
            if not isinstance(item, Mapping) or not isinstance(item.get("id"), str):
                raise CoordinationError(f"queue item without a string 'id': {item!r:.200}")
            lines.append(_dumps(dict(item), f"item {item['id']} for {queue}"))
        self._mkdir(pending)
        self._mkdir(tmp)
        ns = self._last_ns = max(time.time_ns(), self._last_ns + 1)
        stem = f"{ns:020d}-{self.writer}-{next(self._counter):06d}"
        self._publish(
            os.path.join(pending, f"{stem}.{0:0{_START_DIGITS}d}.jsonl"), _lines(lines), tmp
        )

    def claim(self, queue: str, claimer: str, max_items: int) -> list[dict[str, Any]]:
        """Take up to ``max_items`` items, oldest first, renaming bundles to the claimer's folder.

        Returns fewer only when, at one moment, no more were pending: a lost race
        makes the claimer look again, since the winner may have put a rest back.
        The bundle names left over from the last listing are tried before the
        folder is listed again (listing a long queue on every claim is what would
        cost most); a single lost race on them means they are stale.
        """
        pending, claimed, tmp = self._queue_dirs(queue)
        mine = os.path.join(claimed, _name(claimer))
        taken: list[dict[str, Any]] = []
        names = self._listings.pop(pending, None)
        fresh = names is None
        if names is None:
            names = deque(self._pending(pending))
        while True:
            lost = False
            while names and len(taken) < max_items:
                result = self._take(pending, mine, tmp, names.popleft(), max_items - len(taken))
                if result is None:
                    lost = True
                    if not fresh:
                        names.clear()
                    continue
                items, rest = result
                taken.extend(items)
                names.extendleft(reversed(rest))
            if len(taken) >= max_items or (fresh and not lost):
                break
            names, fresh = deque(self._pending(pending)), True
        if names:
            self._listings[pending] = names
        return taken

    def _take(
        self, pending: str, mine: str, tmp: str, bundle: str, need: int
    ) -> tuple[list[dict[str, Any]], list[str]] | None:
        """Up to ``need`` items of ``bundle`` and the names of its rest, if this claimer wins it."""
        source, target = os.path.join(pending, bundle), os.path.join(mine, bundle)
        self._mkdir(mine)
        try:
            os.rename(source, target)
        except FileNotFoundError:
            if os.path.isdir(mine):
                return None  # another claimer (or a withdraw) won it
            self._dirs.discard(mine)
            return self._take(pending, mine, tmp, bundle, need)
        except OSError as exc:
            raise CoordinationError(f"cannot claim {source}: {exc}") from exc
        try:
            lines = _split(_read(target))
        except OSError as exc:
            raise CoordinationError(f"cannot read claimed bundle {target}: {exc}") from exc
        rest: list[str] = []
        if len(lines) > need:
            stem, start, _ = bundle.rsplit(".", 2)
            # Put the rest back first: a crash in between duplicates items, never loses them.
            rest = self._put_back(pending, tmp, stem, int(start) + need, lines[need:], need)
            lines = lines[:need]
            try:
                os.truncate(target, sum(len(line) + 1 for line in lines))
            except OSError as exc:
                raise CoordinationError(f"cannot shorten claimed bundle {target}: {exc}") from exc
        return _load_lines(lines, target), rest

    def _put_back(
        self, pending: str, tmp: str, stem: str, start: int, lines: list[bytes], piece: int
    ) -> list[str]:
        """Publish ``lines`` as bundles of piece, piece, 2*piece, 4*piece... items; their names."""
        names, done = [], 0
        while done < len(lines):
            size = max(piece, done)
            names.append(f"{stem}.{start + done:0{_START_DIGITS}d}.jsonl")
            self._publish(os.path.join(pending, names[-1]), _lines(lines[done : done + size]), tmp)
            done += size
        return names

    def withdraw(self, queue: str, ids: Collection[str]) -> list[str]:
        """Remove the named items that are still pending; return their ids, in queue order."""
        pending, _, tmp = self._queue_dirs(queue)
        wanted = set(ids)
        removed: list[str] = []
        if not wanted:
            return removed
        for bundle in self._pending(pending):
            path = os.path.join(pending, bundle)
            try:
                lines = _split(_read(path))
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise CoordinationError(f"cannot read bundle {path}: {exc}") from exc
            if not any(item["id"] in wanted for item in _load_lines(lines, path)):
                continue
            private = self._temp_name(tmp)
            try:
                os.rename(path, private)
            except FileNotFoundError:
                continue  # claimed meanwhile
            except OSError as exc:
                raise CoordinationError(f"cannot withdraw from {path}: {exc}") from exc
            try:
                lines = _split(_read(private))  # may differ from what we looked at
            except OSError as exc:
                raise CoordinationError(f"cannot read bundle {private}: {exc}") from exc
            keep = []
            for line, item in zip(lines, _load_lines(lines, private), strict=True):
                ident = item["id"]
                if ident in wanted:
                    wanted.discard(ident)
                    removed.append(ident)
                else:
                    keep.append(line)
            if keep:
                self._publish(path, _lines(keep), tmp)
            with contextlib.suppress(OSError):
                os.unlink(private)
            if not wanted:
                break
        return removed
