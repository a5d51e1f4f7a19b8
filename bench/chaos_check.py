"""Check the history of one fault-injection trial (bench/chaos.py): troy-independent.

A trial's history is plain data (JSON), gathered after the run:

``expected``
    the batch file's unit indices (each unit is told its index as an argument).
``units``
    what coordination says of each unit, read by a fresh process through troy's
    API: ``{"id", "index", "state", "attempt", "tries": [{"a", "kind", "why"}],
    "history": [[state, ts], ...]}`` (None if it could not be read: then
    ``stuck`` says why).
``events``
    the raw state events of the run's work-unit service stream, as written by
    every writer (manager, agents): ``{"id", "s", "a", "ts"}``.
``log``
    the side-effect log the units themselves appended to: one line when a copy
    starts and one when it ends, ``{"ev": "start" | "end", "unit", "index",
    "pid", "st" (the process' start time in clock ticks, from /proc), "host",
    "mono", "wall"}``.
``procs``
    what the campaign saw of the trial's processes while polling /proc:
    ``{"<pid>:<st>": {"first", "last", "gone"}}`` (monotonic seconds; ``gone``
    is the first poll that no longer found it, None if it never went).
``leftovers``
    the trial's processes still alive after the run ended, its pilots were
    canceled and a grace period passed: ``[{"pid", "cmd"}]``.
``stuck``
    a reason if the run did not complete within the trial's bounds, else None.

What counts as a violation (each a kind in the campaign's summary):

``missing`` / ``duplicate``
    an index of the batch file with no unit, or with more than one.
``not_final``
    a unit not in a final state after the run completed: lost.
``not_done``
    a unit final but not Done, although it was lost fewer than MAX_LOSSES
    times (units here never fail on their own, so only losing it MAX_LOSSES
    times is a legitimate reason not to be Done).
``final_twice`` / ``done_twice``
    a unit whose API history holds two final states, or whose stream holds
    *effective* final events of two different attempts (both Done:
    ``done_twice``).  A final event is effective unless an event of a later
    attempt was written before it: a report of an old attempt written after the
    unit was placed again is stale and changes nothing (troy documents that);
    a Done written *before* the unit was placed again means troy ran a unit
    again that it had already recorded Done.
``done_without_run``
    a unit Done with no copy that both started and ended in the side-effect log.
``overlap``
    two copies of one unit running at the same time on one host.  A copy runs
    from its start line to its end line; a copy without an end line (killed)
    runs until the first poll that found its process gone (forever if it never
    went; the start instant if the campaign never saw it, i.e. it lived less
    than one poll).
``leftover``
    a process of the trial still alive after the run.
``stuck``
    the run did not complete (with resumes) within the trial's bounds.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

#: troy.model.retry.MAX_LOSSES: how often a unit may be lost before it is Failed.
MAX_LOSSES = 3
FINAL = ("Done", "Failed", "Canceled")
KINDS = (
    "missing",
    "duplicate",
    "not_final",
    "not_done",
    "final_twice",
    "done_twice",
    "done_without_run",
    "overlap",
    "leftover",
    "stuck",
)


@dataclass(frozen=True)
class Violation:
    kind: str
    what: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.what}"


@dataclass
class Copy:
    """One process that ran (a copy of) a unit, from the side-effect log."""

    unit: str
    index: int
    pid: int
    st: str
    host: str
    start: float
    end: float | None = None

    @property
    def key(self) -> str:
        return f"{self.pid}:{self.st}"


def parse_log(lines: Iterable[str]) -> list[Copy]:
    """The copies of units in a side-effect log (torn or foreign lines are skipped)."""
    copies: dict[str, Copy] = {}
    ends: dict[str, float] = {}
    for line in lines:
        try:
            entry = json.loads(line)
            key = f"{entry['pid']}:{entry['st']}"
            if entry["ev"] == "start":
                copies[key] = Copy(
                    str(entry["unit"]),
                    int(entry["index"]),
                    int(entry["pid"]),
                    str(entry["st"]),
                    str(entry["host"]),
                    float(entry["mono"]),
                )
            elif entry["ev"] == "end":
                ends[key] = float(entry["mono"])
        except (ValueError, KeyError, TypeError):
            continue
    for key, when in ends.items():
        if key in copies:
            copies[key].end = when
    return list(copies.values())


def _ran_until(copy: Copy, procs: dict[str, dict[str, Any]]) -> float:
    if copy.end is not None:
        return copy.end
    seen = procs.get(copy.key)
    if seen is None:
        return copy.start  # it lived less than one poll
    gone = seen.get("gone")
    return float("inf") if gone is None else float(gone)


def _effective_finals(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A unit's final events that were not stale when written (see the module doc)."""
    latest = -1
    effective = []
    for event in sorted(events, key=lambda e: float(e["ts"])):
        attempt = int(event.get("a", 0))
        if event["s"] in FINAL and attempt >= latest:
            effective.append(event)
        latest = max(latest, attempt)
    return effective


