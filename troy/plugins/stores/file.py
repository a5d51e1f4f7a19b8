"""The ``file`` store: data units as directories of flat files under one local root.

``file:///data/pd1`` (or the plain path ``/data/pd1``) keeps unit ``du-1`` in
``/data/pd1/du-1/``. The root may sit on a shared filesystem, so every write
lands under a temporary name first and is moved into place with ``os.replace``:
a reader sees a file whole or not at all, and a failed put leaves nothing behind.

A symbolic link inside a unit directory is listed but never followed: it could
point anywhere on the host, so ``get`` refuses it and ``size`` counts it as nothing.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import stat
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, NoReturn
from urllib.parse import unquote, urlsplit

from troy.model.errors import StoreError
from troy.model.private import private_mkdir
from troy.plugins.stores.base import (
    Store,
    names_to_put,
    safe_name,
    safe_unit_id,
    writing_into,
)

# Hidden names in the root for work in progress; a unit id never equals them by chance.
_STAGING_PREFIX = ".troy-put-"
_DELETING_PREFIX = ".troy-delete-"


def _root_of(url: str) -> Path:
    """The absolute root directory that a ``file://`` URL or a plain path names."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "file":
        path = url
    else:
        if parts.netloc not in ("", "localhost"):
            raise StoreError(
                f"file store URL {url!r} names host {parts.netloc!r}; "
                "use file:///absolute/path (or an ssh:// store for a remote host)"
            )
        path = unquote(parts.path)
    if not path:
        raise StoreError(f"file store URL {url!r} names no directory")
    return Path(os.path.abspath(os.path.expanduser(path)))


def _fail(action: str, path: str | os.PathLike[str], exc: OSError) -> NoReturn:
    reason = exc.strerror or str(exc)
    raise StoreError(f"file store: cannot {action} {os.fspath(path)}: {reason}") from exc


