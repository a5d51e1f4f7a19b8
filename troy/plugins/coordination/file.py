"""The ``file`` coordination plugin: a directory on a local or shared filesystem.

The URL is ``file:///abs/path`` (``file://localhost/abs/path``) or a plain path;
a relative path is made absolute against the current directory.  A manager's
connection (``serve=True``) creates the directory if missing; any other
(agents, ``troy status``) needs one that has ``records/`` (`NoCoordination`).

Only the user who runs troy may write it: directories are made 0700 and files
0600 whatever the umask (`troy.model.private`); a directory (the root,
``records``, ``streams``, ``queues``, ``commits``) that another user owns or
can write is refused when a connection opens; a file another user owns (a
record, a stream file, an intent, a queue bundle) is never read, and a claim
moves such a bundle to the queue's ``@foreign`` folder.  Layout below it::

    records/<key>.json                                  one record per file
    streams/<stream>/<writer>.jsonl                     one append-only log per writer
    streams/<stream>/~summary.<ns>.<writer>.jsonl       a compacted stream's summary
    streams/<stream>/~compacted                         marks a stream compacted (empty)
    queues/<queue>/@pending/<bundle>.<start>.jsonl      unclaimed items, one JSON per line
    queues/<queue>/@claimed/<claimer>/<same name>       what each claimer took, not yet acked
    queues/<queue>/@tmp/                                temp files, withdrawals in progress,
                                                        bundles of commits in progress
    queues/<queue>/@foreign/                            bundles of other users, set aside
    commits/<commit id>.json                            intents of commits in progress

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

- **Records only if absent** (``create_record``): a temp file is hard-linked to
  the record's name; ``link`` fails if the name exists, atomically (on NFS too).
  ``allocate`` chains reservation records ``<counter>/<n>`` (each says where it
  starts and how many it holds) made that way.
- **Acks** rewrite the claimer's bundles without the acknowledged items, and
  delete bundles left empty.
- **Commit** is all or nothing.  The bundles go to each queue's ``@tmp`` as
  ``commit.<id>.<bundle>`` (no claimer looks there); then an intent
  ``commits/<id>.json`` names them and says which writer file the stream line
  goes to and at what offset; then the line is appended: the commit point;
  then the bundles are renamed into ``@pending`` and the intent deleted.  A
  claim that lists ``@pending``, and a withdraw, first finish any commit whose
  bundles wait in ``@tmp`` and whose line is complete in its file (the
  committer died after its commit point).  A commit whose line never landed
  left bundles and an intent that nobody uses.
- **Compaction** replaces a finished stream's files by one summary file: first
  the empty marker ``~compacted`` is created, then the summary is published
  (temp file and rename) with a header line naming the files it replaces,
  then those files are deleted.  A reader lists the folder; if it lists a
  summary it reads the newest one and the files its header does not name
  (appended after the compaction); if it lists none it opens every file, and
  then checks that the marker still does not exist, else it looks again.
  Opened files keep their content when deleted, and files are deleted only
  after the marker and the summary exist, so a reader from the start sees
  the old files or the summary, never a mix and never nothing.  A cursor
  names files; an old cursor reads the summary as new events.  A connection
  whose file was replaced appends to a new file of its own afterwards.

The code is in five modules: this one (records, appends, commit), `file_queues`,
`file_streams` (reading and compaction), `file_commit` (finishing a commit a
crash cut short) and `file_format` (names and JSON lines).

Nothing is fsynced: a batch survives the crash of any process, but not
necessarily the loss of the machine's page cache.  Key, stream and queue names
may not contain ``.`` as a word (``a/./b``), which would alias another name.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

from troy.model.errors import CoordinationError, NoCoordination
from troy.model.private import private_mkdir, private_open, unsafe_directory
from troy.plugins.coordination.base import Coordination, Cursor, check_name
from troy.plugins.coordination.file_commit import roll_forward, write_new
from troy.plugins.coordination.file_format import (
    MARKER,
    STAGED,
    SUMMARY,
    SWAP_TRIES,
    WORD,
    cursor_positions,
    dumps,
    dumps_array_line,
    loads,
    read_own,
    write_all,
)
from troy.plugins.coordination.file_queues import QueueFiles
from troy.plugins.coordination.file_streams import (
    close_logs,
    compact_folder,
    open_logs,
    own_position,
    read_logs,
)
from troy.plugins.coordination.file_watch import Watcher

log = logging.getLogger("troy.coordination")


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


def check_private(root: str, folders: Sequence[str]) -> None:
    """CoordinationError if another local user could write into the coordination's folders.

    Whoever can write there can queue work that the agents run as this user.
    The parents of ``root`` are not checked: a sticky ``/tmp`` above it is normal.
    """
    for folder in (root, *folders):
        problem = unsafe_directory(folder)
        if problem is not None:
            raise CoordinationError(
                f"refusing coordination directory {root}: {problem}; another user could"
                " queue work there that troy would run as you"
            )


def warn_if_readable(root: str) -> None:
    """Warn if other users can read the coordination (one made by an older troy, or by hand).

    troy makes it private, but does not change the mode of a directory it did not make.
    """
    try:
        mode = stat.S_IMODE(os.stat(root).st_mode)
    except OSError:
        return
    if mode & 0o077:
        log.warning(
            "coordination directory %s can be read by other users (mode %04o), and so can"
            " the secrets its records may hold; make it private: chmod -R go-rwx %s",
            root,
            mode,
            root,
        )


def _name(name: str) -> str:
    """``name`` as a relative path, once the contract's check_name has accepted it."""
    return check_name(name)