def check(history: dict[str, Any]) -> list[Violation]:
    """Every violation in one trial's history (an empty list: the trial was clean)."""
    found: list[Violation] = []
    if history.get("stuck"):
        found.append(Violation("stuck", str(history["stuck"])))
    units = history.get("units")
    if units is None:  # the run could not be read back: that is its violation (stuck)
        units = []
        history = {**history, "expected": []}
    by_index: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for unit in units:
        by_index[int(unit["index"])].append(unit)
    for index in history.get("expected") or []:
        if not by_index.get(index):
            found.append(Violation("missing", f"unit #{index} of the batch file has no record"))
        elif len(by_index[index]) > 1:
            ids = ", ".join(u["id"] for u in by_index[index])
            found.append(Violation("duplicate", f"unit #{index} was recorded as {ids}"))
    copies = parse_log(history.get("log") or [])
    procs: dict[str, dict[str, Any]] = history.get("procs") or {}
    complete = {c.unit for c in copies if c.end is not None}
    events_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in history.get("events") or []:
        events_of[event["id"]].append(event)
    for unit in units:
        name = f"{unit['id']} (#{unit['index']})"
        state = unit["state"]
        if state not in FINAL:
            found.append(Violation("not_final", f"{name} is {state} after the run"))
        elif state != "Done":
            losses = sum(1 for t in unit.get("tries") or [] if t.get("kind") == "lost")
            if losses < MAX_LOSSES:
                found.append(
                    Violation(
                        "not_done",
                        f"{name} is {state} (lost {losses} times): {unit.get('detail', '')}",
                    )
                )
        finals = [s for s, _ in unit.get("history") or [] if s in FINAL]
        if len(finals) > 1:
            found.append(Violation("final_twice", f"{name} history has {finals}"))
        effective = _effective_finals(events_of.get(unit["id"], []))
        attempts = sorted({int(e.get("a", 0)) for e in effective})
        if len(attempts) > 1:
            states = [f"{e['s']}@a{e.get('a', 0)}" for e in effective]
            done_twice = sum(1 for e in effective if e["s"] == "Done") > 1
            kind = "done_twice" if done_twice else "final_twice"
            found.append(Violation(kind, f"{name} was recorded final for attempts {states}"))
        if state == "Done" and unit["id"] not in complete:
            found.append(
                Violation("done_without_run", f"{name} is Done but no copy ran to its end")
            )
    by_place: dict[tuple[int, str], list[Copy]] = defaultdict(list)
    for copy in copies:
        by_place[(copy.index, copy.host)].append(copy)
    for (index, host), group in sorted(by_place.items()):
        group.sort(key=lambda c: c.start)
        for i, first in enumerate(group):
            first_end = _ran_until(first, procs)
            for second in group[i + 1 :]:
                if second.start < first_end:
                    found.append(
                        Violation(
                            "overlap",
                            f"unit #{index} ran twice at once on {host}: pid {first.pid}"
                            f" ({first.unit}, {first.start:.3f}-{first_end:.3f})"
                            f" and pid {second.pid} ({second.unit}, from {second.start:.3f})",
                        )
                    )
    for process in history.get("leftovers") or []:
        found.append(
            Violation("leftover", f"pid {process['pid']} still runs: {process.get('cmd', '')}")
        )
    return found


def count(violations: Iterable[Violation]) -> dict[str, int]:
    """Violations by kind."""
    counts: dict[str, int] = defaultdict(int)
    for violation in violations:
        counts[violation.kind] += 1
    return dict(counts)
