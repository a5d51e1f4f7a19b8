"""The store contract: a Pilot-Data location holding the files of data units.

A store is opened on a URL (``file:///data/pd1``, later ``ssh://``, ``s3://``,
``irods://``); each data unit is a flat set of named files inside it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar


class Store(ABC):
    """Puts, gets, lists and deletes the files of data units in one location."""

    #: Entry-point name; equals the URL scheme it serves.
    name: ClassVar[str]
    schemes: ClassVar[tuple[str, ...]] = ()
    #: e.g. {"glob"}; conformance tests that need a capability skip without it.
    capabilities: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, url: str, options: Mapping[str, Any] | None = None) -> None:
        self.url = url
        self.options = dict(options or {})

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