class FileStore(Store):
    """Keeps each data unit as a directory ``<root>/<unit_id>/`` of flat files."""

    name: ClassVar[str] = "file"
    schemes: ClassVar[tuple[str, ...]] = ("file",)
    capabilities: ClassVar[frozenset[str]] = frozenset({"glob"})

    def __init__(self, url: str, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(url, options)
        self.root = _root_of(url)

    def _unit_dir(self, unit_id: str) -> Path:
        """The unit's directory; StoreError for an id that is not one plain name."""
        safe_unit_id(unit_id)
        return self.root / unit_id

    def _existing_unit_dir(self, unit_id: str) -> Path:
        unit_dir = self._unit_dir(unit_id)
        if not unit_dir.is_dir():
            raise StoreError(f"no data unit {unit_id!r} in store {self.url} ({unit_dir})")
        return unit_dir

    def _files(self, unit_dir: Path) -> list[os.DirEntry[str]]:
        """The unit's regular files and symbolic links (never followed), by name."""
        try:
            with os.scandir(unit_dir) as entries:
                return sorted(
                    (
                        entry
                        for entry in entries
                        if entry.is_symlink() or entry.is_file(follow_symlinks=False)
                    ),
                    key=lambda entry: entry.name,
                )
        except OSError as exc:
            _fail("list", unit_dir, exc)

    def put(self, unit_id: str, paths: Sequence[str]) -> list[str]:
        """Copy local files into data unit ``unit_id`` (created if new); return their names.

        A file of the same name in the unit is replaced. All files are copied
        into a staging directory first, so a put that fails while copying (a
        missing source, a full disk) leaves the unit as it was, and each file
        appears in the unit whole.
        """
        unit_dir = self._unit_dir(unit_id)
        names = names_to_put(unit_id, paths)
        try:
            private_mkdir(self.root)
            staging = tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=self.root)
        except OSError as exc:
            _fail("create a staging directory in", self.root, exc)
        try:
            for path, name in zip(paths, names, strict=True):
                try:
                    shutil.copy2(path, os.path.join(staging, name))
                except OSError as exc:
                    _fail(f"put into data unit {unit_id!r} the file", path, exc)
            try:
                private_mkdir(unit_dir, parents=False)
                for name in names:
                    os.replace(os.path.join(staging, name), unit_dir / name)
            except OSError as exc:
                _fail("move staged files into", unit_dir, exc)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return names

    def get(self, unit_id: str, destination: str, patterns: Sequence[str] = ("*",)) -> list[str]:
        """Copy the unit's files whose names match any glob into a local directory.

        The destination is created if missing. Returns the names copied, sorted;
        StoreError if the unit does not exist.
        """
        unit_dir = self._existing_unit_dir(unit_id)
        if isinstance(patterns, str):
            patterns = (patterns,)
        chosen = [
            entry
            for entry in self._files(unit_dir)
            if any(fnmatch.fnmatchcase(entry.name, pattern) for pattern in patterns)
        ]
        for entry in chosen:
            safe_name(entry.name)
            if entry.is_symlink():
                raise StoreError(
                    f"file store: refusing to get {entry.path} from data unit {unit_id!r}: "
                    "it is a symbolic link, which could point anywhere"
                )
        try:
            os.makedirs(destination, exist_ok=True)
        except OSError as exc:
            _fail("create the destination", destination, exc)
        for entry in chosen:
            self._copy_out(unit_id, entry.path, destination, entry.name)
        return [entry.name for entry in chosen]

    def _copy_out(self, unit_id: str, source: str, destination: str, name: str) -> None:
        """Copy one stored file (a regular file, never followed if a link) to destination/name."""
        try:
            # O_NOFOLLOW: a file swapped for a link since it was listed is still refused;
            # O_NONBLOCK: one swapped for a FIFO does not hang the open (refused below).
            flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
            descriptor = os.open(source, flags)
        except OSError as exc:
            _fail(f"get from data unit {unit_id!r} the file", source, exc)
        with os.fdopen(descriptor, "rb") as stream:
            try:
                info = os.fstat(stream.fileno())
            except OSError as exc:
                _fail(f"get from data unit {unit_id!r} the file", source, exc)
            if not stat.S_ISREG(info.st_mode):
                raise StoreError(
                    f"file store: refusing to get {source} from data unit {unit_id!r}: "
                    "it is not a regular file"
                )
            with writing_into(destination, name) as out:
                try:
                    shutil.copyfileobj(stream, out, 1024 * 1024)
                except OSError as exc:
                    _fail(f"get from data unit {unit_id!r} the file", source, exc)
                # As shutil.copy2 would: keep permission bits and modification time
                # (after the last write reached the file, or that write would set it anew).
                out.flush()
                os.fchmod(out.fileno(), stat.S_IMODE(info.st_mode))
                os.utime(out.fileno(), ns=(info.st_atime_ns, info.st_mtime_ns))

    def list(self, unit_id: str) -> list[str]:
        """Names of the unit's files, sorted; StoreError if the unit does not exist."""
        return [entry.name for entry in self._files(self._existing_unit_dir(unit_id))]

    def delete(self, unit_id: str) -> None:
        """Remove the unit and its files; deleting a missing unit is not an error."""
        unit_dir = self._unit_dir(unit_id)
        # Renamed away first, so that readers see the whole unit or none of it.
        doomed = self.root / f"{_DELETING_PREFIX}{uuid.uuid4().hex}"
        try:
            os.rename(unit_dir, doomed)
        except FileNotFoundError:
            return
        except OSError as exc:
            _fail("delete", unit_dir, exc)
        try:
            shutil.rmtree(doomed)
        except OSError as exc:
            _fail(
                f"delete data unit {unit_id!r} (renamed to {doomed.name}), file",
                exc.filename or doomed,
                exc,
            )

    def size(self, unit_id: str) -> int:
        """Total bytes of the unit's files; StoreError if the unit does not exist."""
        unit_dir = self._existing_unit_dir(unit_id)
        total = 0
        for entry in self._files(unit_dir):
            if entry.is_symlink():
                continue
            try:
                total += entry.stat(follow_symlinks=False).st_size
            except OSError as exc:
                _fail("stat", entry.path, exc)
        return total

    def unit_url(self, unit_id: str) -> str:
        """The URL under which this unit's files can be found: ``file:///root/unit_id``."""
        return self._unit_dir(unit_id).as_uri()
