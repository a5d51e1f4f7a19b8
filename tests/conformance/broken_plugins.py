"""Plugins wrong on purpose, each in one way a plugin author got it wrong writing from the docs.

`test_suites_catch_mistakes.py` registers them as a third-party package would
be registered and runs troy's shipped suites on them: each suite must fail,
saying what is wrong.  The coordination and store plugins are troy's ``file``
plugins with one method broken, serving a URL scheme of their own
(``<scheme>:///directory``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any, ClassVar

from troy.plugins.coordination.base import Coordination, check_name
from troy.plugins.coordination.file import FileCoordination
from troy.plugins.schedulers.base import PilotOffer, Scheduler, UnitRequest
from troy.plugins.stores.file import FileStore


def first_fit(unit: UnitRequest, pilots: Sequence[PilotOffer]) -> str | None:
    return next((p.id for p in pilots if p.can_hold(unit.cores)), None)


class CrashesOnInputs(Scheduler):
    """Prefers the pilot on the machine of a unit's first input's first copy.

    Wrong: a data unit whose copies are not known yet has no first copy (IndexError).
    """

    name: ClassVar[str] = "crashes_on_inputs"
    capabilities: ClassVar[frozenset[str]] = frozenset({"packing"})  # first fit, on purpose

    def place(
        self, units: Sequence[UnitRequest], pilots: Sequence[PilotOffer]
    ) -> Mapping[str, str | None]:
        placement: dict[str, str | None] = {}
        for unit in units:
            fitting = [p for p in pilots if p.can_hold(unit.cores)]
            if unit.inputs:
                machine = unit.inputs[0].replicas[0].machine
                fitting.sort(key=lambda p: p.machine != machine)
            placement[unit.id] = fitting[0].id if fitting else None
        return placement


class TiesBySetOrder(Scheduler):
    """Each unit to the fitting pilot with the fewest units.

    Wrong: among equally loaded pilots it takes the first of a set of ids, whose
    order depends on the process' string-hash seed.
    """

    name: ClassVar[str] = "ties_by_set_order"

    def place(
        self, units: Sequence[UnitRequest], pilots: Sequence[PilotOffer]
    ) -> Mapping[str, str | None]:
        load = {p.id: p.load for p in pilots}
        placement: dict[str, str | None] = {}
        for unit in units:
            fitting = {p.id for p in pilots if p.can_hold(unit.cores)}
            chosen = min(fitting, key=load.__getitem__, default=None)
            placement[unit.id] = chosen
            if chosen is not None:
                load[chosen] += 1
        return placement


class ReturnsList(Scheduler):
    """First fit.  Wrong: returns the pilots as a list, in the units' order."""

    name: ClassVar[str] = "returns_list"

    def place(self, units: Sequence[UnitRequest], pilots: Sequence[PilotOffer]) -> Any:
        return [first_fit(unit, pilots) for unit in units]


def file_url(url: str) -> str:
    """The ``file://`` URL of the directory that a ``<scheme>://`` URL of these plugins names."""
    return "file://" + url.split("://", 1)[1]


def like(pattern: str) -> re.Pattern[str]:
    """SQL LIKE as SQLite has it: ``%`` any run, ``_`` any one character, ASCII case-blind."""
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.compile(regex, re.IGNORECASE | re.DOTALL)


def record_keys(records: str) -> list[str]:
    """Every key with a record in a ``file`` coordination directory's ``records/``."""
    keys = []
    for folder, _, files in os.walk(records):
        for file in files:
            if file.endswith(".json"):
                path = os.path.relpath(os.path.join(folder, file), records)
                keys.append(path.removesuffix(".json"))
    return keys


class LikeCoordination(FileCoordination):
    """Lists records as ``WHERE key LIKE :prefix || '/%' AND key NOT LIKE :prefix || '/%/%'``.

    Wrong: ``_`` is a wildcard in LIKE and LIKE ignores case, so "ns/pilot_1"
    also lists "ns/PILOT_1/z" and "ns/pilotA1/y".
    """

    name: ClassVar[str] = "like"
    schemes: ClassVar[tuple[str, ...]] = ("like",)

    def __init__(self, url: str, *, serve: bool = False) -> None:
        super().__init__(file_url(url), serve=serve)
        self.url = url

    def list_records(self, prefix: str) -> list[str]:
        check_name(prefix)
        below, deeper = like(f"{prefix}/%"), like(f"{prefix}/%/%")
        keys = record_keys(self._records)
        return sorted(key for key in keys if below.fullmatch(key) and not deeper.fullmatch(key))


class GlobCoordination(FileCoordination):
    """Lists records with ``fnmatchcase(key, prefix + "/*")``, so that a prefix may be a pattern.

    Wrong: names with ``*``, ``?`` or ``[`` are not valid names, and the contract
    asks every operation to refuse them; this one lists what they match.
    """

    name: ClassVar[str] = "glob"
    schemes: ClassVar[tuple[str, ...]] = ("glob",)

    def __init__(self, url: str, *, serve: bool = False) -> None:
        super().__init__(file_url(url), serve=serve)
        self.url = url

    def list_records(self, prefix: str) -> list[str]:
        keys = record_keys(self._records)
        return sorted(
            key
            for key in keys
            if fnmatchcase(key, f"{prefix}/*") and not fnmatchcase(key, f"{prefix}/*/*")
        )


class SetListCoordination(FileCoordination):
    """Wrong: ``list_records`` returns a set (its keys are unique, after all)."""

    name: ClassVar[str] = "setlist"
    schemes: ClassVar[tuple[str, ...]] = ("setlist",)

    def __init__(self, url: str, *, serve: bool = False) -> None:
        super().__init__(file_url(url), serve=serve)
        self.url = url

    def list_records(self, prefix: str) -> Any:
        return set(super().list_records(prefix))


class StrGetStore(FileStore):
    """Wrong: ``get`` returns the directory it copied into, not the names copied."""

    name: ClassVar[str] = "strget"
    schemes: ClassVar[tuple[str, ...]] = ("strget",)

    def __init__(self, url: str, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(file_url(url), options)
        self.url = url

    def get(self, unit_id: str, destination: str, patterns: Sequence[str] = ("*",)) -> Any:
        super().get(unit_id, destination, patterns)
        return destination


class GetThenPutCoordination(FileCoordination):
    """Creates a record if ``get_record`` finds none: the contract's 1.1 default, kept.

    Wrong: between the get and the put another process may create it too, and
    both are told they won (two holders of one lease, two owners of one number).
    """

    name: ClassVar[str] = "getput"
    schemes: ClassVar[tuple[str, ...]] = ("getput",)

    def __init__(self, url: str, *, serve: bool = False) -> None:
        super().__init__(file_url(url), serve=serve)
        self.url = url

    def create_record(self, key: str, record: Mapping[str, Any]) -> bool:
        if self.get_record(key) is not None:
            return False
        self.put_record(key, record)
        return True

    def allocate(self, counter: str, count: int) -> int:
        return Coordination.allocate(self, counter, count)
