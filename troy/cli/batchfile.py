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

Values follow YAML 1.1 as PyYAML reads it, except that exponent numbers
without a dot (``1e3``) are numbers, as in JSON.  A key given twice in one
mapping is an error.  Everything is validated before `load_batch_file`
returns; any problem raises `BadBatchFile` naming the line (1-based) and the
field, e.g. ``units[2].executable``.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from troy.core import dependencies
from troy.core.unit_manager import check_scheduler
from troy.model.description import PilotJobDescription, WorkUnitDescription
from troy.model.errors import BadBatchFile, BadDescription, UnknownAttribute

TOP_LEVEL_KEYS = ("coordination", "scheduler", "pilots", "units")
RESOURCE_KEYS = ("resource", "rm", "service_url")
PILOT_KEYS = (*RESOURCE_KEYS, "pj_type", "count")
UNIT_KEYS = ("count",)
DEFAULT_SCHEDULER = "round_robin"
INDEX_VARIABLE = "TROY_INDEX"

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_SUFFIX_PART = re.compile(r"\[(\d+)\]|\.([^.\[\]]+)")

Location = tuple[Any, ...]


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
        """How many units the file submits once counts are expanded."""
        return sum(spec.count for spec in self.units)

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
    document = _parse(name, _read(name))
    return _Checker(name, document).batch_file()


# -- reading and parsing ------------------------------------------------------------------


def _read(name: str) -> str:
    try:
        raw = Path(name).read_bytes()
    except FileNotFoundError:
        raise BadBatchFile(name, None, None, "no such file") from None
    except IsADirectoryError:
        raise BadBatchFile(name, None, None, "is a directory, not a batch file") from None
    except OSError as exc:
        raise BadBatchFile(name, None, None, f"cannot read: {exc.strerror or exc}") from exc
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise BadBatchFile(name, line, None, "not UTF-8 text") from exc


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads JSON's ``1e3`` as a float and notes where list aliases are.

    An alias composes to the anchored node itself, whose marks point at the
    anchor; `alias_lines` keeps the line of each ``- *name`` list item.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.alias_lines: dict[tuple[int, int], int] = {}

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if isinstance(parent, yaml.SequenceNode) and self.check_event(yaml.AliasEvent):
            event: yaml.AliasEvent = self.peek_event()  # type: ignore[no-untyped-call]
            if event.start_mark is not None:
                self.alias_lines[(id(parent), index)] = event.start_mark.line + 1
        return super().compose_node(parent, index)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


@dataclass
class _Document:
    """Parsed data plus the line of every mapping key and list item, by location."""

    data: Any
    lines: dict[Location, int]

    def line(self, location: Location) -> int | None:
        """The line of `location`, or of its nearest enclosing entry that has one."""
        for end in range(len(location), -1, -1):
            line = self.lines.get(location[:end])
            if line is not None:
                return line
        return None


def _parse(name: str, text: str) -> _Document:
    try:
        return _compose(name, text)
    except yaml.YAMLError as yaml_error:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as json_error:
            if name.lower().endswith(".json"):
                message = f"JSON syntax error: {json_error.msg} (column {json_error.colno})"
                raise BadBatchFile(name, json_error.lineno, None, message) from None
            raise _syntax_error(name, text, yaml_error) from None
    # Valid JSON that YAML rejects: in strict JSON a tab can only be whitespace, which
    # YAML refuses in places; spaces keep every line where it was.
    try:
        return _compose(name, text.replace("\t", " "))
    except yaml.YAMLError:
        return _Document(data, {})


def _syntax_error(name: str, text: str, error: yaml.YAMLError) -> BadBatchFile:
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        what = "; ".join(part for part in (error.context, error.problem) if part)
        if mark is None:
            return BadBatchFile(name, None, None, f"YAML syntax error: {what}")
        message = f"YAML syntax error: {what} (column {mark.column + 1})"
        return BadBatchFile(name, mark.line + 1, None, message)
    if isinstance(error, yaml.reader.ReaderError):
        line = text[: error.position].count("\n") + 1
        code = error.character if isinstance(error.character, int) else ord(error.character)
        return BadBatchFile(name, line, None, f"character U+{code:04X} is not allowed")
    return BadBatchFile(name, None, None, f"YAML syntax error: {error}")


