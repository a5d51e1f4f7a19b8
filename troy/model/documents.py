"""Read a YAML or JSON file into plain values plus the line of every key and list item.

Shared by the readers of troy's input files (batch files, workload files):
each validates the values itself and reports a problem with `Document.line`
and `field_name`, as a `BadBatchFile` (or a subclass) naming file:line:field.

Values follow YAML 1.1 as PyYAML reads it, except that exponent numbers
without a dot (``1e3``) are numbers, as in JSON.  A key given twice in one
mapping is an error.  A file that YAML refuses but JSON reads (tabs where
YAML wants none) is read as JSON, keeping lines where YAML can still find them.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from troy.model import limits
from troy.model.errors import BadBatchFile

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"

#: Where a value is in a document: the keys and list indexes leading to it.
Location = tuple[Any, ...]


@dataclass
class Document:
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


def load_document(
    name: str, what: str = "batch file", error: type[BadBatchFile] = BadBatchFile
) -> Document:
    """Read and parse the file `name`; `error` (naming the file, line) for unreadable or bad syntax.

    `what` says what the file should be, for the message when it is a directory.
    """
    return parse_document(name, read_text(name, what, error), error)


def read_text(name: str, what: str = "batch file", error: type[BadBatchFile] = BadBatchFile) -> str:
    """The file's text (UTF-8, a BOM dropped); `error` if it cannot be read or decoded."""
    try:
        size = Path(name).stat().st_size
        bound = limits.current().file_bytes
        if size > bound:
            raise error(name, None, None, f"{size} bytes is over the limit of {bound} bytes"
                        " (raise it with TROY_LIMITS=file_bytes=N)")  # fmt: skip
        raw = Path(name).read_bytes()
    except FileNotFoundError:
        raise error(name, None, None, "no such file") from None
    except IsADirectoryError:
        raise error(name, None, None, f"is a directory, not a {what}") from None
    except OSError as exc:
        raise error(name, None, None, f"cannot read: {exc.strerror or exc}") from exc
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise error(name, line, None, "not UTF-8 text") from exc


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


def parse_document(name: str, text: str, error: type[BadBatchFile] = BadBatchFile) -> Document:
    """Parse `text` (the contents of the file `name`) as YAML, or as JSON if YAML refuses it."""
    try:
        return _compose(name, text, error)
    except yaml.YAMLError as yaml_error:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as json_error:
            if name.lower().endswith(".json"):
                message = f"JSON syntax error: {json_error.msg} (column {json_error.colno})"
                raise error(name, json_error.lineno, None, message) from None
            raise _syntax_error(name, text, yaml_error, error) from None
    # Valid JSON that YAML rejects: in strict JSON a tab can only be whitespace, which
    # YAML refuses in places; spaces keep every line where it was.
    try:
        return _compose(name, text.replace("\t", " "), error)
    except yaml.YAMLError:
        return Document(data, {})


def _syntax_error(
    name: str, text: str, problem: yaml.YAMLError, error: type[BadBatchFile]
) -> BadBatchFile:
    if isinstance(problem, yaml.MarkedYAMLError):
        mark = problem.problem_mark or problem.context_mark
        what = "; ".join(part for part in (problem.context, problem.problem) if part)
        if mark is None:
            return error(name, None, None, f"YAML syntax error: {what}")
        message = f"YAML syntax error: {what} (column {mark.column + 1})"
        return error(name, mark.line + 1, None, message)
    if isinstance(problem, yaml.reader.ReaderError):
        line = text[: problem.position].count("\n") + 1
        code = problem.character if isinstance(problem.character, int) else ord(problem.character)
        return error(name, line, None, f"character U+{code:04X} is not allowed")
    return error(name, None, None, f"YAML syntax error: {problem}")


def _compose(name: str, text: str, error: type[BadBatchFile]) -> Document:
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        builder = _Builder(name, loader, error)
        data = None if root is None else builder.value(root, ())
        return Document(data, builder.lines)
    except RecursionError:
        raise error(name, None, None, "nested too deeply") from None
    finally:
        loader.dispose()


class _Builder:
    """Builds plain Python values from YAML nodes, noting each entry's line."""

    def __init__(self, name: str, loader: _Loader, error: type[BadBatchFile]) -> None:
        self.name = name
        self.loader = loader
        self.error = error
        self.lines: dict[Location, int] = {}
        self._active: set[int] = set()  # collection nodes being built: catches `&a [*a]`
        self._explicit: dict[int, set[int]] = {}  # per mapping node: keys not from `<<`
        #: Values left to build: aliases repeat whole collections (a "billion laughs"
        #: document is small and expands without end), so each use counts.
        self._budget = limits.current().yaml_values

    def value(self, node: yaml.Node, location: Location) -> Any:
        """The value of `node`, found at `location` in the document."""
        self.lines.setdefault(location, node.start_mark.line + 1)
        self._budget -= 1
        if self._budget < 0:
            bound = limits.current().yaml_values
            raise self.error(
                self.name,
                self.lines[location],
                field_name(location) or None,
                f"the document holds more than {bound} values (YAML aliases count each time "
                "they are used; raise it with TROY_LIMITS=yaml_values=N)",
            )
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode) and node.tag in (
            _MAP_TAG,
            _SEQ_TAG,
        ):
            if id(node) in self._active:
                raise self.error(
                    self.name,
                    self.lines[location],
                    field_name(location) or None,
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
                raise self.error(
                    self.name,
                    key_node.start_mark.line + 1,
                    field_name(location) or None,
                    "a mapping key must be a scalar",
                )
            key = self.loader.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if key in first and id(key_node) in explicit:
                raise self.error(
                    self.name,
                    line,
                    field_name((*location, key)),
                    f"key '{key}' repeats the one on line {first[key]}",
                )
            if id(key_node) in explicit:
                first[key] = line
            self.lines[(*location, key)] = line
            result[key] = self.value(value_node, (*location, key))
        return result


# -- for the readers' messages ---------------------------------------------------------------


def field_name(location: Location) -> str:
    """How a message names `location`: ``units[2].executable``."""
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else f"{'.' if text else ''}{part}"
    return text


def kind(value: Any) -> str:
    """What `value` is, for a message: ``a string ('x')``, ``a list``."""
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


def closest(word: str, candidates: tuple[str, ...] | list[str]) -> str | None:
    """The candidate `word` is most probably a typo of, if any is close enough."""
    matches = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return matches[0] if matches else None
