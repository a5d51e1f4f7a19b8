"""Compaction of a finished work-unit service: its stream folded to what a replay needs.

A service's stream holds every event ever written about it: each unit's
submission, every state event the manager and agents wrote, read again by
whoever reconnects.  Once every unit is final, most of it is dead weight.
`compact_unit_service` replaces the stream (coordination contract 1.2,
``compact``) by a summary that a reader applying it from the start ends in the
same state with, and compacts the streams of the pilots that ended.

The summary keeps, in the order written:

- every ``add``/``remove`` (pilot-job services attached and detached) and any
  event of a kind it does not know, as they were;
- per unit, its ``unit`` event (description, submission time) with the first
  state event that moved it embedded as ``"state"``, then the other state
  events that moved it, in life-cycle order (attempt, state rank, time: the
  order `troy.core.views` replays them in), a Running followed by the final
  state of the same attempt merged into one event with ``"run"`` as the agent
  writes it.  Stale events (a state already passed) are dropped.

So the history of each unit, its pilot, detail, exit code, tries, sandbox and
transfers replay exactly as before; for a unit that ran once it is two events
instead of four or more.  Compacting a summary again gives the same summary.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from troy.core.transitions import Replayed, advance, steps
from troy.model import protocol
from troy.model.errors import CoordinationError, NoSuchObject
from troy.model.states import STATE_RANK, State
from troy.plugins.coordination.base import Coordination


def _life_cycle_order(event: dict[str, Any]) -> tuple[int, int, float]:
    return (event.get("a", 0), STATE_RANK[State(event["s"])], event["ts"])


def _moving(obj: Replayed, events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events that move ``obj`` forward, applied to it in life-cycle order."""
    kept = []
    for event in sorted(events, key=_life_cycle_order):
        accepted = False
        for state, ts, detail in steps(event):
            accepted = advance(obj, state, event.get("a", 0), ts, detail) is not None or accepted
        if accepted:
            kept.append(event)
    return kept


def _merge_runs(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A Running event followed by the final event of the same attempt, as one event."""
    merged: list[dict[str, Any]] = []
    for event in events:
        previous = merged[-1] if merged else None
        if (
            previous is not None
            and previous["s"] == State.Running.value
            and "run" not in previous
            and "run" not in event
            and State(event["s"]).is_final
            and previous.get("a", 0) == event.get("a", 0)
        ):
            merged[-1] = {**previous, **event, "run": previous["ts"]}
        else:
            merged.append(dict(event))
    return merged


def summarize_unit_events(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """The summary of a work-unit service's events (module docstring); None unless all final."""
    order: list[tuple[str, Any]] = []  # ("unit", id) or ("event", event), as written
    submitted: dict[str, dict[str, Any]] = {}
    states: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        kind = event.get("ev")
        if kind == "unit":
            if event["id"] in submitted:
                continue
            submitted[event["id"]] = event
            order.append(("unit", event["id"]))
            if "state" in event:
                states.setdefault(event["id"], []).append(event["state"])
        elif kind == "state":
            states.setdefault(event["id"], []).append(event)
        else:
            order.append(("event", event))
    summary: list[dict[str, Any]] = []
    for what, value in order:
        if what == "event":
            summary.append(value)
            continue
        unit = Replayed(value)
        unit.history.append((State.New, submitted[value]["ts"]))
        moved = _merge_runs(_moving(unit, states.pop(value, [])))
        if not unit.state.is_final:
            return None
        head = {key: item for key, item in submitted[value].items() if key != "state"}
        if moved:
            head["state"] = moved.pop(0)
        summary.append(head)
        summary.extend(moved)
    # State events of units never submitted here (none in a consistent stream): kept as they were.
    for orphans in states.values():
        summary.extend(orphans)
    return summary


def summarize_pilot_events(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """A pilot stream's state events that move the pilot, in order; None unless it is final."""
    pilot = Replayed("pilot")
    kept = []
    for event in sorted(events, key=lambda e: (e.get("a", 0), e.get("ts", 0))):
        if event.get("ev") != "state":
            kept.append(event)
            continue
        accepted = False
        for state, ts, detail in steps(event):
            accepted = advance(pilot, state, event.get("a", 0), ts, detail) is not None or accepted
        if accepted:
            kept.append(event)
    return kept if pilot.state.is_final else None


def _pilots_of(coordination: Coordination, events: list[dict[str, Any]]) -> list[str]:
    """Ids of the pilots of the pilot-job services the unit service was attached to."""
    services = list(dict.fromkeys(e["pjs"] for e in events if e.get("ev") == "add"))
    pilots: list[str] = []
    for service in services:
        pilot_events, _ = coordination.read(protocol.service_key(service))
        pilots += [e["id"] for e in pilot_events if e.get("ev") == "pilot"]
    return list(dict.fromkeys(pilots))


def compact_pilot(coordination: Coordination, pilot_id: str, unit_ids: Iterable[str]) -> bool:
    """Compact an ended pilot's streams and drop stale items for ``unit_ids`` from its queue.

    Its state stream keeps the events that moved it; its control stream (requests
    to an agent that is gone) becomes empty.  False, touching nothing, unless the
    pilot is final.
    """
    key = protocol.pilot_key(pilot_id)
    record = coordination.get_record(key)
    if record is None:
        return False
    events, _ = coordination.read(key)
    summary = summarize_pilot_events(events)
    if summary is None:
        return False
    if not coordination.compact(key, summary):
        return False
    coordination.compact(protocol.control_stream(pilot_id), [])
    queue = record.get("queue") or key
    if queue == key:  # a queue of its own (a shared one may feed other pilots still)
        coordination.withdraw(queue, list(unit_ids))
    return True


def compact_unit_service(coordination: Coordination, service_id: str) -> bool:
    """Fold a finished work-unit service's stream into its summary; True if it did.

    Does nothing and returns False while any unit of the service is not final,
    or if the plugin cannot compact (contract below 1.2).  Afterwards, it also
    compacts the streams of the ended pilots of the pilot-job services the
    service was attached to (`compact_pilot`).  Call it with no writer left
    appending to the service's stream (the manager that owns the service
    stopped placing; its agents' units are all final).  A reconnecting
    ``WorkUnitService(id=...)`` then replays the same units, states, details,
    exit codes, pilots, tries, sandboxes and transfers, and ``troy report``
    draws the same report.

    NoSuchObject if there is no such service; CoordinationError if it is not a
    work-unit service or coordination fails.
    """
    key = protocol.service_key(service_id)
    record = coordination.get_record(key)
    if record is None:
        raise NoSuchObject(f"no service '{service_id}' in {coordination.public_url()}")
    if record.get("kind") != "workunit":
        raise CoordinationError(
            f"service '{service_id}' in {coordination.public_url()} is a {record.get('kind')!r} "
            f"service; only a work-unit service is compacted"
        )
    # The events read are not kept past summarizing: a service's whole stream, read
    # at once, and its summary (encoded) should not all be held together.
    summary = summarize_unit_events(coordination.read(key)[0])
    if summary is None:
        return False
    if not coordination.compact(key, summary):
        return False
    unit_ids = [event["id"] for event in summary if event.get("ev") == "unit"]
    for pilot_id in _pilots_of(coordination, summary):
        compact_pilot(coordination, pilot_id, unit_ids)
    return True
