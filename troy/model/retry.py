"""When a unit runs again: after its own failure (``retries``) or when its pilot lost it.

A unit's ``tries`` is the list of its earlier attempts that did not count:
``{"a": attempt, "kind": "failed" | "lost", "why": reason}``.  A unit that
*failed* (non-zero exit, killed, could not start) runs again while fewer than
``retries`` of its attempts failed.  A unit that was *lost* (its agent
vanished, or the pilot's wall time cut it off) runs again on another pilot
up to MAX_LOSSES times whatever ``retries`` says: losing a unit is not the
unit's fault.  Both the agent (for failures it sees) and the manager (for
agents that vanished) decide with these functions, so they agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: How often a unit may be lost by its pilots before it is Failed.
MAX_LOSSES = 3

Try = dict[str, Any]


def again(tries: Sequence[Try], kind: str, retries: int | None) -> bool:
    """True if a unit with these earlier ``tries`` may run again after one more of ``kind``."""
    count = sum(1 for entry in tries if entry.get("kind") == kind)
    limit = MAX_LOSSES if kind == "lost" else int(retries or 0)
    return count < limit


def record(tries: Sequence[Try], attempt: int, kind: str, why: str) -> list[Try]:
    """``tries`` with one more entry."""
    return [*tries, {"a": attempt, "kind": kind, "why": why}]


def requeue_detail(tries: Sequence[Try], kind: str, why: str, retries: int | None) -> str:
    """state_detail of a unit that goes back to be placed again."""
    if kind == "lost":
        losses = sum(1 for entry in tries if entry.get("kind") == "lost") + 1
        return f"{why}; placed again (lost {losses} of at most {MAX_LOSSES} times)"
    failures = sum(1 for entry in tries if entry.get("kind") == "failed") + 1
    return f"{why}; runs again (retry {failures} of {int(retries or 0)})"


def final_detail(tries: Sequence[Try], why: str) -> str:
    """state_detail of a unit's final state, with the history of its earlier attempts."""
    if not tries:
        return why
    earlier = "; ".join(f"attempt {entry['a'] + 1}: {entry['why']}" for entry in tries)
    return f"{why} (earlier: {earlier})"
