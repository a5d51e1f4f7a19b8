"""Read-only views of a recorded service, for `troy status`, `troy report` and exports.

Replays the service's stream without starting a manager, so looking at a
run never changes it (a reconnecting manager would place waiting units).
The views are plain dataclasses: the command line, the API's
`WorkUnitService.records()` and a dashboard read them alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from troy.core.transitions import Replayed, advance, steps
from troy.model import protocol
from troy.model.description import WorkUnitDescription
from troy.model.errors import NoSuchObject
from troy.model.states import STATE_RANK, State
from troy.plugins.coordination.base import Coordination


@dataclass
class RunView:
    """One time a unit ran: where, from when to when, and how that run ended."""

    pilot: str | None
    start: float
    #: None while it still runs.
    end: float | None
    #: The final state; Running while it runs; New when it was sent back to run again.
    state: State
    #: Slots this run took.
    cores: int = 1
    #: The host its agent ran on (as the agent reported it when the run started).
    host: str | None = None


@dataclass
class UnitView:
    """A unit as recorded."""

    id: str
    state: State
    detail: str
    pilot: str | None
    exit_code: int | None
    history: list[tuple[State, float]]
    #: Slots the unit takes.
    cores: int = 1
    #: Every time it ran (a retried or lost unit runs more than once), in order.
    runs: list[RunView] = field(default_factory=list)
    #: Its description's ``name`` ("" without one).
    name: str = ""
    #: Its last run's staging, as the agent reported it (see troy.agent.staging).
    transfers: list[dict[str, Any]] = field(default_factory=list)
    #: Its last run's sandbox directory on its pilot's host (the runs' ``host``).
    sandbox: str | None = None
    #: Its earlier attempts that did not count (see troy.model.retry).
    tries: list[dict[str, Any]] = field(default_factory=list)
    #: Its description's ``error`` file ("" for the sandbox's ``stderr``).
    error: str = ""


@dataclass
class PilotView:
    """A pilot as recorded."""

    id: str
    rm: str
    pj_type: str
    state: State
    detail: str
    slots: int | None
    working_directory: str
    history: list[tuple[State, float]]


@dataclass
class ServiceView:
    """A service as recorded: its kind, pilots and units."""

    id: str
    kind: str
    created: float
    pilots: list[PilotView] = field(default_factory=list)
    units: list[UnitView] = field(default_factory=list)
    #: A work-unit service's scheduler and the options it was given (as recorded).
    scheduler: str | None = None
    scheduler_options: dict[str, Any] = field(default_factory=dict)

    def counts(self) -> dict[State, int]:
        """Units per state."""
        result: dict[State, int] = {}
        for unit in self.units:
            result[unit.state] = result.get(unit.state, 0) + 1
        return result


def _replay(obj: Replayed, events: list[dict[str, Any]], extra: dict[str, Any]) -> None:
    for event in events:
        if event.get("ev") != "state":
            continue
        accepted = False
        for state, ts, detail in steps(event):
            change = advance(obj, state, event.get("a", 0), ts, detail)
            accepted = accepted or change is not None
        if accepted:
            for key in ("pilot", "exit", "slots", "cores", "transfers", "host", "sandbox", "tries"):
                if key in event:
                    extra[key] = event[key]


def _runs(
    history: list[tuple[State, float]], where: list[tuple[str | None, int, str | None]]
) -> list[RunView]:
    """The runs in a unit's history; ``where`` holds (pilot, cores, host) of each Running."""
    runs: list[RunView] = []
    for index, (state, ts) in enumerate(history):
        if state != State.Running:
            continue
        pilot, cores, host = where[len(runs)] if len(runs) < len(where) else (None, 1, None)
        if index + 1 < len(history):
            after, end = history[index + 1]
            ended = after if after.is_final else State.New
            runs.append(RunView(pilot, ts, end, ended, cores, host))
        else:
            runs.append(RunView(pilot, ts, None, State.Running, cores, host))
    return runs


def _read_all(coordination: Coordination, stream: str) -> list[dict[str, Any]]:
    events, _ = coordination.read(stream, None)
    return events


def pilot_view(coordination: Coordination, pilot_id: str) -> PilotView | None:
    record = coordination.get_record(protocol.pilot_key(pilot_id))
    if record is None:
        return None
    obj = Replayed(pilot_id)
    extra: dict[str, Any] = {"slots": (record.get("description") or {}).get("number_of_processes")}
    events = _read_all(coordination, protocol.pilot_key(pilot_id))
    _replay(obj, sorted(events, key=lambda e: (e.get("a", 0), e.get("ts", 0))), extra)
    return PilotView(
        pilot_id,
        record["rm"],
        record["pj_type"],
        obj.state,
        obj.state_detail,
        extra.get("slots"),
        record["working_directory"],
        obj.history,
    )


def service_view(coordination: Coordination, service_id: str) -> ServiceView:
    """Everything recorded about one service; NoSuchObject if there is none."""
    record = coordination.get_record(protocol.service_key(service_id))
    if record is None:
        raise NoSuchObject(f"no service '{service_id}' in {coordination.public_url()}")
    view = ServiceView(service_id, record.get("kind", "?"), record.get("created", 0.0))
    view.scheduler = record.get("scheduler")
    view.scheduler_options = dict(record.get("scheduler_options") or {})
    events = _read_all(coordination, protocol.service_key(service_id))
    pilot_services: list[str] = []
    units: dict[str, tuple[Replayed, dict[str, Any]]] = {}
    states: list[dict[str, Any]] = []
    for event in events:
        kind = event.get("ev")
        if kind == "pilot":
            pilot = pilot_view(coordination, event["id"])
            if pilot is not None:
                view.pilots.append(pilot)
        elif kind == "add" and event["pjs"] not in pilot_services:
            pilot_services.append(event["pjs"])
        elif kind == "unit":
            obj = Replayed(event["id"])
            obj.history.append((State.New, event["ts"]))
            description = WorkUnitDescription(event["d"])
            info: dict[str, Any] = {"cores": description.cores, "runs": []}
            info["name"] = description.get("name") or ""
            info["error"] = description.get("error") or ""
            units[event["id"]] = (obj, info)
            if "state" in event:  # placed (or failed) as it was submitted
                states.append(event["state"])
        elif kind == "state":
            states.append(event)
    # Writers interleave in any order: replay each unit's events in life-cycle order.
    states.sort(key=lambda e: (e.get("a", 0), STATE_RANK[State(e["s"])], e["ts"]))
    for event in states:
        if event["id"] in units:
            obj, extra = units[event["id"]]
            seen = len(obj.history)
            _replay(obj, [event], extra)
            for state, _ in obj.history[seen:]:  # the event's pilot, cores, host are the run's
                if state == State.Running:
                    where = (extra.get("pilot") or None, extra["cores"], event.get("host"))
                    extra["runs"].append(where)
    for pjs in pilot_services:
        view.pilots += service_view(coordination, pjs).pilots
    view.units = [
        UnitView(
            o.id,
            o.state,
            o.state_detail,
            x.get("pilot"),
            x.get("exit"),
            o.history,
            x["cores"],
            _runs(o.history, x["runs"]),
            x["name"],
            list(x.get("transfers") or []),
            x.get("sandbox"),
            list(x.get("tries") or []),
            x["error"],
        )
        for o, x in units.values()
    ]
    return view


def list_services(coordination: Coordination) -> list[dict[str, Any]]:
    """The records of every service in the coordination store, oldest first."""
    records = [coordination.get_record(key) for key in coordination.list_records("service")]
    return sorted((r for r in records if r), key=lambda r: r.get("created", 0.0))
