"""Work-unit description fields for workflows: names, dependencies and sweeps.

* ``name``: what other units' ``after`` call this unit (names may repeat:
  every unit of a sweep has its sweep's name);
* ``after``: the units this one waits for, each a unit id, a name (every unit
  of that name), or ``name:VALUE`` (one iteration of a sweep), or a mapping
  ``{"unit": ref, "regardless": true}`` to run even if that one fails or is
  canceled;
* ``iterations``: ``{"start": a, "stop": b, "step": s}`` (integers, ``stop``
  excluded, like ``range``) or a list of values; the unit is expanded into
  one unit per value (see troy.core.sweeps);
* ``iteration``: set by that expansion: this unit's value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from troy.model import limits
from troy.model.errors import BadDescription
from troy.model.validators import bounded_float, clean_text, in_range

#: Keys of an ``after`` item given as a mapping.
AFTER_KEYS = ("unit", "regardless")


def _kind(value: Any) -> str:
    return type(value).__name__


def _name(field: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadDescription(field, f"expected a non-empty string, got {_kind(value)} {value!r}")
    return clean_text(field, value)


def _after(field: str, value: Any) -> list[Any]:
    if isinstance(value, str):
        value = [value]  # one dependency may be given alone
    if not isinstance(value, list | tuple):
        raise BadDescription(field, f"expected a list of unit names or ids, got {_kind(value)}")
    items: list[Any] = []
    for index, item in enumerate(value):
        where = f"{field}[{index}]"
        if isinstance(item, Mapping):
            unknown = [key for key in item if key not in AFTER_KEYS]
            if unknown:
                raise BadDescription(
                    where, f"unknown key {unknown[0]!r}; expected unit, regardless"
                )
            regardless = item.get("regardless", False)
            if not isinstance(regardless, bool):
                raise BadDescription(
                    f"{where}.regardless", f"expected true or false, got {regardless!r}"
                )
            items.append(
                {"unit": _name(f"{where}.unit", item.get("unit")), "regardless": regardless}
            )
        else:
            items.append(_name(where, item))
    return items


def _integer(field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadDescription(field, f"expected an integer, got {_kind(value)} {value!r:.80}")
    return in_range(field, value)


def _value(field: str, value: Any) -> str | int | float:
    """One iteration's value: a string, an integer or a finite number."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise BadDescription(field, f"expected a string or number, got {_kind(value)}")
    if isinstance(value, str):
        return clean_text(field, value)
    if isinstance(value, float):
        return bounded_float(field, value)
    if isinstance(value, int):
        return in_range(field, value)
    return value


def _iterations(field: str, value: Any) -> Any:
    if isinstance(value, Mapping):
        unknown = [key for key in value if key not in ("start", "stop", "step")]
        if unknown:
            raise BadDescription(field, f"unknown key {unknown[0]!r}; expected start, stop, step")
        if "stop" not in value:
            raise BadDescription(field, "a range of iterations needs 'stop' (start: 0, step: 1)")
        start = _integer(f"{field}.start", value.get("start", 0))
        stop = _integer(f"{field}.stop", value["stop"])
        step = _integer(f"{field}.step", value.get("step", 1))
        if step == 0:
            raise BadDescription(f"{field}.step", "must not be 0")
        values = range(start, stop, step)
        if not values:
            raise BadDescription(field, f"range({start}, {stop}, {step}) has no values")
        if len(values) > limits.current().units:
            raise limits.current().over("units", field, f"a sweep of {len(values)} values")
        return {"start": start, "stop": stop, "step": step}
    if isinstance(value, list | tuple):
        if not value:
            raise BadDescription(field, "an empty list of values makes no units")
        if len(value) > limits.current().units:
            raise limits.current().over("units", field, f"a sweep of {len(value)} values")
        value = [_value(f"{field}[{index}]", item) for index, item in enumerate(value)]
        if len({str(item) for item in value}) != len(value):
            raise BadDescription(field, "values must differ (each names one iteration)")
        return list(value)
    raise BadDescription(
        field, f"expected {{start, stop, step}} or a list of values, got {_kind(value)}"
    )


def _iteration(field: str, value: Any) -> str | int | float:
    return _value(field, value)


WORKFLOW_FIELDS: dict[str, Callable[[str, Any], Any]] = {
    "name": _name,
    "after": _after,
    "iterations": _iterations,
    "iteration": _iteration,
}
