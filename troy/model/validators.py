"""Validators of single description values: each takes (field, value), returns the stored form.

A validator raises BadDescription naming the field; it never sees the rest
of the description (what depends on several fields is `validate()`'s).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from troy.model import limits, secrets
from troy.model.errors import BadDescription

_INTEGER = re.compile(r"-?[0-9]{1,18}")
#: Host names, IPv4 and IPv6 addresses (with a zone), and user names that ssh may be given.
_SSH_HOST = re.compile(r"[A-Za-z0-9_:][A-Za-z0-9_.:%-]*")
_SSH_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")

#: A validator: (field name, value) -> the value as stored; BadDescription if it is wrong.
Validator = Callable[[str, Any], Any]


def type_name(value: Any) -> str:
    return type(value).__name__


def clean_text(field: str, value: str) -> str:
    """``value`` if a process can take it and UTF-8 can hold it: no NUL, no lone surrogate."""
    if "\0" in value:
        raise BadDescription(field, f"must not contain a NUL character: {value!r:.80}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        message = f"is not valid Unicode (a lone surrogate): {value!r:.80}"
        raise BadDescription(field, message) from None
    return value


def ssh_name_problem(host: str | None, user: str | None = None) -> str | None:
    """Why ``host`` or ``user`` may not go on an ssh command line; None if they may.

    Some command lines are split at blanks (radical.saga), and ssh itself hands
    the host to a shell in a ``ProxyCommand`` (``%h``; OpenSSH before 9.6 does
    not check it): only the characters of host names, addresses and user names
    may pass, and neither may start with ``-`` (an option).
    """
    for what, name in (("host", host), ("user", user)):
        if name is not None and name.startswith("-"):
            return f"the {what} {name!r:.80} starts with '-' (ssh would take it for an option)"
    if host is not None and not _SSH_HOST.fullmatch(host):
        return f"the host {host!r:.80} holds characters a host name does not"
    if user is not None and not _SSH_USER.fullmatch(user):
        return f"the user {user!r:.80} holds characters other than letters, digits and ._-"
    return None


def string(field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise BadDescription(field, f"expected a string, got {type_name(value)} {value!r}")
    return clean_text(field, value)


def nonempty_string(field: str, value: Any) -> str:
    text = string(field, value)
    if not text.strip():
        raise BadDescription(field, "must not be empty")
    return text


def boolean(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise BadDescription(field, f"expected true or false, got {type_name(value)} {value!r}")
    return value


def integer(field: str, value: Any, minimum: int) -> int:
    is_int = isinstance(value, int) and not isinstance(value, bool)
    # BigJob descriptions often carry "4" for 4 (ASCII digits only: int() takes others).
    if not is_int and not (isinstance(value, str) and _INTEGER.fullmatch(value.strip())):
        raise BadDescription(field, f"expected an integer, got {type_name(value)} {value!r:.80}")
    number = int(value)
    if number < minimum:
        raise BadDescription(field, f"must be at least {minimum}, got {number}")
    return in_range(field, number)


def bounded_float(field: str, value: float) -> float:
    """``value`` if it is finite and within the limit for numbers."""
    if not math.isfinite(value):
        raise BadDescription(field, f"expected a finite number, got {value}")
    bound = limits.current().number
    if abs(value) > bound:
        raise BadDescription(
            field, f"{value} is out of range (at most {bound}; raise it with TROY_LIMITS=number=N)"
        )
    return value


def in_range(field: str, number: int) -> int:
    """``number`` if it is within the limit for numbers (`troy.model.limits`)."""
    bound = limits.current().number
    if abs(number) > bound:
        shown = str(number) if abs(number) < 10**30 else f"a number of {len(str(number))} digits"
        raise BadDescription(
            field, f"{shown} is out of range (at most {bound}; raise it with TROY_LIMITS=number=N)"
        )
    return number


def positive_int(field: str, value: Any) -> int:
    return integer(field, value, 1)


def slot_count(field: str, value: Any) -> int:
    """A count of processes, cores or slots: at least 1, at most the slots limit."""
    count = integer(field, value, 1)
    bound = limits.current()
    if count > bound.slots:
        raise bound.over("slots", field, f"a count of {count}")
    return count


def non_negative_int(field: str, value: Any) -> int:
    return integer(field, value, 0)


def number(field: str, value: Any, positive: bool) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadDescription(field, f"expected a number, got {type_name(value)} {value!r}")
    if isinstance(value, int):
        in_range(field, value)  # before any float(): a huge int cannot be one
    elif math.isfinite(value) and abs(value) > limits.current().number:
        in_range(field, int(value))
    if math.isnan(value) or math.isinf(value):
        raise BadDescription(field, f"must be a finite number, got {value}")
    if value < 0 or (positive and value == 0):
        raise BadDescription(
            field, f"must be {'positive' if positive else 'at least 0'}, got {value}"
        )
    return value


def positive_number(field: str, value: Any) -> float | int:
    return number(field, value, positive=True)


def non_negative_number(field: str, value: Any) -> float | int:
    return number(field, value, positive=False)


def string_list(field: str, value: Any) -> list[str]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise BadDescription(field, f"expected a list of strings, got {type_name(value)} {value!r}")
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise BadDescription(
                f"{field}[{index}]", f"expected a string, got {type_name(item)} {item!r}"
            )
        clean_text(f"{field}[{index}]", item)
    return list(value)


def arguments(field: str, value: Any) -> list[str]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise BadDescription(
            field, f"expected a list of arguments, got {type_name(value)} {value!r}"
        )
    arguments: list[str] = []
    for index, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise BadDescription(
                f"{field}[{index}]",
                f"expected a string or number, got {type_name(item)} {item!r}",
            )
        if isinstance(item, float):
            bounded_float(f"{field}[{index}]", item)
        elif isinstance(item, int):
            in_range(f"{field}[{index}]", item)
        arguments.append(clean_text(f"{field}[{index}]", str(item)))
    # BigJob wrote ``"arguments": [""]`` for "no arguments" (it joined them into a
    # shell command line, where an empty word vanished); keep those descriptions working.
    return [] if arguments == [""] else arguments


def environment(field: str, given: Any) -> dict[str, str]:
    if isinstance(given, Mapping):
        items = list(given.items())
    elif isinstance(given, list | tuple):
        items = []
        for index, entry in enumerate(given):
            if not isinstance(entry, str) or "=" not in entry:
                raise BadDescription(
                    f"{field}[{index}]", f"expected a 'NAME=value' string, got {entry!r}"
                )
            name, _, setting = entry.partition("=")
            items.append((name, setting))
    else:
        raise BadDescription(
            field,
            f"expected a mapping or a list of 'NAME=value' strings, got {type_name(given)}",
        )
    environment: dict[str, str] = {}
    for name, value in items:
        if not isinstance(name, str) or not name or "=" in name:
            raise BadDescription(field, f"bad variable name {name!r}")
        clean_text(field, name)
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise BadDescription(f"{field}.{name}", f"expected a string, got {type_name(value)}")
        environment[name] = clean_text(f"{field}.{name}", str(value))
    return environment


def start_time(field: str, value: Any) -> float | int | str:
    if isinstance(value, str):
        return clean_text(field, value)
    return non_negative_number(field, value)


def public_data_url(url: str) -> str:
    """A data-unit URL (``<coordination URL>#<id>``) without the secrets of its coordination part.

    Descriptions are recorded and shown, so a password in such a URL is taken out
    (troy.model.secrets.split_url remembers it to scrub); the agent resolves the
    public URL of its own coordination with the secrets it was given.
    """
    coordination, hash_sign, unit_id = url.rpartition("#")
    if not hash_sign or not coordination:
        return url
    try:
        public = secrets.split_url(coordination)[0]
    except ValueError:  # not a URL at all: the agent will say so
        return url
    return f"{public}#{unit_id}"


def input_data(field: str, value: Any) -> list[Any]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise BadDescription(field, f"expected a list of data-unit URLs, got {type_name(value)}")
    result: list[Any] = []
    for index, item in enumerate(value):
        if not isinstance(item, str | Mapping):
            raise BadDescription(
                f"{field}[{index}]", f"expected a data-unit URL, got {type_name(item)} {item!r}"
            )
        if isinstance(item, str):
            result.append(public_data_url(clean_text(f"{field}[{index}]", item)))
        else:
            result.append(
                {
                    (public_data_url(url) if isinstance(url, str) else url): globs
                    for url, globs in item.items()
                }
            )
    return result


def output_data(field: str, value: Any) -> list[dict[str, list[str]]]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise BadDescription(
            field, f"expected a list of {{data-unit URL: [globs]}}, got {type_name(value)}"
        )
    result: list[dict[str, list[str]]] = []
    for index, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise BadDescription(
                f"{field}[{index}]", f"expected {{data-unit URL: [globs]}}, got {item!r}"
            )
        entry: dict[str, list[str]] = {}
        for url, globs in item.items():
            entry[public_data_url(string(f"{field}[{index}]", url))] = string_list(
                f"{field}[{index}][{secrets.redact_url(str(url))!r}]", globs
            )
        result.append(entry)
    return result


def json_object(field: str, value: Any) -> dict[str, Any]:
    """A mapping with string keys whose values JSON can hold (a copy)."""
    if not isinstance(value, Mapping):
        raise BadDescription(field, f"expected a mapping, got {type_name(value)} {value!r}")
    result: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise BadDescription(field, f"keys must be strings, got {type_name(key)} {key!r}")
        clean_text(field, key)
        result[key] = _json_value(f"{field}.{key}", item)
    return result


def _json_value(field: str, value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(field, value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return in_range(field, value)
    if isinstance(value, float):
        return bounded_float(field, value)
    if isinstance(value, Mapping):
        return json_object(field, value)
    if isinstance(value, list | tuple):
        return [_json_value(f"{field}[{index}]", item) for index, item in enumerate(value)]
    raise BadDescription(field, f"expected a JSON value, got {type_name(value)} {value!r}")
