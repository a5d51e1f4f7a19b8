"""The file coordination plugin's formats: names in its tree, and JSON lines in and out.

Shared by `troy.plugins.coordination.file` and the modules it is split into
(`file_streams`, `file_commit`); see the file plugin's docstring for the layout.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import stat
import threading
from collections.abc import Iterable
from typing import Any

from troy.model.errors import CoordinationError
from troy.plugins.coordination.base import Cursor, encode_array, parse_each

log = logging.getLogger("troy.coordination")

PENDING, CLAIMED, TMP = "@pending", "@claimed", "@tmp"
#: A compacted stream's summaries are ``~summary.<ns>.<writer>.jsonl``; ``~compacted`` marks it.
SUMMARY, MARKER, REPLACES = "~summary.", "~compacted", "~replaces"
#: How often a read looks again at a stream that a compaction swaps under it.
SWAP_TRIES = 100
#: A committed bundle waits in ``@tmp`` as ``commit.<commit id>.<bundle name>``.
STAGED = "commit."
START_DIGITS = 9
WORD = re.compile(r"[A-Za-z0-9._-]+")
BUNDLE = re.compile(rf"[0-9]{{20}}-[A-Za-z0-9_-]+-[0-9]+\.[0-9]{{{START_DIGITS}}}\.jsonl")


# ensure_ascii (the default) escapes every control character: no newline inside a line.
ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def dumps(value: Any, what: str) -> bytes:
    try:
        return ENCODER.encode(value).encode()
    except (TypeError, ValueError) as exc:
        raise CoordinationError(f"{what} is not JSON-ready: {exc}") from exc


def dumps_array_line(values: Iterable[Any], what: str) -> bytes:
    """``[v1,v2,...]`` and a newline: one line of a JSON array, built in place."""
    return encode_array(values, dumps, what, b"\n")


def loads(line: bytes, path: str) -> Any:
    try:
        return json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise CoordinationError(f"corrupt line in {path}: {line[:80]!r}: {exc}") from exc


def load_lines(lines: list[bytes], path: str) -> list[Any]:
    """The JSON value of each line, parsed in one call (a tenth of the time of one per line)."""
    if len(lines) == 1:
        return [loads(lines[0], path)]  # one (large) line: not copied into an array first
    try:
        values: list[Any] = json.loads(b"[" + b",".join(lines) + b"]")
    except (ValueError, RecursionError):
        return [loads(line, path) for line in lines]  # names the corrupt line
    if len(values) != len(lines):  # a line such as `1,2` parsed as two values
        return [loads(line, path) for line in lines]
    return values


def load_claimed(lines: list[bytes], path: str) -> list[Any]:
    """The JSON value of each claimed line; a line that is not JSON is dropped with a warning."""
    try:
        return load_lines(lines, path)
    except CoordinationError:
        return parse_each(lines, path)


def item_ids(lines: list[bytes], path: str) -> list[Any]:
    """The "id" of the item on each line: None for a line that is not a JSON object."""
    try:
        items = load_lines(lines, path)
    except CoordinationError:
        items = []
        for line in lines:
            try:
                items.append(json.loads(line))
            except (ValueError, RecursionError):
                items.append(None)
    return [item.get("id") if isinstance(item, dict) else None for item in items]


def split_lines(data: bytes) -> list[bytes]:
    """The lines of a bundle (each written with a trailing newline)."""
    return data.split(b"\n")[:-1] if data else []


def join_lines(lines: Iterable[bytes]) -> bytes:
    """Each line and a newline, built in place (not a copy of every line, then the whole)."""
    buffer = bytearray()
    for line in lines:
        buffer += line
        buffer += b"\n"
    return bytes(buffer)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


#: errno of `read_own` for a path that is not a regular file (a link, a folder, a FIFO).
NOT_A_FILE = (errno.ELOOP, errno.EINVAL)


#: Files of other users already warned about (each is logged once per process).
_foreign: set[str] = set()
_foreign_lock = threading.Lock()


def foreign(path: str, status: os.stat_result) -> bool:
    """True (and a warning, once) if the file is not this process's user's own.

    Only the user who runs troy writes its coordination; a file another local
    user put there (through a folder others could write) is never trusted.
    """
    if status.st_uid == os.geteuid():
        return False
    with _foreign_lock:
        new = path not in _foreign
        _foreign.add(path)
    if new:
        logging.getLogger("troy.coordination").warning(
            "ignoring %s: it belongs to uid %d, not to this user (uid %d), who alone writes"
            " this coordination",
            path,
            status.st_uid,
            os.geteuid(),
        )
    return True


def read_own(path: str) -> bytes | None:
    """The content of ``path`` if this user owns it (not through a symlink), else None.

    OSError as ``open`` raises it (FileNotFoundError for a missing file), with an
    errno in NOT_A_FILE for a symbolic link, a folder or a FIFO: whoever can write
    the tree could plant one, and a FIFO would block the reader for good.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", path)
        if foreign(path, status):
            return None
        with os.fdopen(fd, "rb", closefd=False) as file:
            return file.read()
    finally:
        os.close(fd)


def cursor_positions(cursor: Cursor) -> dict[str, int]:
    if cursor is None:
        return {}
    if isinstance(cursor, dict) and all(
        isinstance(key, str) and type(value) is int and value >= 0 for key, value in cursor.items()
    ):
        return dict(cursor)
    raise CoordinationError(f"not a file coordination stream cursor: {cursor!r:.200}")
