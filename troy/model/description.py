"""Pilot-job and work-unit descriptions: SAGA job-description attributes, validated.

A description is built from keyword arguments, from the plain dict BigJob users
write, or attribute by attribute.  Every value is checked when it is set, so a
typo or a wrong type is reported at the line that made it; `validate()` checks
what only the whole description can tell (e.g. a unit needs an executable).
Unset attributes read as None.
"""

from __future__ import annotations

import difflib
import posixpath
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from troy.model.cores import cores_value, unit_cores
from troy.model.errors import BadDescription, UnknownAttribute
from troy.model.saga_fields import SAGA_FIELDS, SagaAttributes
from troy.model.validators import (
    Validator,
    json_object,
    non_negative_int,
    nonempty_string,
    type_name,
)
from troy.model.workflow_fields import WORKFLOW_FIELDS


class _Description:
    """Common machinery: checked attributes stored in one dict."""

    __slots__ = ("_values",)

    _FIELDS: ClassVar[dict[str, Validator]] = SAGA_FIELDS
    #: Other spellings accepted on input (BigJob's), mapped to the canonical name.
    _ALIASES: ClassVar[dict[str, str]] = {}
    _REQUIRED: ClassVar[tuple[str, ...]] = ()

    def __init__(self, values: Mapping[str, Any] | _Description | None = None, **fields: Any):
        if type(values) is type(self) and not fields:
            # Already checked: copy without validating again (bulk submits copy 100,000s).
            object.__setattr__(self, "_values", values.as_dict())
            return
        if isinstance(values, _Description):
            values = values.as_dict()
        elif values is not None and not isinstance(values, Mapping):
            raise BadDescription(
                type(self).__name__,
                f"expected a mapping of attributes, got {type_name(values)}",
            )
        merged = {**(values or {}), **fields}
        checked: dict[str, Any] = {}
        for name, value in merged.items():
            field = self._canonical(name)
            if value is not None:
                checked[field] = self._FIELDS[field](field, value)
        object.__setattr__(self, "_values", checked)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """Every attribute this kind of description has."""
        return tuple(cls._FIELDS)

    @classmethod
    def _canonical(cls, name: Any) -> str:
        if not isinstance(name, str):
            raise BadDescription(str(name), "attribute names must be strings")
        if name in cls._FIELDS:
            return name
        if name in cls._ALIASES:
            return cls._ALIASES[name]
        close = difflib.get_close_matches(name, [*cls._FIELDS, *cls._ALIASES], n=1, cutoff=0.6)
        suggestion = cls._ALIASES.get(close[0], close[0]) if close else None
        raise UnknownAttribute(cls.__name__, name, suggestion)

    def __getattr__(self, name: str) -> Any:
        # Only reached for names that are not real attributes, i.e. fields.
        if name.startswith("__"):
            raise AttributeError(name)
        return self._values.get(self._canonical(name))

    def __setattr__(self, name: str, value: Any) -> None:
        field = self._canonical(name)
        if value is None:
            self._values.pop(field, None)
        else:
            self._values[field] = self._FIELDS[field](field, value)

    def __delattr__(self, name: str) -> None:
        self._values.pop(self._canonical(name), None)

    # BigJob users treat descriptions as dicts; support the common dict idioms.
    def __getitem__(self, name: str) -> Any:
        return self.__getattr__(name)

    def __setitem__(self, name: str, value: Any) -> None:
        self.__setattr__(name, value)

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def get(self, name: str, default: Any = None) -> Any:
        """The attribute's value, or ``default`` if it is unset."""
        value = self._values.get(name)
        if value is None and name not in self._FIELDS:
            value = self._values.get(self._canonical(name))  # an alias, or an error
        return default if value is None else value

    def as_dict(self) -> dict[str, Any]:
        """The attributes that are set, as a plain (JSON-ready) dict."""
        return {name: _copy(value) for name, value in self._values.items()}

    def copy(self, **changes: Any) -> Any:
        """A deep copy; ``changes`` (validated) replace attributes in it."""
        duplicate = type(self)(self)
        for name, value in changes.items():
            duplicate.__setattr__(name, value)
        return duplicate

    def validate(self) -> None:
        """Check what only the whole description can tell; raise BadDescription."""
        for field in self._REQUIRED:
            if field not in self._values:
                raise BadDescription(field, f"{type(self).__name__} needs '{field}'")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _Description):
            return NotImplemented
        return type(self) is type(other) and self._values == other._values

    def __hash__(self) -> int:  # mutable, like a dict
        raise TypeError(f"unhashable type: '{type(self).__name__}'")

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={value!r}" for name, value in self._values.items())
        return f"{type(self).__name__}({inner})"

    def __getstate__(self) -> dict[str, Any]:
        return self.as_dict()

    def __setstate__(self, state: dict[str, Any]) -> None:
        object.__setattr__(self, "_values", dict(state))


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