def _compose(name: str, text: str) -> _Document:
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        builder = _Builder(name, loader)
        data = None if root is None else builder.value(root, ())
        return _Document(data, builder.lines)
    except RecursionError:
        raise BadBatchFile(name, None, None, "nested too deeply") from None
    finally:
        loader.dispose()


class _Builder:
    """Builds plain Python values from YAML nodes, noting each entry's line."""

    def __init__(self, name: str, loader: _Loader) -> None:
        self.name = name
        self.loader = loader
        self.lines: dict[Location, int] = {}
        self._active: set[int] = set()  # collection nodes being built: catches `&a [*a]`
        self._explicit: dict[int, set[int]] = {}  # per mapping node: keys not from `<<`

    def value(self, node: yaml.Node, location: Location) -> Any:
        """The value of `node`, found at `location` in the document."""
        self.lines.setdefault(location, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode) and node.tag in (
            _MAP_TAG,
            _SEQ_TAG,
        ):
            if id(node) in self._active:
                raise BadBatchFile(
                    self.name,
                    self.lines[location],
                    _field(location) or None,
                    "an alias refers to a collection that contains it",
                )
            self._active.add(id(node))
            try:
                if isinstance(node, yaml.MappingNode):
                    return self._mapping(node, location)
                return [self._item(node, index, location) for index in range(len(node.value))]
            finally:
                self._active.discard(id(node))
        return self.loader.construct_object(node, deep=True)

    def _item(self, node: yaml.SequenceNode, index: int, location: Location) -> Any:
        item = node.value[index]
        line = self.loader.alias_lines.get((id(node), index), item.start_mark.line + 1)
        self.lines[(*location, index)] = line
        return self.value(item, (*location, index))

    def _mapping(self, node: yaml.MappingNode, location: Location) -> dict[Any, Any]:
        explicit = self._explicit.get(id(node))
        if explicit is None:
            explicit = {id(key) for key, _ in node.value if key.tag != _MERGE_TAG}
            self._explicit[id(node)] = explicit
        self.loader.flatten_mapping(node)
        result: dict[Any, Any] = {}
        first: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise BadBatchFile(
                    self.name,
                    key_node.start_mark.line + 1,
                    _field(location) or None,
                    "a mapping key must be a scalar",
                )
            key = self.loader.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if key in first and id(key_node) in explicit:
                raise BadBatchFile(
                    self.name,
                    line,
                    _field((*location, key)),
                    f"key '{key}' repeats the one on line {first[key]}",
                )
            if id(key_node) in explicit:
                first[key] = line
            self.lines[(*location, key)] = line
            result[key] = self.value(value_node, (*location, key))
        return result


# -- validation ---------------------------------------------------------------------------


def _field(location: Location) -> str:
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else f"{'.' if text else ''}{part}"
    return text


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    names = {str: "a string", int: "an integer", float: "a number"}
    return f"{names.get(type(value), type(value).__name__)} ({value!r})"


def _closest(word: str, candidates: tuple[str, ...] | list[str]) -> str | None:
    matches = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return matches[0] if matches else None


class _Checker:
    """Turns a parsed document into a BatchFile, failing at the first problem."""

    def __init__(self, name: str, document: _Document) -> None:
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
        return value

    def count(self, location: Location, value: Any) -> int:
        """`value` if it is a positive integer."""
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.fail(location, f"expected a positive integer, got {_kind(value)}")
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
                resource_key, resource = key, self.text((*location, key), value)
            elif key == "pj_type":
                pj_type = None if value is None else self.text((*location, key), value)
            elif key == "count":
                count = self.count((*location, key), value)
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
                count = self.count((*location, key), value)
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


def _likeness(word: Any, other: str) -> float:
    return difflib.SequenceMatcher(None, str(word), other).ratio()
