"""Fuzzing troy's input parsers (issue 17): any input is a result or a troy error.

Descriptions through the API and batch files (as data and as raw text) get
random values of every JSON type, including the kinds that used to crash:
huge integers, NaN and infinities, NUL characters, lone surrogates, non-ASCII
digits, deep nesting.  The only exceptions allowed are troy's own
(BadDescription, BadBatchFile, ...); anything else is a crasher and becomes a
regression test.

The CI run is bounded (``max_examples`` per test, the ``ci`` profile); for a
long run: ``HYPOTHESIS_PROFILE=long pytest tests/unit/test_fuzz_input.py``.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from troy import BadBatchFile, PilotJobDescription, TroyError, WorkUnitDescription
from troy.cli.batchfile import load_batch_file
from troy.core import sweeps

settings.register_profile(
    "ci", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "medium", max_examples=2_000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "long", max_examples=20_000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

#: Text with what used to crash: NUL, lone surrogates, non-ASCII digits, shell characters.
TEXT = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["", " ", "\0", "\ud800", "²", "٣", "1e3", "-5", "4", "../../x", "$(x)", "~"]),
)
NUMBERS = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, -1, 10**12, 10**13, 2**63, 1e300]),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=12,
)


#: Values that crashed troy once (or would, in some field), tried in every field.
NASTY: list[Any] = [
    "\0", "a\0b", "\ud800", "²", "٣", "1e3", "-5", "", " ", "../../x", "http://[::1",
    float("nan"), float("inf"), -float("inf"), 1e300, 10**13, -(10**13), 10**400, 2**63,
    [float("nan")], ["\0"], {"A": "\0"}, {"\0": "x"}, {"stop": 10**12}, {"stop": float("nan")},
    {"start": 0, "stop": 10**30}, [[[[[]]]]], {"a": {"b": {"c": "\ud800"}}}, True, None,
]  # fmt: skip


def _fields(kind: type[Any]) -> st.SearchStrategy[dict[str, Any]]:
    names = st.sampled_from([*kind.field_names(), "count", "cores", "bogus"])
    return st.dictionaries(names, st.one_of(st.sampled_from(NASTY), VALUES), max_size=6)


def _clean(value: Any, where: str) -> None:
    """What a description accepted is safe to record and hand to a process."""
    if isinstance(value, str):
        assert "\0" not in value, where
        value.encode("utf-8")  # no lone surrogate
    elif isinstance(value, float):
        assert math.isfinite(value) and abs(value) <= 10**12, where
    elif isinstance(value, int) and not isinstance(value, bool):
        assert abs(value) <= 10**12, where
    elif isinstance(value, dict):
        for key, item in value.items():
            _clean(key, where)
            _clean(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _clean(item, f"{where}[{index}]")


@pytest.mark.parametrize("kind", [WorkUnitDescription, PilotJobDescription])
def test_every_field_takes_every_nasty_value_or_refuses_it(kind: type[Any]) -> None:
    """Deterministic: each field x each value that once crashed (a grid, not a sample)."""
    for name in kind.field_names():
        for value in NASTY:
            try:
                description = kind({"executable": "/bin/true", name: value})
                description.validate()
            except TroyError:
                continue
            _clean(description.as_dict(), name)


@given(_fields(WorkUnitDescription))
def test_a_unit_description_is_valid_or_a_troy_error(values: dict[str, Any]) -> None:
    try:
        description = WorkUnitDescription(values)
        description.validate()
        json.dumps(description.as_dict())  # what is accepted can be recorded
        _clean(description.as_dict(), "unit")
        if description.get("iterations") is not None:
            assert sweeps.size_of(description.get("iterations")) >= 1
    except TroyError:
        pass


@given(_fields(PilotJobDescription))
def test_a_pilot_description_is_valid_or_a_troy_error(values: dict[str, Any]) -> None:
    try:
        description = PilotJobDescription(values)
        description.validate()
        json.dumps(description.as_dict())
        _clean(description.as_dict(), "pilot")
    except TroyError:
        pass


def _load(text: str, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory, f"run{suffix}")
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            batch = load_batch_file(path)
        except BadBatchFile:
            return
        assert batch.pilots and batch.units
        assert batch.unit_count >= 1


PILOT = st.fixed_dictionaries({"resource": st.one_of(TEXT, st.just("fork://localhost"))})
UNIT = st.fixed_dictionaries({"executable": st.one_of(TEXT, st.just("/bin/true"))})


@given(
    st.fixed_dictionaries(
        {
            "pilots": st.lists(
                st.builds(
                    lambda base, extra: {**extra, **base}, PILOT, _fields(PilotJobDescription)
                ),
                max_size=3,
            ),
            "units": st.lists(
                st.builds(
                    lambda base, extra: {**extra, **base}, UNIT, _fields(WorkUnitDescription)
                ),
                max_size=3,
            ),
        },
        optional={"scheduler": VALUES, "coordination": VALUES, "bogus": VALUES},
    )
)
@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_a_batch_file_is_valid_or_a_bad_batch_file(data: dict[str, Any]) -> None:
    # JSON escapes surrogates and NUL (\ud800, \u0000): the parser meets them as such.
    _load(json.dumps(data), ".json")
    _load(json.dumps(data), ".yaml")


@given(
    st.text(
        alphabet=st.sampled_from(list("ab01:-[]{}&*!|>'\"\n #,.?%@`\t\0\ud800²")),
        max_size=80,
    )
)
def test_any_text_is_a_batch_file_or_a_bad_batch_file(text: str) -> None:
    _load(text, ".yaml")
