"""The store contract: a Pilot-Data location holding the files of data units.

A store is opened on a URL (``file:///data/pd1``, ``ssh://``, ``s3://``,
``irods://``); each data unit is a flat set of named files inside it.

``get`` writes into a local directory (the agent stages a unit's files into a
sandbox), so a store's names are untrusted there: every store passes each name
through `safe_name` and writes each file with `writing_into`, which never writes
outside the destination nor through a link already in it.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import IO, Any, ClassVar

from troy.model.errors import StoreError
from troy.plugins import options as plugin_options
from troy.plugins.options import Option

#: The version of this contract, MAJOR.MINOR; a plugin says which it was written for in
#: ``contract_version``.  A new MAJOR breaks older plugins; a new MINOR only adds, with defaults.
CONTRACT_VERSION = "1.1"
#: What each version changed (the registry quotes it when a plugin's version does not fit).
CONTRACT_CHANGES: dict[str, str] = {
    "1.0": "versioned from here on: put, get, list, delete, size, unit_url",
    "1.1": "option_specs and check_options: the options a store takes from the Pilot-Data "
    "description and its URL's query are declared (default: none; an undeclared one is refused)",
}


def safe_name(name: str) -> str:
    """``name`` itself if it is one plain file name; StoreError if it could leave a directory.

    Refused: the empty name, ``.``, ``..``, and names with ``/``, ``\\`` or NUL (so no
    absolute path, no drive, no way up).
    """
    if name in ("", ".", "..") or any(bad in name for bad in ("/", "\\", "\0")):
        raise StoreError(
            f"unsafe file name {name!r}: a data unit's file name must be one plain name "
            "(not empty, '.' or '..', without '/', '\\' or NUL)"
        )
    return name


def safe_unit_id(unit_id: str) -> str:
    """``unit_id`` itself if it is one plain name without ``..``; StoreError otherwise.

    A store turns the id into a directory, key prefix or collection name, so the id
    must not climb out of the store.
    """
    if (
        not unit_id
        or unit_id == "."
        or ".." in unit_id
        or any(bad in unit_id for bad in ("/", "\\", "\0"))
    ):
        raise StoreError(
            f"invalid data unit id {unit_id!r}: must be a non-empty name without '/' or '..'"
        )
    return unit_id


def names_to_put(unit_id: str, paths: Sequence[str]) -> list[str]:
    """The names that local files ``paths`` get in a unit: their safe, distinct base names.

    StoreError, naming the path, for a path that is not an existing regular file, whose
    base name `safe_name` refuses, or whose base name another path of the same put has.
    """
    names: list[str] = []
    for path in paths:
        name = os.path.basename(os.fspath(path))
        if not os.path.isfile(path):
            what = "is not a file" if os.path.exists(path) else "does not exist"
            raise StoreError(f"cannot put {path!r} into data unit {unit_id!r}: {what}")
        try:
            safe_name(name)
        except StoreError as exc:
            raise StoreError(f"cannot put {path!r} into data unit {unit_id!r}: {exc}") from None
        if name in names:
            raise StoreError(
                f"cannot put {path!r} into data unit {unit_id!r}: "
                f"two files named {name!r} in one put"
            )
        names.append(name)
    return names


@contextlib.contextmanager
def writing_into(destination: str, name: str) -> Iterator[IO[bytes]]:
    """A new file to write ``name``'s bytes to; placed as ``destination/name`` when the block ends.

    The destination directory is created if missing. The bytes go to a fresh hidden
    file (created exclusively, so never through a planted link) that ``os.replace``
    moves into place: a link already at ``destination/name`` is replaced, not written
    through, and a reader never sees half a file. If the block raises, the partial
    file is removed. OSError becomes StoreError naming the path.
    """
    safe_name(name)
    target = os.path.join(destination, name)
    # A short fixed-form name: ``name`` plus a suffix could pass the file system's limit.
    partial = os.path.join(destination, f".troy-get-{uuid.uuid4().hex}.part")
    try:
        os.makedirs(destination, exist_ok=True)
        descriptor = os.open(
            partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666
        )
    except OSError as exc:
        raise StoreError(f"cannot write {target}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(descriptor, "wb") as stream:
            yield stream
        os.replace(partial, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        if isinstance(exc, OSError):
            raise StoreError(f"cannot write {target}: {exc.strerror or exc}") from exc
        raise


class Store(ABC):
    """Puts, gets, lists and deletes the files of data units in one location."""

    #: Entry-point name; equals the URL scheme it serves.
    name: ClassVar[str]
    schemes: ClassVar[tuple[str, ...]] = ()
    #: e.g. {"glob"}; conformance tests that need a capability skip without it.
    capabilities: ClassVar[frozenset[str]] = frozenset()
    #: The contract version it was written for (MAJOR.MINOR).
    contract_version: ClassVar[str] = CONTRACT_VERSION

    #: The options it takes: name -> Option.  They come from the Pilot-Data description
    #: (its fields but the URL, size and labels: ``options`` below), and those marked
    #: ``in_url`` from the query of the store URL.
    option_specs: ClassVar[Mapping[str, Option]] = MappingProxyType({})

    @classmethod
    def check_options(
        cls, given: Mapping[str, Any], in_url: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """The options as used, defaults filled in; BadDescription names a wrong one.

        ``given``: the description's options, ``in_url``: the URL's query
        (`troy.plugins.options.url_options`).  troy calls it before anything of
        the Pilot-Data is recorded.
        """
        described = {name: spec for name, spec in cls.option_specs.items() if not spec.in_url}
        queried = {name: spec for name, spec in cls.option_specs.items() if spec.in_url}
        checked = plugin_options.check_options("store", cls.name, described, given)
        checked.update(
            plugin_options.check_options("store", cls.name, queried, in_url or {}, "service_url ?")
        )
        return checked

    def __init__(self, url: str, options: Mapping[str, Any] | None = None) -> None:
        self.url = url
        self.options = dict(options or {})

    def __repr__(self) -> str:  # the URL only: options may hold credentials
        return f"{type(self).__name__}({self.url!r})"

    @abstractmethod
    def put(self, unit_id: str, paths: Sequence[str]) -> list[str]:
        """Copy local files into data unit ``unit_id`` (created if new); return their names."""

    @abstractmethod
    def get(self, unit_id: str, destination: str, patterns: Sequence[str] = ("*",)) -> list[str]:
        """Copy the unit's files whose names match any glob into a local directory.

        Returns the names copied, sorted. Raises StoreError if the unit does not exist.
        """

    @abstractmethod
    def list(self, unit_id: str) -> list[str]:
        """Names of the unit's files, sorted; StoreError if the unit does not exist."""

    @abstractmethod
    def delete(self, unit_id: str) -> None:
        """Remove the unit and its files; deleting a missing unit is not an error."""

    @abstractmethod
    def size(self, unit_id: str) -> int:
        """Total bytes of the unit's files; StoreError if the unit does not exist."""

    @abstractmethod
    def unit_url(self, unit_id: str) -> str:
        """The URL under which this unit's files can be found."""
