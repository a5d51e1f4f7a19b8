"""Read a `troy run` batch file into validated pilot and unit descriptions.

A batch file is YAML (or JSON with the same structure)::

    coordination: file:///tmp/x   # optional; if absent the runtime picks its default
    scheduler: round_robin        # optional; default round_robin; or with options:
                                  #   scheduler: {name: random, options: {seed: 7}}
    pilots:                       # a non-empty list
      - resource: fork://localhost   # required: resource manager URL (alias: rm, service_url)
        pj_type: local               # optional: backend plugin name
        count: 1                     # optional, default 1: that many identical pilots
        number_of_processes: 2       # any other key: a PilotJobDescription attribute
        wall_time_limit: 10
    units:                        # a non-empty list
      - executable: /bin/echo        # WorkUnitDescription attributes
        arguments: ["hello from unit $TROY_INDEX"]
        output: stdout.txt
        count: 10                    # optional, default 1: that many copies

Copy *i* of a unit entry (0 <= i < count) gets ``TROY_INDEX=i`` merged into its
environment, so ``$TROY_INDEX`` in its arguments tells the copies apart; every
unit gets it, also when count is 1.  A relative ``working_directory`` of a
pilot is resolved against the batch file's directory (one starting with ``~``
is kept as written); a unit's stays relative, meaning relative to its pilot's
directory.

Values are read as `troy.model.documents` reads them (YAML 1.1, plus JSON's
``1e3``; a key given twice in one mapping is an error).  Everything is
validated before `load_batch_file` returns; any problem raises `BadBatchFile`
naming the line (1-based) and the field, e.g. ``units[2].executable``.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from troy.core import dependencies, sweeps
from troy.core.unit_manager import check_scheduler
from troy.model import limits
from troy.model.description import PilotJobDescription, WorkUnitDescription
from troy.model.documents import Document, Location, load_document
from troy.model.documents import closest as _closest
from troy.model.documents import field_name as _field
from troy.model.documents import kind as _kind
from troy.model.errors import BadBatchFile, BadDescription, UnknownAttribute
from troy.model.validators import clean_text

TOP_LEVEL_KEYS = ("coordination", "scheduler", "pilots", "units")
RESOURCE_KEYS = ("resource", "rm", "service_url")
PILOT_KEYS = (*RESOURCE_KEYS, "pj_type", "count")
UNIT_KEYS = ("count",)
DEFAULT_SCHEDULER = "round_robin"
INDEX_VARIABLE = "TROY_INDEX"

_SUFFIX_PART = re.compile(r"\[(\d+)\]|\.([^.\[\]]+)")


@dataclass
class PilotSpec:
    """One pilot to start: where, with which backend, and its description.

    `line` is the line of its entry in the file (0 if unknown: JSON that only
    the json module could read).
    """

    resource: str
    pj_type: str | None
    description: PilotJobDescription
    line: int


@dataclass
class UnitSpec:
    """One unit entry: a description to run `count` times; `line` as in PilotSpec."""

    description: WorkUnitDescription
    count: int
    line: int


@dataclass
class BatchFile:
    """A validated batch file; pilots are already expanded, units are not."""

    path: str
    coordination: str | None
    scheduler: str
    pilots: list[PilotSpec]
    units: list[UnitSpec]
    #: The scheduler's options (``scheduler: {name, options}``), checked by the plugin.
    scheduler_options: dict[str, Any] | None = None

    @property
    def pilot_count(self) -> int:
        """How many pilots the file starts."""
        return len(self.pilots)

    @property
    def unit_count(self) -> int:
        """How many units the file submits once counts and sweeps are expanded."""
        return sum(_units_of(spec) for spec in self.units)

    def unit_descriptions(self) -> list[WorkUnitDescription]:
        """Every unit, counts expanded; copy i of an entry has TROY_INDEX=i in its environment."""
        result: list[WorkUnitDescription] = []
        for spec in self.units:
            if spec.description.iterations is not None:
                result.append(spec.description.copy())  # the service expands the sweep
                continue
            environment = spec.description.environment or {}
            for index in range(spec.count):
                unit = spec.description.copy()  # already validated: copying is cheap
                unit.environment = {**environment, INDEX_VARIABLE: str(index)}
                result.append(unit)
        return result


def load_batch_file(path: str | os.PathLike[str]) -> BatchFile:
    """Read, parse and validate a batch file; raise BadBatchFile for any problem in it."""
    name = os.fspath(path)
    document = load_document(name)
    return _Checker(name, document).batch_file()


# -- validation ---------------------------------------------------------------------------


class _Checker:
    """Turns a parsed document into a BatchFile, failing at the first problem."""

    def __init__(self, name: str, document: Document) -> None:
        self.name = name
        self.document = document
        self.base = os.path.dirname(os.path.abspath(name))

    def fail(self, location: Location, message: str) -> BadBatchFile:
        """The error for a problem at `location` (its line, or its nearest parent's)."""
        return BadBatchFile(
            self.name, self.document.line(location), _field(location) or None, message
        )

    def batch_file(self) -> BatchFile:
        """The whole file, validated."""
        data = self.document.data
        if data is None:
            raise self.fail((), "the file is empty; expected a mapping with 'pilots' and 'units'")
        if not isinstance(data, dict):
            raise self.fail((), f"expected a mapping with 'pilots' and 'units', got {_kind(data)}")
        for key in data:
            if key not in TOP_LEVEL_KEYS:
                hint = _closest(str(key), TOP_LEVEL_KEYS)
                known = (
                    f"did you mean '{hint}'?" if hint else f"expected {', '.join(TOP_LEVEL_KEYS)}"
                )
                raise self.fail((key,), f"unknown key '{key}'; {known}")
        coordination = data.get("coordination")
        if coordination is not None:
            coordination = self.text(("coordination",), coordination)
        scheduler, scheduler_options = self.scheduler(data.get("scheduler"))
        pilots = [
            pilot
            for index, entry in enumerate(self.entries(data, "pilots"))
            for pilot in self.pilots(("pilots", index), entry)
        ]
        units = [
            self.unit(("units", index), entry)
            for index, entry in enumerate(self.entries(data, "units"))
        ]
        bound = limits.current()
        if len(pilots) > bound.pilots:
            raise self.fail(
                ("pilots",), bound.over("pilots", "", f"a file of {len(pilots)} pilots").reason
            )
        total = sum(_units_of(spec) for spec in units)
        if total > bound.units:
            too_many = bound.over("units", "", f"a file of {total} units")
            raise self.fail(("units",), too_many.reason)
        self.dependencies(units)
        return BatchFile(self.name, coordination, scheduler, pilots, units, scheduler_options)

    def scheduler(self, value: Any) -> tuple[str, dict[str, Any] | None]:
        """The scheduler's name and options: a name, or ``{name: NAME, options: {...}}``.

        The options are checked by the plugin itself, so it must be installed.
        """
        if value is None:
            return DEFAULT_SCHEDULER, None
        if not isinstance(value, dict):
            return self.text(("scheduler",), value), None
        for key in value:
            if key not in ("name", "options"):
                raise self.fail(
                    ("scheduler", key), f"unknown key '{key}'; expected 'name' and 'options'"
                )
        if "name" not in value:
            raise self.fail(("scheduler",), "missing 'name': the scheduler plugin's name")
        name = self.text(("scheduler", "name"), value["name"])
        options = value.get("options")
        if options is None:
            return name, None
        if not isinstance(options, dict):
            raise self.fail(
                ("scheduler", "options"), f"expected a mapping of options, got {_kind(options)}"
            )
        try:
            check_scheduler(name, options)
        except BadDescription as exc:
            option = exc.field.partition(".")[2]
            location = ("scheduler", "options", option) if option in options else ("scheduler",)
            raise self.fail(location, str(exc).partition(": ")[2]) from None
        return name, dict(options)

    def dependencies(self, units: list[UnitSpec]) -> None:
        """Every ``after`` names units of the file, and they form no cycle."""
        problem = dependencies.check_entries([spec.description for spec in units])
        if problem is not None:
            index, message = problem
            raise self.fail(("units", index, "after"), message)

    def entries(self, data: dict[Any, Any], key: str) -> list[dict[Any, Any]]:
        """The non-empty list of mappings under `key`."""
        if key not in data:
            raise self.fail((key,), f"missing '{key}': the file needs a non-empty list of {key}")
        entries = data[key]
        if not isinstance(entries, list) or not entries:
            what = "an empty list" if entries == [] else _kind(entries)
            raise self.fail((key,), f"expected a non-empty list of {key}, got {what}")
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise self.fail(
                    (key, index), f"expected a mapping of attributes, got {_kind(entry)}"
                )
        return entries

    def text(self, location: Location, value: Any) -> str:
        """`value` if it is a non-empty string."""
        if not isinstance(value, str) or not value.strip():
            raise self.fail(location, f"expected a non-empty string, got {_kind(value)}")
        try:
            return clean_text("", value)
        except BadDescription as exc:
            raise self.fail(location, exc.reason) from None

    def url(self, location: Location, value: Any) -> str:
        """`value` if it is a non-empty string that parses as a URL."""
        text = self.text(location, value)
        try:
            urlsplit(text)
        except ValueError as exc:
            raise self.fail(location, f"not a valid URL: {exc} ({text!r})") from None
        return text

    def count(self, location: Location, value: Any, limit: str) -> int:
        """`value` if it is a positive integer within the limit ``limit`` (units, pilots)."""
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.fail(location, f"expected a positive integer, got {_kind(value)}")
        bound = limits.current()
        if value > getattr(bound, limit):
            raise self.fail(location, bound.over(limit, "", f"a count of {value}").reason)
        return value

    def pilots(self, location: Location, entry: dict[Any, Any]) -> list[PilotSpec]:
        """The `count` pilots one pilot entry asks for."""
        resource_key: str | None = None
        resource = ""
        pj_type: str | None = None
        count = 1
        description = PilotJobDescription()
        for key, value in entry.items():
            if key in RESOURCE_KEYS:
                if resource_key is not None:
                    message = f"'{key}' repeats '{resource_key}': give the resource URL once"
                    raise self.fail((*location, key), message)
                resource_key, resource = key, self.url((*location, key), value)
            elif key == "pj_type":
                pj_type = None if value is None else self.text((*location, key), value)
            elif key == "count":
                count = self.count((*location, key), value, "pilots")
            else:
                self.set(description, location, key, value, PILOT_KEYS)
        if resource_key is None:
            message = "a pilot needs 'resource', a resource manager URL such as fork://localhost"
            raise self.fail((*location, "resource"), message)
        self.validate(description, location)
        directory = description.working_directory
        if directory is not None and not os.path.isabs(os.path.expanduser(directory)):
            directory = os.path.join(self.base, directory)
            description.working_directory = os.path.normpath(directory)
        line = self.document.line(location) or 0
        copies = [description] + [PilotJobDescription(description) for _ in range(count - 1)]
        return [PilotSpec(resource, pj_type, copy, line) for copy in copies]

    def unit(self, location: Location, entry: dict[Any, Any]) -> UnitSpec:
        """One unit entry."""
        count = 1
        description = WorkUnitDescription()
        for key, value in entry.items():
            if key == "count":
                count = self.count((*location, key), value, "units")
            else:
                self.set(description, location, key, value, UNIT_KEYS)
        self.validate(description, location)
        if count > 1 and description.iterations is not None:
            message = "give 'iterations' or 'count', not both (a sweep sets TROY_INDEX itself)"
            raise self.fail((*location, "count"), message)
        return UnitSpec(description, count, self.document.line(location) or 0)

    def set(
        self,
        description: PilotJobDescription | WorkUnitDescription,
        location: Location,
        key: Any,
        value: Any,
        own_keys: tuple[str, ...],
    ) -> None:
        """Set one description attribute, reporting a bad one at its key's line."""
        if not isinstance(key, str):
            message = f"attribute names must be strings, got {_kind(key)}"
            raise BadBatchFile(
                self.name, self.document.line((*location, key)), _field(location), message
            )
        try:
            description[key] = value
        except UnknownAttribute as exc:
            ours = _closest(str(key), own_keys)
            theirs = exc.suggestion
            if ours and (theirs is None or _likeness(key, ours) > _likeness(key, theirs)):
                message = f"unknown key '{key}'; did you mean '{ours}'?"
                raise self.fail((*location, key), message) from None
            raise self.description_error(location, exc, key) from None
        except BadDescription as exc:
            raise self.description_error(location, exc, key) from None

    def validate(
        self, description: PilotJobDescription | WorkUnitDescription, location: Location
    ) -> None:
        """Check the whole description, reporting at the entry's line."""
        try:
            description.validate()
        except BadDescription as exc:
            raise self.description_error(location, exc, None) from None

    def description_error(self, location: Location, exc: BadDescription, key: Any) -> BadBatchFile:
        """`exc` from the description at `location`, as a BadBatchFile with the key's line.

        The description names the canonical attribute; the error names the key as
        written in the file (an alias stays an alias) plus any part within it.
        """
        message = str(exc).removeprefix(f"{exc.field}: ")
        if key is not None and (isinstance(exc, UnknownAttribute) or exc.field == str(key)):
            suffix = ""
        else:
            head = re.match(r"[^.\[]*", exc.field)
            end = head.end() if head else 0
            key = exc.field[:end] if key is None else key
            suffix = exc.field[end:]
        place: Location = (*location, key)
        start = 0
        while match := _SUFFIX_PART.match(suffix, start):
            index, name = match.groups()
            place = (*place, int(index) if index is not None else name)
            start = match.end()
        return BadBatchFile(
            self.name, self.document.line(place), _field((*location, key)) + suffix, message
        )


def _units_of(spec: UnitSpec) -> int:
    """How many units an entry makes: its count, or the values of its sweep."""
    if spec.description.iterations is None:
        return spec.count
    return sweeps.size_of(spec.description.iterations)


def _likeness(word: Any, other: str) -> float:
    return difflib.SequenceMatcher(None, str(word), other).ratio()
