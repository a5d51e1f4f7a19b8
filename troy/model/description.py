"""Pilot-job and work-unit descriptions: SAGA job-description attributes, validated.

A description is built from keyword arguments, from the plain dict BigJob users
write, or attribute by attribute.  Every value is checked when it is set, so a
typo or a wrong type is reported at the line that made it; `validate()` checks
what only the whole description can tell (e.g. a unit needs an executable).
Unset attributes read as None.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

from troy.model.errors import BadDescription, UnknownAttribute
from troy.model.workflow_fields import WORKFLOW_FIELDS

Validator = Callable[[str, Any], Any]


def _type_name(value: Any) -> str:
    return type(value).__name__


def _string(field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise BadDescription(field, f"expected a string, got {_type_name(value)} {value!r}")
    return value


def _nonempty_string(field: str, value: Any) -> str:
    text = _string(field, value)
    if not text.strip():
        raise BadDescription(field, "must not be empty")
    return text


def _boolean(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise BadDescription(field, f"expected true or false, got {_type_name(value)} {value!r}")
    return value


def _integer(field: str, value: Any, minimum: int) -> int:
    is_int = isinstance(value, int) and not isinstance(value, bool)
    # BigJob descriptions often carry "4" for 4.
    if not is_int and not (isinstance(value, str) and value.strip().lstrip("-").isdigit()):
        raise BadDescription(field, f"expected an integer, got {_type_name(value)} {value!r}")
    number = int(value)
    if number < minimum:
        raise BadDescription(field, f"must be at least {minimum}, got {number}")
    return number


def _positive_int(field: str, value: Any) -> int:
    return _integer(field, value, 1)


def _non_negative_int(field: str, value: Any) -> int:
    return _integer(field, value, 0)


def _number(field: str, value: Any, positive: bool) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadDescription(field, f"expected a number, got {_type_name(value)} {value!r}")
    if math.isnan(value) or math.isinf(value):
        raise BadDescription(field, f"must be a finite number, got {value}")
    if value < 0 or (positive and value == 0):
        raise BadDescription(
            field, f"must be {'positive' if positive else 'at least 0'}, got {value}"
        )
    return value


def _positive_number(field: str, value: Any) -> float | int:
    return _number(field, value, positive=True)


def _non_negative_number(field: str, value: Any) -> float | int:
    return _number(field, value, positive=False)


def _string_list(field: str, value: Any) -> list[str]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise BadDescription(
            field, f"expected a list of strings, got {_type_name(value)} {value!r}"
        )
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise BadDescription(
                f"{field}[{index}]", f"expected a string, got {_type_name(item)} {item!r}"
            )
    return list(value)


def _arguments(field: str, value: Any) -> list[str]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise BadDescription(
            field, f"expected a list of arguments, got {_type_name(value)} {value!r}"
        )
    arguments: list[str] = []
    for index, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise BadDescription(
                f"{field}[{index}]",
                f"expected a string or number, got {_type_name(item)} {item!r}",
            )
        arguments.append(str(item))
    # BigJob wrote ``"arguments": [""]`` for "no arguments" (it joined them into a
    # shell command line, where an empty word vanished); keep those descriptions working.
    return [] if arguments == [""] else arguments


def _environment(field: str, value: Any) -> dict[str, str]:
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, list | tuple):
        items = []
        for index, entry in enumerate(value):
            if not isinstance(entry, str) or "=" not in entry:
                raise BadDescription(
                    f"{field}[{index}]", f"expected a 'NAME=value' string, got {entry!r}"
                )
            name, _, text = entry.partition("=")
            items.append((name, text))
    else:
        raise BadDescription(
            field,
            f"expected a mapping or a list of 'NAME=value' strings, got {_type_name(value)}",
        )
    environment: dict[str, str] = {}
    for name, text in items:
        if not isinstance(name, str) or not name or "=" in name:
            raise BadDescription(field, f"bad variable name {name!r}")
        if isinstance(text, bool) or not isinstance(text, str | int | float):
            raise BadDescription(f"{field}.{name}", f"expected a string, got {_type_name(text)}")
        environment[name] = str(text)
    return environment


#: The values ``spmd_variation`` accepts (any case); stored in lowercase.
SPMD_VARIATIONS = ("single", "mpi", "openmpi")
#: The variations started through an MPI launcher (srun, mpirun).
MPI_VARIATIONS = frozenset({"mpi", "openmpi"})


def _spmd_variation(field: str, value: Any) -> str:
    text = _string(field, value).strip().lower()
    if text not in SPMD_VARIATIONS:
        allowed = ", ".join(repr(name) for name in SPMD_VARIATIONS)
        raise BadDescription(field, f"expected one of {allowed} (any case), got {value!r}")
    return text


def runs_mpi(values: Mapping[str, Any]) -> bool:
    """Whether a unit with these attributes (a description or its raw dict) is an MPI unit."""
    variation = values.get("spmd_variation")
    return isinstance(variation, str) and variation.strip().lower() in MPI_VARIATIONS


def _core_bound(field: str, value: Any, what: str) -> int:
    """One end of a ``cores`` value: a whole number ≥ 1 (also ``"4"``)."""
    if isinstance(value, str) and value.strip().lstrip("-").isdecimal():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadDescription(
            field, f"{what} must be a whole number, got {_type_name(value)} {value!r}"
        )
    if value < 1:
        raise BadDescription(field, f"{what} must be at least 1, got {value}")
    return value


def _core_range(field: str, value: Any) -> tuple[int, int]:
    """The fewest and most slots a ``cores`` value allows (both the same for a number)."""
    if isinstance(value, Mapping):
        if set(value) != {"min", "max"}:
            raise BadDescription(field, f"a range is {{'min': m, 'max': n}}, got {dict(value)!r}")
        low = _core_bound(field, value["min"], "min")
        high = _core_bound(field, value["max"], "max")
    elif isinstance(value, str) and ".." in value:
        low_text, _, high_text = value.partition("..")
        if not (low_text.strip().isdecimal() and high_text.strip().isdecimal()):
            raise BadDescription(field, f"expected a range 'min..max', got {value!r}")
        low = _core_bound(field, low_text, "min")
        high = _core_bound(field, high_text, "max")
    elif isinstance(value, int | str) and not isinstance(value, bool):
        low = high = _core_bound(field, value, "the number of cores")
    else:
        raise BadDescription(
            field,
            "expected a number of cores, a range 'min..max' or {'min': m, 'max': n}, "
            f"got {_type_name(value)} {value!r}",
        )
    if high < low:
        raise BadDescription(field, f"max ({high}) must not be less than min ({low})")
    return low, high


def _cores(field: str, value: Any) -> int | dict[str, int]:
    low, high = _core_range(field, value)
    exact = not isinstance(value, Mapping) and not (isinstance(value, str) and ".." in value)
    return low if exact else {"min": low, "max": high}


def unit_cores(values: Mapping[str, Any]) -> int:
    """Slots a unit with these attributes (a description or its raw dict) needs on a pilot.

    ``cores`` if set (a range's minimum: placement counts what the unit needs
    to start); else ``total_cpu_count``; else, for an MPI unit,
    ``number_of_processes`` times ``threads_per_process``; else
    ``number_of_processes``; default 1.
    """
    if values.get("cores") is not None:
        return unit_core_range(values)[0]
    total = values.get("total_cpu_count")
    if total:
        return int(total)
    processes = int(values.get("number_of_processes") or 1)
    if runs_mpi(values):
        return processes * int(values.get("threads_per_process") or 1)
    return processes


def unit_core_range(values: Mapping[str, Any]) -> tuple[int, int]:
    """The fewest and most slots a unit with these attributes can run on.

    A ranged ``cores`` (``{"min": 2, "max": 8}`` or ``"2..8"``) gives its two
    ends; any other unit needs exactly `unit_cores` slots (both ends the same).
    """
    cores = values.get("cores")
    if cores is None:
        count = unit_cores(values)
        return count, count
    if type(cores) is int:  # the stored form of an exact count
        return cores, cores
    return _core_range("cores", cores)


def _start_time(field: str, value: Any) -> float | int | str:
    if isinstance(value, str):
        return value
    return _non_negative_number(field, value)


def _input_data(field: str, value: Any) -> list[Any]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise BadDescription(field, f"expected a list of data-unit URLs, got {_type_name(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, str | Mapping):
            raise BadDescription(
                f"{field}[{index}]", f"expected a data-unit URL, got {_type_name(item)} {item!r}"
            )
    return list(value)


def _output_data(field: str, value: Any) -> list[dict[str, list[str]]]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise BadDescription(
            field, f"expected a list of {{data-unit URL: [globs]}}, got {_type_name(value)}"
        )
    result: list[dict[str, list[str]]] = []
    for index, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise BadDescription(
                f"{field}[{index}]", f"expected {{data-unit URL: [globs]}}, got {item!r}"
            )
        entry: dict[str, list[str]] = {}
        for url, globs in item.items():
            entry[_string(f"{field}[{index}]", url)] = _string_list(
                f"{field}[{index}][{url!r}]", globs
            )
        result.append(entry)
    return result


#: The SAGA job-description attributes named by the TROY API, plus BigJob's additions.
SAGA_FIELDS: dict[str, Validator] = {
    # pilot / agent or action
    "executable": _nonempty_string,
    "arguments": _arguments,
    "cleanup": _boolean,
    "environment": _environment,
    "interactive": _boolean,
    "contact": _string,
    "project": _string,
    "start_time": _start_time,
    "working_directory": _nonempty_string,
    # I/O
    "input": _nonempty_string,
    "error": _nonempty_string,
    "output": _nonempty_string,
    "file_transfer": _string_list,
    # concurrency
    "number_of_processes": _positive_int,
    "processes_per_host": _positive_int,
    "threads_per_process": _positive_int,
    "total_cpu_count": _positive_int,
    "spmd_variation": _spmd_variation,
    # requirements
    "candidate_hosts": _string_list,
    "cpu_architecture": _nonempty_string,
    "total_physical_memory": _non_negative_int,
    "operating_system_type": _nonempty_string,
    "total_cpu_time": _non_negative_number,
    "wall_time_limit": _positive_number,
    "queue": _nonempty_string,
    # BigJob / Pilot-API additions
    "affinity_datacenter_label": _string,
    "affinity_machine_label": _string,
    "input_data": _input_data,
    "output_data": _output_data,
}


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
                f"expected a mapping of attributes, got {_type_name(values)}",
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
        if value is None:
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


class PilotJobDescription(_Description):
    """What kind of pilot the application needs: a SAGA job description.

    ``number_of_processes`` is the pilot's slot count (default: the cores the
    agent can see); ``wall_time_limit`` is in minutes; ``working_directory`` is
    where unit sandboxes are made (default: a directory under the troy home).
    ``agent_python`` (a troy extension) is a Python on the target that has
    troy installed; without it, backends that start agents elsewhere ship
    troy there (see docs/backends.md).
    """

    __slots__ = ()
    _FIELDS: ClassVar[dict[str, Validator]] = {
        **SAGA_FIELDS,
        "agent_python": _nonempty_string,
        "launcher": _nonempty_string,
    }
    _ALIASES: ClassVar[dict[str, str]] = {"walltime": "wall_time_limit"}

    executable: str | None
    arguments: list[str] | None
    cleanup: bool | None
    environment: dict[str, str] | None
    interactive: bool | None
    contact: str | None
    project: str | None
    start_time: float | int | str | None
    working_directory: str | None
    input: str | None
    error: str | None
    output: str | None
    file_transfer: list[str] | None
    number_of_processes: int | None
    processes_per_host: int | None
    threads_per_process: int | None
    total_cpu_count: int | None
    spmd_variation: str | None
    candidate_hosts: list[str] | None
    cpu_architecture: str | None
    total_physical_memory: int | None
    operating_system_type: str | None
    total_cpu_time: float | int | None
    wall_time_limit: float | int | None
    queue: str | None
    affinity_datacenter_label: str | None
    affinity_machine_label: str | None
    input_data: list[Any] | None
    output_data: list[dict[str, list[str]]] | None
    agent_python: str | None
    launcher: str | None


class WorkUnitDescription(_Description):
    """One task: what to run, with what, where its output goes, how many slots.

    A unit takes ``cores`` slots if set (a troy extension: a number, or a range
    whose minimum it needs and up to whose maximum it takes what is free,
    `unit_core_range`), else ``total_cpu_count``, else ``number_of_processes``
    (default 1), which an MPI unit multiplies by ``threads_per_process``
    (`unit_cores`).  It runs without a shell: ``arguments`` is a list and ``$VAR``/``${VAR}``
    in it are expanded from the unit's environment.  ``spmd_variation`` "mpi"
    (or "openmpi") starts it through the allocation's MPI launcher.
    ``retries`` (a troy extension, default 0) is how many more times a unit
    that fails runs, on any pilot.
    """

    __slots__ = ()
    _REQUIRED: ClassVar[tuple[str, ...]] = ("executable",)
    #: troy's extensions: ``retries``, how often a unit that fails runs again.
    _FIELDS: ClassVar[dict[str, Validator]] = {
        **SAGA_FIELDS,
        "retries": _non_negative_int,
        "cores": _cores,
        **WORKFLOW_FIELDS,
    }

    executable: str | None
    arguments: list[str] | None
    cleanup: bool | None
    environment: dict[str, str] | None
    interactive: bool | None
    contact: str | None
    project: str | None
    start_time: float | int | str | None
    working_directory: str | None
    input: str | None
    error: str | None
    output: str | None
    file_transfer: list[str] | None
    number_of_processes: int | None
    processes_per_host: int | None
    threads_per_process: int | None
    total_cpu_count: int | None
    spmd_variation: str | None
    candidate_hosts: list[str] | None
    cpu_architecture: str | None
    total_physical_memory: int | None
    operating_system_type: str | None
    total_cpu_time: float | int | None
    wall_time_limit: float | int | None
    queue: str | None
    affinity_datacenter_label: str | None
    affinity_machine_label: str | None
    input_data: list[Any] | None
    output_data: list[dict[str, list[str]]] | None
    retries: int | None
    name: str | None
    after: list[Any] | None
    iterations: dict[str, int] | list[Any] | None
    iteration: str | int | float | None

    @property
    def cores(self) -> int:
        """Slots this unit needs on a pilot (`unit_cores`): a ranged ``cores``' minimum.

        The ``cores`` attribute as set reads through ``d["cores"]`` or ``d.get("cores")``.
        """
        return unit_cores(self._values)
