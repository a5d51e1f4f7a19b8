"""Typed reading of a workload file's values, each problem a BadWorkload at file:line:field."""

from __future__ import annotations

import math
from typing import Any

from troy.model.documents import Document, Location, closest, field_name, kind
from troy.model.errors import BadDescription, BadWorkload
from troy.model.validators import json_object

#: The most units (per entry and in all) and pilots a workload may have.
MAX_COUNT = 10_000_000
#: The largest data unit, in MB (1 MB = 10**6 bytes).
MAX_SIZE_MB = 1_000_000.0


class Fields:
    """Reads values of one parsed workload file, failing with the line and field of a bad one."""

    def __init__(self, name: str, document: Document) -> None:
        self.name = name
        self.document = document

    def fail(self, location: Location, message: str) -> BadWorkload:
        """The error for a problem at `location` (its line, or its nearest parent's)."""
        return BadWorkload(
            self.name, self.document.line(location), field_name(location) or None, message
        )

    def mapping(self, location: Location, value: Any, what: str = "a mapping") -> dict[Any, Any]:
        """`value` if it is a mapping."""
        if not isinstance(value, dict):
            raise self.fail(location, f"expected {what}, got {kind(value)}")
        return value

    def keys(
        self,
        location: Location,
        entry: dict[Any, Any],
        allowed: tuple[str, ...],
        required: tuple[str, ...] = (),
        what: str = "",
    ) -> None:
        """Every key of `entry` is allowed (else: did you mean), and the required ones are there."""
        for key in entry:
            if key not in allowed:
                hint = closest(str(key), allowed)
                known = f"did you mean '{hint}'?" if hint else f"expected {', '.join(allowed)}"
                raise self.fail((*location, key), f"unknown key '{key}'{what}; {known}")
        for key in required:
            if key not in entry:
                raise self.fail((*location, key), f"missing '{key}'{what}")

    def text(self, location: Location, value: Any) -> str:
        """`value` if it is a non-empty string."""
        if not isinstance(value, str) or not value.strip():
            raise self.fail(location, f"expected a non-empty string, got {kind(value)}")
        return value

    def integer(
        self, location: Location, value: Any, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        """`value` if it is an integer within the bounds."""
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(location, f"expected an integer, got {kind(value)}")
        if minimum is not None and value < minimum:
            raise self.fail(location, f"expected an integer >= {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise self.fail(location, f"at most {maximum:,} allowed, got {value:,}")
        return value

    def number(
        self,
        location: Location,
        value: Any,
        minimum: float | None = None,
        above: float | None = None,
        maximum: float | None = None,
    ) -> float:
        """`value` as a float if it is a finite number >= minimum, > above and <= maximum."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(location, f"expected a number, got {kind(value)}")
        number = float(value)
        if not math.isfinite(number):
            raise self.fail(location, f"expected a finite number, got {value!r}")
        if minimum is not None and number < minimum:
            raise self.fail(location, f"expected a number >= {minimum:g}, got {value!r}")
        if above is not None and number <= above:
            raise self.fail(location, f"expected a number > {above:g}, got {value!r}")
        if maximum is not None and number > maximum:
            raise self.fail(location, f"expected a number <= {maximum:g}, got {value!r}")
        return number

    def labels(self, location: Location, value: Any) -> tuple[str | None, str | None]:
        """(machine, datacenter) of a ``labels: {machine, datacenter}`` mapping."""
        labels = self.mapping(location, value, "a mapping with 'machine' and/or 'datacenter'")
        self.keys(location, labels, ("machine", "datacenter"))
        machine = labels.get("machine")
        datacenter = labels.get("datacenter")
        return (
            None if machine is None else self.text((*location, "machine"), machine),
            None if datacenter is None else self.text((*location, "datacenter"), datacenter),
        )

    def json_object(self, location: Location, value: Any) -> dict[str, Any]:
        """`value` if it is a mapping of JSON values (hints)."""
        try:
            return json_object("", value)
        except BadDescription as exc:
            place: Location = location
            for part in exc.field.strip(".").split(".") if exc.field else ():
                place = (*place, part)
            message = str(exc).partition(": ")[2]
            raise self.fail(place, message) from None
