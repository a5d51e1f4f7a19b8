"""Fuzzing what the agent reads from its queue (issue 17): a Job or a BadQueueItem, nothing else.

Queue items are whatever a writer of the coordination put there: random JSON
values, items with random envelopes and descriptions (the strategies of
test_fuzz_input.py, with what used to crash), and raw bytes that are not JSON
at all, through the file plugin's claim as the agent meets them.  The
profiles are test_fuzz_input.py's (``HYPOTHESIS_PROFILE=long`` for a long run).
"""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from troy import WorkUnitDescription
from troy.agent.control import Cancel, Terminate, control_request
from troy.agent.queue_items import MAX_ITEM_BYTES, MAX_REASON, BadQueueItem, to_job
from troy.agent.slots import Job
from troy.model import limits
from troy.plugins.coordination.file_format import item_ids, load_claimed

from .test_fuzz_input import NASTY, TEXT, VALUES, _clean, _fields

IDS = st.one_of(st.sampled_from(["wu-1.0", "wus-abc", "x", "a" * 200]), TEXT, VALUES)
DESCRIPTIONS = st.one_of(
    _fields(WorkUnitDescription),
    st.builds(lambda extra: {**extra, "executable": "/bin/true"}, _fields(WorkUnitDescription)),
    VALUES,
)
ITEMS = st.fixed_dictionaries(
    {},
    optional={
        "id": IDS,
        "service": IDS,
        "d": DESCRIPTIONS,
        "a": st.one_of(st.integers(-5, 10**7), st.sampled_from(NASTY), VALUES),
        "t": st.one_of(st.lists(st.dictionaries(TEXT, VALUES, max_size=3), max_size=3), VALUES),
        "bogus": VALUES,
    },
)


def check(item: Any) -> None:
    """``to_job(item)`` is a safe Job or a short, printable BadQueueItem."""
    try:
        job = to_job(item)
    except BadQueueItem as exc:
        message = str(exc)
        assert len(message) <= MAX_REASON + 250, message
        assert "\0" not in message
        message.encode("utf-8")  # no lone surrogate
        assert exc.reportable == (exc.unit_id is not None and exc.service is not None)
        return
    assert isinstance(job, Job)
    assert re.fullmatch(r"[A-Za-z0-9._-]{1,200}", job.id)
    assert re.fullmatch(r"[A-Za-z0-9._-]{1,200}", job.service)
    assert 1 <= job.cores <= max(job.cores, job.max_cores) <= limits.current().slots
    assert len(json.dumps({"d": job.description, "t": job.tries})) <= MAX_ITEM_BYTES
    _clean(job.description, "d")
    WorkUnitDescription(job.description).validate()  # what runs is what the API would accept


@given(ITEMS)
def test_a_queue_item_is_a_job_or_a_bad_queue_item(item: dict[str, Any]) -> None:
    check(item)


@given(VALUES)
def test_any_json_value_is_a_job_or_a_bad_queue_item(value: Any) -> None:
    check(value)


@given(
    st.lists(
        st.one_of(
            st.binary(max_size=40),
            st.builds(lambda item: json.dumps(item).encode(), ITEMS),
            st.sampled_from([b"", b"{", b"[[[[", b"\xff", b"NaN", b"1e999", b"[" * 5000]),
        ),
        max_size=5,
    )
)
def test_claimed_bytes_are_items_or_dropped_and_every_item_is_checked(lines: list[bytes]) -> None:
    """A bundle of any bytes, as the file plugin's claim reads it, then as the agent checks it."""
    lines = [line.replace(b"\n", b" ") for line in lines]
    values = load_claimed(lines, "fuzz.jsonl")
    assert len(values) <= len(lines)
    assert len(item_ids(lines, "fuzz.jsonl")) == len(lines)
    for value in values:
        check(value)


CONTROL = st.one_of(
    VALUES,
    st.fixed_dictionaries(
        {"ev": st.sampled_from(["cancel", "terminate", "other"])},
        optional={"units": st.one_of(st.lists(IDS, max_size=3), VALUES), "a": VALUES,
                  "reason": VALUES, "fate": VALUES},
    ),
)  # fmt: skip


@given(CONTROL)
def test_a_control_event_is_a_request_or_none(event: Any) -> None:
    request = control_request(event)
    if isinstance(request, Cancel):
        assert all(isinstance(unit, str) for unit in request.units)
    elif isinstance(request, Terminate):
        assert type(request.attempt) is int and request.attempt >= 0
        assert isinstance(request.reason, str) and "\0" not in request.reason
        request.reason.encode("utf-8")
    else:
        assert request is None


def test_items_that_once_crashed_the_agent_are_refused_with_a_reason() -> None:
    """Regressions: each of these raised (or hung) in the agent before it checked items."""
    cases: list[tuple[Any, str]] = [
        ([1, 2], "expected a JSON object"),
        ({"id": "u", "service": "s", "d": "x"}, "'d' must be"),
        ({"id": "u", "service": "s", "d": {"executable": "/bin/echo", "cores": "a..b"}}, "cores"),
        ({"id": "u", "service": "s", "d": {"executable": "x", "arguments": [10**400]}}, "argum"),
        ({"id": "u", "service": "s", "a": 10**400, "d": {"executable": "x"}}, "'a'"),
        ({"id": "u", "service": "s", "d": {"executable": "x", "\0" * 10_000: 1}}, "no attribute"),
        ({"id": "u", "service": "s", "d": {"executable": "x", "hints": _deep(5000)}}, "deep"),
    ]
    for item, words in cases:
        try:
            to_job(item)
        except BadQueueItem as exc:
            assert words in str(exc), (words, str(exc))
            assert len(str(exc)) <= MAX_REASON + 250
            assert "\0" not in str(exc)
        else:
            raise AssertionError(f"accepted {item!r:.80}")


def _deep(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"k": value}
    return value
