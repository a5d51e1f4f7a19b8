"""How many slots a unit needs: ``cores`` (a number or a range), MPI layout, SPMD variation.

The manager (placement) and the agent (slots, launchers) count the same way
with these functions, from a description or its plain dict.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from troy.model import limits
from troy.model.errors import BadDescription
from troy.model.validators import string, type_name

#: The values ``spmd_variation`` accepts (any case); stored in lowercase.
SPMD_VARIATIONS = ("single", "mpi", "openmpi")
#: The variations started through an MPI launcher (srun, mpirun).
MPI_VARIATIONS = frozenset({"mpi", "openmpi"})
#: A whole number written as text: ASCII digits (int() also takes other scripts' digits).
_DIGITS = re.compile(r"\s*-?[0-9]{1,18}\s*")
_RANGE_END = re.compile(r"\s*[0-9]{1,18}\s*")


def spmd_variation(field: str, value: Any) -> str:
    text = string(field, value).strip().lower()
    if text not in SPMD_VARIATIONS:
        allowed = ", ".join(repr(name) for name in SPMD_VARIATIONS)
        raise BadDescription(field, f"expected one of {allowed} (any case), got {value!r}")
    return text


def runs_mpi(values: Mapping[str, Any]) -> bool:
    """Whether a unit with these attributes (a description or its raw dict) is an MPI unit."""
    variation = values.get("spmd_variation")
    return isinstance(variation, str) and variation.strip().lower() in MPI_VARIATIONS


def core_bound(field: str, value: Any, what: str) -> int:
    """One end of a ``cores`` value: a whole number ≥ 1 (also ``"4"``), within the slots limit."""
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadDescription(
            field, f"{what} must be a whole number, got {type_name(value)} {value!r}"
        )
    if value < 1:
        raise BadDescription(field, f"{what} must be at least 1, got {value}")
    bound = limits.current()
    if value > bound.slots:
        raise bound.over("slots", field, f"{what} {value}")
    return value


def core_range(field: str, value: Any) -> tuple[int, int]:
    """The fewest and most slots a ``cores`` value allows (both the same for a number)."""
    if isinstance(value, Mapping):
        if set(value) != {"min", "max"}:
            raise BadDescription(field, f"a range is {{'min': m, 'max': n}}, got {dict(value)!r}")
        low = core_bound(field, value["min"], "min")
        high = core_bound(field, value["max"], "max")
    elif isinstance(value, str) and ".." in value:
        low_text, _, high_text = value.partition("..")
        if not (_RANGE_END.fullmatch(low_text) and _RANGE_END.fullmatch(high_text)):
            raise BadDescription(field, f"expected a range 'min..max', got {value!r}")
        low = core_bound(field, low_text, "min")
        high = core_bound(field, high_text, "max")
    elif isinstance(value, int | str) and not isinstance(value, bool):
        low = high = core_bound(field, value, "the number of cores")
    else:
        raise BadDescription(
            field,
            "expected a number of cores, a range 'min..max' or {'min': m, 'max': n}, "
            f"got {type_name(value)} {value!r}",
        )
    if high < low:
        raise BadDescription(field, f"max ({high}) must not be less than min ({low})")
    return low, high


def cores_value(field: str, value: Any) -> int | dict[str, int]:
    low, high = core_range(field, value)
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
    return core_range("cores", cores)
