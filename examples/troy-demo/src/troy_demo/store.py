"""The `memory` store: data units held in this process (memory://<name>), for tests."""

import fnmatch
import threading
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from troy.model.errors import StoreError
from troy.plugins.stores.base import Store, names_to_put, safe_name, writing_into

_STORES: dict[str, dict[str, dict[str, bytes]]] = {}  # url -> unit id -> file name -> bytes
_LOCK = threading.Lock()  # guards _STORES and every store in it


class MemoryStore(Store):
    """Keeps each data unit's files as bytes in a dict shared by every store of the same URL."""

    name: ClassVar[str] = "memory"
    schemes: ClassVar[tuple[str, ...]] = ("memory",)
    capabilities: ClassVar[frozenset[str]] = frozenset({"glob"})

    def __init__(self, url: str, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(url, options)
        with _LOCK:
            self._units = _STORES.setdefault(url.rstrip("/"), {})

    def _files(self, unit_id: str) -> dict[str, bytes]:
        """A snapshot of the unit's files; StoreError if there is no such unit."""
        with _LOCK:
            files = self._units.get(unit_id)
            if files is None:
                raise StoreError(f"no data unit {unit_id!r} in store {self.url}")
            return dict(files)

    def put(self, unit_id: str, paths: Sequence[str]) -> list[str]:
        staged: dict[str, bytes] = {}
        # Checked first: regular files with plain, distinct names (troy's shared rule).
        for path, name in zip(paths, names_to_put(unit_id, paths), strict=True):
            try:
                with open(path, "rb") as source:
                    staged[name] = source.read()
            except OSError as exc:  # translate at the boundary, naming the file
                raise StoreError(f"cannot put {path!r}: {exc.strerror or exc}") from exc
        with _LOCK:  # all or nothing: nothing changes until every file was read
            self._units.setdefault(unit_id, {}).update(staged)
        return list(staged)

    def get(self, unit_id: str, destination: str, patterns: Sequence[str] = ("*",)) -> list[str]:
        files = self._files(unit_id)
        names = sorted(n for n in files if any(fnmatch.fnmatchcase(n, p) for p in patterns))
        for name in names:
            safe_name(name)  # every name first: nothing is written if one is unsafe
        for name in names:
            # A temporary file moved into place: never writes through a link in destination.
            with writing_into(destination, name) as target:
                target.write(files[name])
        return names

    def list(self, unit_id: str) -> list[str]:
        return sorted(self._files(unit_id))

    def delete(self, unit_id: str) -> None:
        with _LOCK:
            self._units.pop(unit_id, None)

    def size(self, unit_id: str) -> int:
        return sum(len(data) for data in self._files(unit_id).values())

    def unit_url(self, unit_id: str) -> str:
        return f"{self.url.rstrip('/')}/{unit_id}"
