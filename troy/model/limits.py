"""Limits on what troy reads, so that a mistaken or hostile input is a clear error.

A batch file of ``count: 1000000000``, a YAML alias bomb or a sweep of 10**12
values would otherwise exhaust memory (or time) before anything says what is
wrong.  Each limit is generous for real work and can be changed with
``$TROY_LIMITS``, a comma-separated list of ``name=value``::

    TROY_LIMITS="units=5000000,yaml_values=2000000"

The error for an input over a limit names the field, the limit and how to
raise it.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from dataclasses import dataclass

from troy.model.errors import BadDescription


@dataclass(frozen=True)
class Limits:
    """The limits in force (see the module docstring)."""

    #: Bytes of one batch or workload file.
    file_bytes: int = 64 * 2**20
    #: Values one YAML/JSON document holds, counting each use of an alias again.
    yaml_values: int = 500_000
    #: Units one submit (or one batch file) makes, counts and sweeps expanded.
    units: int = 1_000_000
    #: Pilots one batch file starts.
    pilots: int = 1_000
    #: Slots (``number_of_processes``) of one pilot.
    slots: int = 65_536
    #: The largest number a description field holds (seconds, cores, megabytes...).
    number: int = 10**12

    def over(self, name: str, field: str, what: str) -> BadDescription:
        """The error for ``what`` (``"a sweep of 10**12 values"``) over the limit ``name``."""
        limit = getattr(self, name)
        return BadDescription(
            field,
            f"{what} is over the limit of {limit} {name.replace('_', ' ')}"
            f" (raise it with TROY_LIMITS={name}=N)",
        )


def current() -> Limits:
    """The limits: the defaults, changed by ``$TROY_LIMITS``; BadDescription names a bad one.

    Validators call it per value, so a setting is parsed once (cached by its text).
    """
    text = os.environ.get("TROY_LIMITS", "").strip()
    return _parse(text) if text else _DEFAULT


@functools.lru_cache(maxsize=8)
def _parse(text: str) -> Limits:
    names = [field.name for field in dataclasses.fields(Limits)]
    changes: dict[str, int] = {}
    for part in text.split(","):
        name, equals, value = part.strip().partition("=")
        name = name.strip()
        if name not in names:
            raise BadDescription(
                "TROY_LIMITS", f"unknown limit {name!r}; expected one of {', '.join(names)}"
            )
        digits = value.strip().replace("_", "")
        if not equals or not digits.isascii() or not digits.isdigit() or len(digits) > 18:
            raise BadDescription(f"TROY_LIMITS.{name}", f"expected a whole number, got {value!r}")
        changes[name] = int(digits)
    return dataclasses.replace(_DEFAULT, **changes)


_DEFAULT = Limits()
