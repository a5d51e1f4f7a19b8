"""Validators of single description values: each takes (field, value), returns the stored form.

A validator raises BadDescription naming the field; it never sees the rest
of the description (what depends on several fields is `validate()`'s).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from troy.model.errors import BadDescription

#: A validator: (field name, value) -> the value as stored; BadDescription if it is wrong.
Validator = Callable[[str, Any], Any]


def type_name(value: Any) -> str:
    return type(value).__name__


def string(field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise BadDescription(field, f"expected a string, got {type_name(value)} {value!r}")
    return value


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
    # BigJob descriptions often carry "4" for 4.
    if not is_int and not (isinstance(value, str) and value.strip().lstrip("-").isdigit()):
        raise BadDescription(field, f"expected an integer, got {type_name(value)} {value!r}")
    number = int(value)
    if number < minimum:
        raise BadDescription(field, f"must be at least {minimum}, got {number}")
    return number


def positive_int(field: str, value: Any) -> int:
    return integer(field, value, 1)


def non_negative_int(field: str, value: Any) -> int:
    return integer(field, value, 0)


def number(field: str, value: Any, positive: bool) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadDescription(field, f"expected a number, got {type_name(value)} {value!r}")
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
        arguments.append(str(item))
    # BigJob wrote ``"arguments": [""]`` for "no arguments" (it joined them into a
    # shell command line, where an empty word vanished); keep those descriptions working.
    return [] if arguments == [""] else arguments


def environment(field: str, value: Any) -> dict[str, str]:
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
            f"expected a mapping or a list of 'NAME=value' strings, got {type_name(value)}",
        )
    environment: dict[str, str] = {}
    for name, text in items:
        if not isinstance(name, str) or not name or "=" in name:
            raise BadDescription(field, f"bad variable name {name!r}")
        if isinstance(text, bool) or not isinstance(text, str | int | float):
            raise BadDescription(f"{field}.{name}", f"expected a string, got {type_name(text)}")
        environment[name] = str(text)
    return environment


def start_time(field: str, value: Any) -> float | int | str:
    if isinstance(value, str):
        return value
    return non_negative_number(field, value)


def input_data(field: str, value: Any) -> list[Any]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise BadDescription(field, f"expected a list of data-unit URLs, got {type_name(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, str | Mapping):
            raise BadDescription(
                f"{field}[{index}]", f"expected a data-unit URL, got {type_name(item)} {item!r}"
            )
    return list(value)


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
            entry[string(f"{field}[{index}]", url)] = string_list(
                f"{field}[{index}][{url!r}]", globs
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
        result[key] = _json_value(f"{field}.{key}", item)
    return result


def _json_value(field: str, value: Any) -> Any:
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise BadDescription(field, f"expected a finite number, got {value!r}")
        return value
    if isinstance(value, Mapping):
        return json_object(field, value)
    if isinstance(value, list | tuple):
        return [_json_value(f"{field}[{index}]", item) for index, item in enumerate(value)]
    raise BadDescription(field, f"expected a JSON value, got {type_name(value)} {value!r}")
