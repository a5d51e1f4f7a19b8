"""Parameter sweeps: a unit with ``iterations`` becomes one unit per value.

In each copy ``${it}`` is replaced by the iteration's value and ``$TROY_INDEX``
/ ``${TROY_INDEX}`` by its position (0, 1, ...), in the arguments, the
environment's values, the input/output/error names, the working directory
and the data-unit URLs and globs of input_data/output_data. Each copy also
gets ``TROY_INDEX`` in its environment and its value in ``iteration``; it keeps
the sweep's ``name``, so ``after: [name]`` waits for the whole sweep and
``after: ["name:VALUE"]`` for one iteration.
"""

from __future__ import annotations

import re
from typing import Any

from troy.model import limits
from troy.model.description import WorkUnitDescription

INDEX_VARIABLE = "TROY_INDEX"
_INDEX = re.compile(r"\$(?:\{TROY_INDEX\}|TROY_INDEX(?![A-Za-z0-9_]))")


def size_of(iterations: Any) -> int:
    """How many values an ``iterations`` field (already validated) stands for; 1 if None."""
    if iterations is None:
        return 1
    if isinstance(iterations, dict):
        return len(range(iterations["start"], iterations["stop"], iterations["step"]))
    return len(iterations)


def values_of(iterations: Any) -> list[Any]:
    """The values an ``iterations`` field (already validated) stands for."""
    if isinstance(iterations, dict):
        return list(range(iterations["start"], iterations["stop"], iterations["step"]))
    return list(iterations)


def _substitute(value: Any, it: str, index: str) -> Any:
    if isinstance(value, str):
        return _INDEX.sub(index, value.replace("${it}", it))
    if isinstance(value, list):
        return [_substitute(item, it, index) for item in value]
    if isinstance(value, dict):
        return {_substitute(k, it, index): _substitute(v, it, index) for k, v in value.items()}
    return value


_SUBSTITUTED = (
    "arguments",
    "environment",
    "input",
    "output",
    "error",
    "working_directory",
    "input_data",
    "output_data",
)


def expand(description: WorkUnitDescription) -> list[WorkUnitDescription]:
    """The units a description stands for: itself, or one per iteration value."""
    iterations = description.get("iterations")
    if iterations is None:
        return [description]
    values = description.as_dict()
    del values["iterations"]
    units = []
    for index, value in enumerate(values_of(iterations)):
        copy = dict(values)
        for field in _SUBSTITUTED:
            if field in copy:
                copy[field] = _substitute(copy[field], str(value), str(index))
        copy["environment"] = {**(copy.get("environment") or {}), INDEX_VARIABLE: str(index)}
        copy["iteration"] = value
        units.append(WorkUnitDescription(copy))
    return units


def expand_all(descriptions: list[WorkUnitDescription]) -> list[WorkUnitDescription]:
    """Every description expanded, in order; BadDescription if they make too many units."""
    bound = limits.current()
    if len(descriptions) > bound.units:
        raise bound.over("units", "submit", f"a submit of {len(descriptions)} units")
    if not any("iterations" in d for d in descriptions):
        return descriptions  # the common case: nothing to copy
    total = sum(size_of(d.get("iterations")) for d in descriptions)
    if total > bound.units:
        raise bound.over("units", "submit", f"a submit of {total} units (sweeps expanded)")
    return [unit for description in descriptions for unit in expand(description)]