class FileCoordination(QueueFiles, Coordination):
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
        #: Per stream folder: this connection's file, if not ``<writer>.jsonl`` (see compact).
        self._own_names: dict[str, str] = {}
        self._append_lock = threading.Lock()
        #: Held while a claimed bundle is shortened or acknowledged items are cut from it.
        self._claim_lock = threading.Lock()
        self._commits = os.path.join(self.root, "commits")
        #: Per counter: this connection's last reservation (its block number, where it ended).
        #: Per summary file path: the writer files it replaced (its content never changes).
        self._replaced: dict[str, frozenset[str]] = {}
        #: Waits for work with inotify (file_watch); opened at the first wait, False if none.
        self._watcher: Watcher | bool | None = None
        if serve:
            for folder in (self._records, self._streams, self._queues):
                self._mkdir(folder)
        elif not os.path.isdir(self._records):
            # Agents and read-only commands never make one: a typo must not leave a store.
            raise NoCoordination(
                f"no troy coordination at {self.root} (it has no records/ directory);"
                " a manager (troy run, a service) makes one"
            )
        check_private(self.root, (self._records, self._streams, self._queues, self._commits))
        if serve:
            warn_if_readable(self.root)
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise CoordinationError(f"coordination directory {self.root} is not writable")

    def wait_for_work(self, queue: str, stream: str, cursor: Cursor, timeout: float) -> bool:
        """Block with inotify on the queue's pending folder and the stream's folder, on a
        local filesystem (troy.plugins.coordination.file_watch); else False at once."""
        if self._watcher is None:
            self._watcher = Watcher.open(self.root) or False
        if self._watcher is False:
            return False
        assert isinstance(self._watcher, Watcher)
        pending = self._queue_dirs(queue)[0]
        folder = os.path.join(self._streams, _name(stream))
        for each in (pending, folder):
            self._mkdir(each)
        return self._watcher.wait([pending, folder], timeout)

    def close(self) -> None:
        """Close the inotify descriptor of wait_for_work, if one was opened."""
        if isinstance(self._watcher, Watcher):
            self._watcher.close()
        self._watcher = None

    # -- files ---------------------------------------------------------------
    def _mkdir(self, folder: str) -> None:
        if folder in self._dirs:
            return
        try:
            private_mkdir(folder)
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
                fd = private_open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
                try:
                    write_all(fd, data)
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
        data = dumps(dict(record), f"record {key}")
        folder = os.path.dirname(path)
        self._mkdir(folder)
        self._publish(path, data, folder)

    def create_record(self, key: str, record: Mapping[str, Any]) -> bool:
        """Store ``record`` only if ``key`` has none: a temp file hard-linked to the name.

        ``link`` fails with EEXIST if the name exists, atomically (on NFS too), so
        of several racers exactly one wins.
        """
        path = self._record_path(key)
        data = dumps(dict(record), f"record {key}")
        folder = os.path.dirname(path)
        self._mkdir(folder)
        tmp = self._temp_name(folder)
        try:
            write_new(tmp, data)
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
            return True
        except OSError as exc:
            raise CoordinationError(f"cannot create record {path}: {exc}") from exc
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    def get_record(self, key: str) -> dict[str, Any] | None:
        """The record under ``key``, or None."""
        path = self._record_path(key)
        try:
            data = read_own(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise CoordinationError(f"cannot read record {path}: {exc}") from exc
        if data is None:
            return None  # another user's file: not a record troy wrote
        record = loads(data, path)
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
        stems = [n[:-5] for n in names if n.endswith(".json") and WORD.fullmatch(n)]
        return sorted(f"{prefix}/{stem}" for stem in stems if stem not in ("", "."))

    # -- streams -------------------------------------------------------------
    def append(self, stream: str, events: Sequence[Mapping[str, Any]]) -> None:
        """Append the batch as one JSON-array line to this writer's file, in one write."""
        _name(stream)
        if events:
            self._append_line(stream, self._batch_line(stream, events))

    @staticmethod
    def _batch_line(stream: str, events: Sequence[Mapping[str, Any]]) -> bytes:
        return dumps_array_line(events, f"event batch for {stream}")

    def _append_line(
        self, stream: str, line: bytes, before: Callable[[str, int], None] | None = None
    ) -> None:
        """Write ``line`` at the end of this writer's file of ``stream``, in one write.

        ``before(file name, offset)`` runs first, under the lock that orders this
        connection's appends: ``offset`` is where the line will start.
        """
        folder = os.path.join(self._streams, _name(stream))
        self._mkdir(folder)
        path = os.path.join(folder, self._own_file(folder))
        try:
            try:
                fd = os.open(path, os.O_WRONLY | os.O_APPEND)
            except FileNotFoundError:
                if os.path.exists(os.path.join(folder, MARKER)):
                    # A compacted stream: our old file may be one the summary replaced.
                    ns = self._last_ns = max(time.time_ns(), self._last_ns + 1)
                    self._own_names[folder] = f"{self.writer}.{ns}.jsonl"
                    path = os.path.join(folder, self._own_names[folder])
                fd = private_open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        except OSError as exc:
            raise CoordinationError(f"cannot open stream file {path}: {exc}") from exc
        written = 0
        try:
            with self._append_lock:  # threads of this connection share its file
                if before is not None:
                    before(os.path.basename(path), os.fstat(fd).st_size)
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

    # -- commit ----------------------------------------------------------------
    #: Test hook: called with "staged" (bundles written, nothing visible) and "intent"
    #: (the intent written, the stream line not yet) to simulate a crash there.
    _commit_hook: ClassVar[Callable[[str], None] | None] = None

    def commit(
        self,
        stream: str,
        events: Sequence[Mapping[str, Any]],
        queues: Mapping[str, Sequence[Mapping[str, Any]]],
    ) -> None:
        """Append ``events`` and enqueue the items, all or nothing; see the module docstring.

        The bundles are written to each queue's ``@tmp`` first, where no claimer
        looks; an intent naming them and where the stream line will start is
        written next; the stream line is the commit point; then the bundles are
        renamed into ``@pending`` and the intent deleted.  Whoever finds a staged
        bundle whose intent's line has landed (a claim, a withdraw) finishes the
        renames, so a crash after the commit point loses no item.
        """
        _name(stream)
        line = self._batch_line(stream, events) if events else b""
        cid = f"{self.writer}-{next(self._counter):06d}"
        staged: list[tuple[str, str]] = []
        encoded = {queue: self._bundle(queue, items) for queue, items in queues.items() if items}
        if not line and not encoded:
            return
        intent_path = os.path.join(self._commits, cid + ".json")
        try:
            for queue, data in encoded.items():
                pending, _, tmp = self._queue_dirs(queue)
                self._mkdir(pending)
                self._mkdir(tmp)
                bundle = self._bundle_name()
                temp = os.path.join(tmp, f"{STAGED}{cid}.{bundle}")
                write_new(temp, data)
                staged.append((temp, os.path.join(pending, bundle)))
            self._hook("staged")
            self._mkdir(self._commits)

            def write_intent(file: str | None, offset: int | None) -> None:
                intent = {
                    "stream": stream,
                    "file": file,
                    "offset": offset,
                    "bundles": [
                        [os.path.relpath(t, self.root), os.path.relpath(f, self.root)]
                        for t, f in staged
                    ],
                }
                self._publish(intent_path, dumps(intent, "commit intent"), self._commits)
                self._hook("intent")

            if line:
                self._append_line(stream, line, write_intent)
            else:
                write_intent(None, None)  # no line: the intent is the commit point
        except BaseException:
            for temp, _ in staged:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
            with contextlib.suppress(OSError):
                os.unlink(intent_path)
            raise
        try:
            roll_forward(intent_path, staged)
        except CoordinationError as exc:
            # Committed: the stream line (or the intent) landed, so the items are
            # enqueued by whoever next claims or withdraws.  Raising would tell the
            # caller it failed, and a manager would place the units a second time.
            log.warning("committed; moving its items into their queues waits: %s", exc)

    def _own_file(self, folder: str) -> str:
        """The name of this connection's file in a stream folder."""
        return self._own_names.get(folder) or self.writer + ".jsonl"

    def _hook(self, step: str) -> None:
        hook = type(self)._commit_hook
        if hook is not None:
            hook(step)

    def read(
        self, stream: str, cursor: Cursor = None, skip_own: bool = False
    ) -> tuple[list[dict[str, Any]], Cursor]:
        """Complete batches after ``cursor``: each writer's in order, writers by file name.

        Of a compacted stream, the newest summary and the files written after it
        (see the module docstring on compaction).
        """
        folder = os.path.join(self._streams, _name(stream))
        positions = cursor_positions(cursor)
        own = self._own_file(folder) if skip_own else None
        own_end = own_position(self._append_lock, self._own_ends, folder)
        for _ in range(SWAP_TRIES):
            opened = open_logs(folder, self._replaced)
            if opened is None:
                continue  # a compaction swapped files under us: look again
            try:
                return read_logs(folder, opened, positions, own, own_end), positions
            finally:
                close_logs(opened)
        raise CoordinationError(f"stream {folder} kept changing under {SWAP_TRIES} reads")

    def compact(self, stream: str, events: Sequence[Mapping[str, Any]]) -> bool:
        """Publish ``events`` as the stream's summary file, then delete the files it replaces."""
        folder = os.path.join(self._streams, _name(stream))
        content = dumps_array_line(events, f"summary of {stream}") if events else b""
        self._mkdir(folder)
        ns = self._last_ns = max(time.time_ns(), self._last_ns + 1)
        summary = f"{SUMMARY}{ns:020d}.{self.writer}.jsonl"
        compact_folder(
            folder, summary, content, lambda path, data: self._publish(path, data, folder)
        )
        self._own_ends.pop(folder, None)
        self._own_names.pop(folder, None)
        return True
