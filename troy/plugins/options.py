"""Options a plugin declares, of any kind: name -> `Option`, checked before anything starts.

Every contract has ``option_specs: ClassVar[Mapping[str, Option]]`` (empty: the
plugin takes no options) and a class method ``check_options`` that checks what
a user gave: an unknown option, or a value its check refuses, is a
BadDescription naming the plugin and the option (with a did-you-mean hint for
a near miss).  Where the user gives them depends on the kind (docs/plugins.md,
"Options"): ``scheduler_options`` for schedulers, the URL's query for
coordination and backends, the Pilot-Data description and its URL's query for
stores.  Values from a URL are text: their checks take text (``number(text=True)``).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from troy.model.errors import BadDescription


@dataclass(frozen=True, slots=True)
class Option:
    """One option a plugin takes: its default, what it means, what values it accepts.

    ``check`` gets the value given and returns it as the plugin uses it; it
    raises ValueError or TypeError with a message for a value it refuses.
    ``accepts`` says in words what it takes (shown by ``troy plugins --describe``);
    without it, the check's own ``accepts`` (the ready-made checks below have one).
    ``in_url`` (stores only) marks an option given in the store URL's query
    rather than in the Pilot-Data description.  ``secret`` marks a value that
    must never be shown, recorded or put on a command line (troy.model.secrets).
    """

    default: Any
    help: str
    check: Callable[[Any], Any] | None = None
    accepts: str = ""
    in_url: bool = False
    secret: bool = False


class Check:
    """A ready-made Option check: called with a value, and says what it accepts in ``accepts``."""

    __slots__ = ("_function", "accepts")

    def __init__(self, accepts: str, function: Callable[[Any], Any]) -> None:
        self.accepts = accepts
        self._function = function

    def __call__(self, value: Any) -> Any:
        return self._function(value)

    def __repr__(self) -> str:
        return f"Check({self.accepts!r})"


def choice(*allowed: str, ignore_case: bool = False) -> Check:
    """An Option check that accepts one of ``allowed`` strings (lowercased with ``ignore_case``)."""
    listed = ", ".join(map(repr, allowed))

    def check(value: Any) -> Any:
        chosen = value.lower() if ignore_case and isinstance(value, str) else value
        if chosen not in allowed:
            raise ValueError(f"expected one of {listed}, got {value!r}")
        return chosen

    return Check(f"one of {listed}", check)


def number(
    minimum: float = 0.0, maximum: float | None = None, *, whole: bool = False, text: bool = False
) -> Check:
    """An Option check that accepts a number of at least ``minimum`` (and at most ``maximum``).

    ``whole``: only whole numbers.  ``text``: also its decimal text, as a URL's
    query gives it (then finite only); the check returns the number.
    """
    noun = "a whole number" if whole else "a number"
    bounds = f"at least {minimum:g}" + ("" if maximum is None else f" and at most {maximum:g}")

    def check(value: Any) -> Any:
        if text and isinstance(value, str):
            try:
                parsed = float(value)
            except ValueError:
                raise ValueError(f"expected {noun}, got {value!r}") from None
            if not math.isfinite(parsed):
                raise ValueError(f"expected a finite number, got {value!r}")
            if whole and not parsed.is_integer():
                raise ValueError(f"expected {noun}, got {value!r}")
            value = int(parsed) if whole else parsed
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"expected {noun}, got {type(value).__name__} {value!r}")
        if whole and not isinstance(value, int):
            raise TypeError(f"expected {noun}, got {type(value).__name__} {value!r}")
        if value < minimum or (maximum is not None and value > maximum):
            raise ValueError(f"expected {bounds}, got {value!r}")
        return value

    return Check(f"{noun}, {bounds}", check)


def text() -> Check:
    """An Option check that accepts a non-empty string."""

    def check(value: Any) -> Any:
        if not isinstance(value, str):
            raise TypeError(f"expected text, got {type(value).__name__} {value!r}")
        if not value.strip():
            raise ValueError("expected a non-empty text, got ''")
        return value

    return Check("text", check)


def accepts(option: Option) -> str:
    """What ``option`` accepts, in words: its ``accepts``, else its check's, else "any value"."""
    if option.accepts:
        return option.accepts
    described = getattr(option.check, "accepts", None)
    if isinstance(described, str) and described:
        return described
    return "any value"


def url_options(url: str) -> dict[str, str]:
    """The query parameters of ``url`` as options; BadDescription for one given twice.

    A plain path (no scheme) has none: ``?`` may be part of a file name.
    """
    parts = urlsplit(url)
    if not parts.scheme:
        return {}
    given: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in given:
            raise BadDescription(f"?{name}", f"the URL gives {name}= more than once")
        given[name] = value
    return given


def check_options(
    kind: str,
    plugin: str,
    specs: Mapping[str, Option],
    given: Mapping[str, Any],
    field: str = "",
) -> dict[str, Any]:
    """Every option of ``specs`` as used (``given`` checked, defaults filled in).

    BadDescription, whose field is ``field`` + the option's name, for an option
    not in ``specs`` (naming the plugin, its options and the nearest one) or a
    value its check refuses (naming the plugin and the check's complaint).
    """
    for name in given:
        if name not in specs:
            raise BadDescription(f"{field}{name}", unknown_option(kind, plugin, str(name), specs))
    checked: dict[str, Any] = {}
    for name, spec in specs.items():
        value = given.get(name, spec.default)
        if name in given and spec.check is not None:
            try:
                value = spec.check(value)
            except (TypeError, ValueError) as exc:
                raise BadDescription(f"{field}{name}", f"{kind} '{plugin}': {exc}") from None
        checked[name] = value
    return checked


def unknown_option(kind: str, plugin: str, name: str, specs: Mapping[str, Option]) -> str:
    """The message for an option ``plugin`` does not take: its options, and the nearest one."""
    known = sorted(specs)
    message = f"{kind} '{plugin}' has no option {name!r}; " + (
        f"its options: {', '.join(known)}" if known else "it takes none"
    )
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        message += f"; did you mean {close[0]!r}?"
    return message
