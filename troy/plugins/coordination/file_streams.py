"""Reading and compacting the file plugin's streams: a folder of per-writer JSON-line files.

How a compaction swaps a stream's files for one summary while readers read, and
why a reader never sees a mix, is in the file plugin's docstring
(`troy.plugins.coordination.file`); this module holds the code that does it.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from troy.model.errors import CoordinationError
from troy.model.private import private_open
from troy.plugins.coordination.file_format import (
    MARKER,
    REPLACES,
    SUMMARY,
    dumps,
    foreign,
    load_lines,
    loads,
)

#: Seconds after which a compaction marker with no summary is one left by a killed process.
STALE_MARKER = 10.0

#: Per summary file path: the writer files it replaced (a summary never changes).
ReplacedCache = dict[str, frozenset[str]]


class OpenLog(NamedTuple):
    """One file of a stream, opened: its name, its size when listed, and where events start."""

    name: str
    size: int
    fd: int
    first: int


def open_logs(folder: str, replaced: ReplacedCache) -> list[OpenLog] | None:
    """The stream's files to read, opened; None if a compaction swapped them: look again.

    Opening every file before reading any pins one state: a compaction that
    deletes a file after it was opened does not take its content away.
    """
    try:
        with os.scandir(folder) as entries:
            found = [e for e in entries if e.name.endswith(".jsonl") or e.name == MARKER]
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise CoordinationError(f"cannot list stream {folder}: {exc}") from exc
    try:
        # Another user's file (or a link) is not part of the stream: never read.
        stats = {entry.name: entry.stat(follow_symlinks=False) for entry in found}
        listing = {
            name: status.st_size
            for name, status in stats.items()
            if stat.S_ISREG(status.st_mode) and not foreign(os.path.join(folder, name), status)
        }
    except FileNotFoundError:
        return None  # deleted since listed: a compaction
    except OSError as exc:
        raise CoordinationError(f"cannot list stream {folder}: {exc}") from exc
    summaries = sorted(name for name in listing if name.startswith(SUMMARY))
    names = sorted(name for name in listing if not name.startswith("~"))
    opened: list[OpenLog] = []
    try:
        if summaries:
            summary = summaries[-1]
            fd, first = _open_summary(os.path.join(folder, summary), replaced)
            opened.append(OpenLog(summary, listing[summary], fd, first))
            gone = replaced[os.path.join(folder, summary)]
            names = [name for name in names if name not in gone]
        elif MARKER in listing and _compacting(folder):
            return None  # the listing missed the summary being swapped in
        for name in names:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY | os.O_NOFOLLOW)
            opened.append(OpenLog(name, listing[name], fd, 0))
        if not summaries and _compacting(folder):
            raise FileNotFoundError  # compacted since listed: files may be missing
    except FileNotFoundError:
        close_logs(opened)
        return None
    except OSError as exc:
        close_logs(opened)
        raise CoordinationError(f"cannot open stream {folder}: {exc}") from exc
    return opened


def _compacting(folder: str) -> bool:
    """Whether a first compaction of ``folder`` may be swapping its summary in right now.

    Its marker exists and is younger than STALE_MARKER seconds: a swap takes
    microseconds, so an older marker with no summary is one a process killed
    mid-swap left behind, and the stream's files are read as they are.
    """
    try:
        age = time.time() - os.stat(os.path.join(folder, MARKER)).st_mtime
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise CoordinationError(f"cannot look at stream {folder}: {exc}") from exc
    return age < STALE_MARKER


def close_logs(opened: list[OpenLog]) -> None:
    for log in opened:
        os.close(log.fd)


def _open_summary(path: str, replaced: ReplacedCache) -> tuple[int, int]:
    """An open summary file and where its events start; notes which files it replaced."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        head = b""
        while b"\n" not in head:
            chunk = os.pread(fd, 65536, len(head))
            if not chunk:
                raise CoordinationError(f"summary {path} has no complete header line")
            head += chunk
        line = head[: head.index(b"\n")]
        if path not in replaced:
            header = loads(line, path)
            if not isinstance(header, dict) or not isinstance(header.get(REPLACES), list):
                raise CoordinationError(f"summary {path} does not start with its header")
            replaced[path] = frozenset(header[REPLACES])
    except BaseException:
        os.close(fd)
        raise
    return fd, len(line) + 1


