"""What manager and agents write into coordination: names and event shapes.

One place for the layout, so the manager side (troy.core) and the agent
(troy.agent) cannot drift apart.

Records
    ``service/<id>``  {"id", "kind": "pilotjob" | "workunit", "created", "scheduler"?}
    ``pilot/<id>``    {"id", "service", "rm", "pj_type", "description", "working_directory",
                       "handle", "attempt", "created", "coordination",
                       "heartbeat": {"interval", "timeout"}}
    ``pilot/<id>/heartbeat``  {"n", "a", "ts", "host"}: the agent rewrites it every
                       interval; the manager watches "n" change (not clocks, which differ
                       between hosts)
    ``pilot/<id>/log``  {"n", "lines", "ts"}: the last lines of the agent's log (scrubbed),
                       "n" counting every line it ever logged (troy.agent.log_tail)
    ``pilot/<id>/tail/<unit id>``  {"id", "a", "exit", "stdout", "stderr", "ts"}: the ends of
                       the output of a unit that exited non-zero on that pilot (scrubbed)
Streams
    ``service/<id>``        events of a service (see below)
    ``pilot/<id>``          pilot state events written by its agent and its manager
    ``pilot/<id>/control``  requests to the agent: cancel units, terminate
Queues
    ``pilot/<id>``          units placed on that pilot: {"id", "service", "d", "a", "t"}
                            ("t": earlier tries, see troy.model.retry)
    ``tasks/<pjs-id>``      the same, for late-binding pilots (the diane backend): every
                            such pilot of the pilot-job service claims from it, one unit per
                            free slot; the pilot record's "queue" names it, "pull" is true

Service events (short keys: a run of 100,000 units writes them all)
    {"ev": "pilot", "id"}                                   pilot created (pilot-job service)
    {"ev": "add" | "remove", "pjs"}                         pilot-job service attached/detached
    {"ev": "unit", "id", "d", "ts", "state"?}               unit submitted (New); "state" holds
                                                            the state event it got at once
    {"ev": "state", "id", "s", "ts", "a", ...}              unit state change; optional
        "pilot", "detail", "exit", "sandbox", "host", "tries", "transfers" (staging
        records, see troy.agent.staging), and "run": the time it
        started Running when one final event also stands for the Running before it.
        State "New" with a higher attempt sends a unit back to be placed again.
Pilot events
    {"ev": "state", "s", "ts", "a", "detail"?, "slots"?, "host"?, "pid"?}
Control events
    {"ev": "cancel", "units": [ids]} | {"ev": "terminate", "a": attempt, "reason", "fate"?}
    (fate "lost": the manager gave the agent up; its units go back as lost, not canceled)
"""

from __future__ import annotations

import time
from typing import Any


def service_key(service_id: str) -> str:
    return f"service/{service_id}"


def pilot_key(pilot_id: str) -> str:
    return f"pilot/{pilot_id}"


def task_queue(pilot_service_id: str) -> str:
    """The queue the late-binding pilots of one pilot-job service share (diane workers)."""
    return f"tasks/{pilot_service_id}"


def heartbeat_key(pilot_id: str) -> str:
    return f"pilot/{pilot_id}/heartbeat"


def agent_log_key(pilot_id: str) -> str:
    return f"pilot/{pilot_id}/log"


def unit_tail_key(pilot_id: str, unit_id: str) -> str:
    return f"pilot/{pilot_id}/tail/{unit_id}"


def control_stream(pilot_id: str) -> str:
    return f"pilot/{pilot_id}/control"


def unit_state_event(
    unit_id: str, state: str, attempt: int = 0, ts: float | None = None, **extra: Any
) -> dict[str, Any]:
    """A unit state event; ``extra`` holds the optional fields that are not None."""
    event: dict[str, Any] = {
        "ev": "state",
        "id": unit_id,
        "s": state,
        "ts": time.time() if ts is None else ts,
        "a": attempt,
    }
    for key, value in extra.items():
        if value is not None:
            event[key] = value
    return event


def pilot_state_event(state: str, attempt: int = 0, **extra: Any) -> dict[str, Any]:
    """A pilot state event."""
    event: dict[str, Any] = {"ev": "state", "s": state, "ts": time.time(), "a": attempt}
    for key, value in extra.items():
        if value is not None:
            event[key] = value
    return event
