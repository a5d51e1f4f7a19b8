"""How recorded state events move a pilot or unit forward, whatever order they arrive in.

Events from different writers (manager, agents) can be read out of order, and
the same event is read again by the process that wrote it.  A transition is
taken only if it moves forward: a later attempt, or a later state within the
same attempt.  A final state is final: the first one recorded wins, so a unit
is Done (or Failed, or Canceled) at most once.
"""

from __future__ import annotations

from typing import Any

from troy.core.tracked import Change, Tracked
from troy.model.states import STATE_RANK, State


def steps(event: dict[str, Any]) -> list[tuple[State, float, str | None]]:
    """The transitions (state, time, detail) one recorded unit event stands for, in order.

    Agents write a unit that ended before its start was reported as one event
    with the start time in "run": it stands for Running, then the final state.
    """
    final = (State(event["s"]), event["ts"], event.get("detail"))
    if "run" in event:
        return [(State.Running, event["run"], None), final]
    return [final]


def advance(
    obj: Tracked, state: State, attempt: int, ts: float, detail: str | None
) -> list[Change] | None:
    """Apply one state event to ``obj``: None if it is stale, else the changes it made.

    An accepted event may change nothing visible (a unit placed again is
    Pending again, on another pilot), so callers update the event's other
    fields whenever the result is not None.
    """
    if obj.state.is_final:
        return None
    if (attempt, STATE_RANK[state]) <= (obj.attempt, STATE_RANK[obj.state]):
        return None
    changes: list[Change] = []
    obj.attempt = attempt
    if state != obj.state:
        obj.state = state
        obj.history.append((state, ts))
        changes.append((obj, "state", state, ts))
    new_detail = detail or ""
    if new_detail != obj.state_detail:
        obj.state_detail = new_detail
        changes.append((obj, "state_detail", new_detail, ts))
    return changes


class Unwatched:
    """The callback side of `Tracked` for an object nobody watches: nothing to run or settle."""

    state: State

    def _fire(self, member: str, value: Any) -> None:
        pass

    def _settle(self) -> bool:
        return True

    def _unsettle(self) -> None:
        pass

    def _is_settled(self) -> bool:
        return self.state.is_final


class Replayed(Unwatched):
    """A unit or pilot replayed from its recorded events by `advance`, outside any manager
    (compaction and the read-only views use it)."""

    def __init__(self, ident: str) -> None:
        self.id = ident
        self.state = State.New
        self.state_detail = ""
        self.history: list[tuple[State, float]] = []
        self.attempt = 0