#: Bytes of lines parsed in one call: bounds the copies a parse makes of a large read.
PARSE_CHUNK = 1 << 20


def _chunks(lines: list[bytes]) -> Iterator[list[bytes]]:
    """The non-empty lines in runs of about PARSE_CHUNK bytes (a larger line alone)."""
    chunk: list[bytes] = []
    size = 0
    for line in lines:
        if not line:
            continue
        if chunk and size + len(line) > PARSE_CHUNK:
            yield chunk
            chunk, size = [], 0
        chunk.append(line)
        size += len(line)
    if chunk:
        yield chunk


def read_logs(
    folder: str,
    opened: list[OpenLog],
    positions: dict[str, int],
    own: str | None = None,
    own_end: Callable[[int], int] = lambda offset: offset,
) -> list[dict[str, Any]]:
    """The complete batches of the opened files after ``positions``, which it moves on.

    The file named ``own`` is not read: its position moves to ``own_end(offset)``.
    """
    events: list[dict[str, Any]] = []
    for name, size, fd, first in opened:
        offset = max(positions.get(name, 0), first)
        if size <= offset:
            continue
        if name == own:
            positions[name] = own_end(offset)
            continue
        path = os.path.join(folder, name)
        try:
            data = os.pread(fd, size - offset, offset)
        except OSError as exc:
            raise CoordinationError(f"cannot read stream file {path}: {exc}") from exc
        end = data.rfind(b"\n")
        if end < 0:
            continue  # only a batch still being written (or torn by a crash)
        lines = data.split(b"\n")
        del data  # a whole stream is read at once by a compaction: hold its bytes once
        lines.pop()  # what follows the last newline: a batch still being written, or b""
        for chunk in _chunks(lines):
            for line, batch in zip(chunk, load_lines(chunk, path), strict=True):
                if isinstance(batch, dict):
                    events.append(batch)
                elif isinstance(batch, list) and all(isinstance(e, dict) for e in batch):
                    events.extend(batch)
                else:
                    raise CoordinationError(f"corrupt line in {path}: {line[:80]!r}: not events")
        positions[name] = offset + end + 1
    return events


def compact_folder(
    folder: str, summary: str, content: bytes, publish: Callable[[str, bytes], None]
) -> None:
    """Replace the stream files in ``folder`` by ``summary``, which holds ``content``.

    ``content`` is the summary's events as lines; the header naming the files it
    replaces is put first.  The marker first, the summary next, deletions last.
    """
    try:
        names = os.listdir(folder)
    except OSError as exc:
        raise CoordinationError(f"cannot list stream {folder}: {exc}") from exc
    writers = sorted(n for n in names if n.endswith(".jsonl") and not n.startswith("~"))
    older = [n for n in names if n.startswith(SUMMARY)]
    header = dumps({REPLACES: writers}, f"summary header of {folder}") + b"\n"
    # Written whole under a name readers skip first: a full disk here changes nothing.
    staged = os.path.join(folder, summary + ".staged")
    publish(staged, header + content)
    marker = os.path.join(folder, MARKER)
    marked_before = os.path.exists(marker)
    try:
        # From here on, a reader that lists no summary looks again.
        os.close(private_open(marker, os.O_WRONLY | os.O_CREAT))
        os.rename(staged, os.path.join(folder, summary))
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(staged)
        if not marked_before:  # no summary came of it: readers must not wait for one
            with contextlib.suppress(OSError):
                os.unlink(marker)
        raise CoordinationError(f"cannot compact stream {folder}: {exc}") from exc
    for name in [*writers, *older]:
        try:
            os.unlink(os.path.join(folder, name))
        except FileNotFoundError:
            pass  # another compaction deleted it
        except OSError as exc:
            raise CoordinationError(
                f"compacted stream {folder} but cannot delete {name}: {exc}"
            ) from exc


def own_position(lock: threading.Lock, ends: dict[str, int], folder: str) -> Callable[[int], int]:
    """Where a writer's own file is read up to: the end of its last complete append."""

    def end(offset: int) -> int:
        with lock:
            return max(offset, ends.get(folder, offset))

    return end