class PilotJobDescription(SagaAttributes, _Description):
    """What kind of pilot the application needs: a SAGA job description.

    ``number_of_processes`` is the pilot's slot count (default: the cores the
    agent can see); ``wall_time_limit`` is in minutes; ``working_directory`` is
    where unit sandboxes are made (default: a directory under the troy home).
    ``agent_python`` (a troy extension) is a Python on the target that has
    troy installed; without it, backends that start agents elsewhere ship
    troy there (see docs/backends.md).  ``hints`` (a troy extension) are
    free-form JSON values a scheduler may use (e.g. {"speed": 2.0}).
    """

    __slots__ = ()
    _FIELDS: ClassVar[dict[str, Validator]] = {
        **SAGA_FIELDS,
        "agent_python": nonempty_string,
        "launcher": nonempty_string,
        "hints": json_object,
    }
    _ALIASES: ClassVar[dict[str, str]] = {"walltime": "wall_time_limit"}

    agent_python: str | None
    launcher: str | None
    hints: dict[str, Any] | None


class WorkUnitDescription(SagaAttributes, _Description):
    """One task: what to run, with what, where its output goes, how many slots.

    A unit takes ``cores`` slots if set (a troy extension: a number, or a range
    whose minimum it needs and up to whose maximum it takes what is free,
    `unit_core_range`), else ``total_cpu_count``, else ``number_of_processes``
    (default 1), which an MPI unit multiplies by ``threads_per_process``
    (`unit_cores`).  It runs without a shell: ``arguments`` is a list and ``$VAR``/``${VAR}``
    in it are expanded from the unit's environment.  ``spmd_variation`` "mpi"
    (or "openmpi") starts it through the allocation's MPI launcher.
    ``retries`` (a troy extension, default 0) is how many more times a unit
    that fails runs, on any pilot.  ``hints`` (a troy extension) are free-form
    JSON values a scheduler may rank by (e.g. {"runtime": 3.2}, in seconds).
    """

    __slots__ = ()
    _REQUIRED: ClassVar[tuple[str, ...]] = ("executable",)
    #: troy's extensions: ``retries``, how often a unit that fails runs again.
    _FIELDS: ClassVar[dict[str, Validator]] = {
        **SAGA_FIELDS,
        "retries": non_negative_int,
        "cores": cores_value,
        "hints": json_object,
        **WORKFLOW_FIELDS,
    }

    retries: int | None
    hints: dict[str, Any] | None
    name: str | None
    after: list[Any] | None
    iterations: dict[str, int] | list[Any] | None
    iteration: str | int | float | None

    #: Paths a unit names relative to its directory (working_directory: to its pilot's).
    _RELATIVE_PATHS: ClassVar[tuple[str, ...]] = ("working_directory", "input", "output", "error")

    def validate(self) -> None:
        """As for every description, and: relative paths stay under the directory they are in.

        ``working_directory`` is relative to the pilot's directory, ``input``,
        ``output`` and ``error`` to the unit's: ``../x`` would reach outside it
        (another unit's files, the pilot's, the user's).  An absolute path is
        the explicit way to read or write elsewhere.
        """
        super().validate()
        for field in self._RELATIVE_PATHS:
            path = self._values.get(field)
            if path is None or posixpath.isabs(path) or path.startswith("~"):
                continue
            if posixpath.normpath(path).split("/")[0] == "..":
                raise BadDescription(
                    field,
                    f"the relative path {path!r} leads out of the"
                    f" {'pilot' if field == 'working_directory' else 'unit'}'s directory;"
                    " give an absolute path to use a directory elsewhere",
                )

    @property
    def cores(self) -> int:
        """Slots this unit needs on a pilot (`unit_cores`): a ranged ``cores``' minimum.

        The ``cores`` attribute as set reads through ``d["cores"]`` or ``d.get("cores")``.
        """
        return unit_cores(self._values)
