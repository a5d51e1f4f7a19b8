"""The ``file`` store: data units as directories of flat files under one local root.

``file:///data/pd1`` (or the plain path ``/data/pd1``) keeps unit ``du-1`` in
``/data/pd1/du-1/``. The root may sit on a shared filesystem, so every write
lands under a temporary name first and is moved into place with ``os.replace``:
a reader sees a file whole or not at all, and a failed put leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import shutil
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, NoReturn
from urllib.parse import unquote, urlsplit

from troy.api.errors import StoreError
from troy.plugins.stores.base import Store

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

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def _unit_dir(self, unit_id: str) -> Path:
        """The unit's directory; StoreError for an id that is not one plain name."""
        if (
            not unit_id
            or unit_id == "."
            or ".." in unit_id
            or "/" in unit_id
            or (os.altsep is not None and os.altsep in unit_id)
            or os.sep in unit_id
            or "\0" in unit_id
        ):
            raise StoreError(
                f"invalid data unit id {unit_id!r}: must be a non-empty name without '/' or '..'"
            )
        return self.root / unit_id

    def _existing_unit_dir(self, unit_id: str) -> Path:
        unit_dir = self._unit_dir(unit_id)
        if not unit_dir.is_dir():
            raise StoreError(f"no data unit {unit_id!r} in store {self.url} ({unit_dir})")
        return unit_dir

    def _files(self, unit_dir: Path) -> list[os.DirEntry[str]]:
        try:
            with os.scandir(unit_dir) as entries:
                return sorted(
                    (entry for entry in entries if entry.is_file(follow_symlinks=True)),
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
        names: list[str] = []
        for path in paths:
            name = os.path.basename(os.fspath(path))
            if not os.path.isfile(path):
                what = "is not a file" if os.path.exists(path) else "does not exist"
                raise StoreError(f"cannot put {path!r} into data unit {unit_id!r}: {what}")
            if name in names:
                raise StoreError(
                    f"cannot put {path!r} into data unit {unit_id!r}: "
                    f"two files named {name!r} in one put"
                )
            names.append(name)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
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
                unit_dir.mkdir(exist_ok=True)
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
        try:
            os.makedirs(destination, exist_ok=True)
        except OSError as exc:
            _fail("create the destination", destination, exc)
        for entry in chosen:
            target = os.path.join(destination, entry.name)
            partial = os.path.join(destination, f".{entry.name}.{uuid.uuid4().hex}.part")
            try:
                shutil.copy2(entry.path, partial)
                os.replace(partial, target)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.unlink(partial)
                _fail(f"get from data unit {unit_id!r} the file", entry.path, exc)
        return [entry.name for entry in chosen]

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
            try:
                total += entry.stat(follow_symlinks=True).st_size
            except OSError as exc:
                _fail("stat", entry.path, exc)
        return total

    def unit_url(self, unit_id: str) -> str:
        """The URL under which this unit's files can be found: ``file:///root/unit_id``."""
        return self._unit_dir(unit_id).as_uri()
