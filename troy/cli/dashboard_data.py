"""What `troy dashboard` shows, as one JSON-ready dict: a function of the recorded run.

Built from the read-only views of troy.core.views (a service's pilots and
units, replayed from its stream), the timeline of troy.core.timeline and the
summary of troy.cli.report, plus each pilot's heartbeat record and, for failed
units, the end of their stderr: as their agent recorded it in coordination
(troy.agent.log_tail, so it works wherever the pilot runs), else from the
unit's sandbox where this host can read it. Nothing here writes to the
coordination. URLs are shown redacted and stderr scrubbed (troy.model.secrets).
"""

from __future__ import annotations

import os
import socket
from typing import Any

from troy.cli import report
from troy.core import views
from troy.core.timeline import layout
from troy.model import protocol
from troy.model.secrets import redact_url, scrub
from troy.model.states import State
from troy.plugins.coordination.base import Coordination

#: The last characters of a failed unit's stderr that the page shows.
STDERR_TAIL = 4000
#: Failed units whose stderr the page shows (the latest failures).
MAX_FAILED_SHOWN = 20
#: Seconds over which the recent rate of finished units is counted.
RATE_WINDOW = 60.0
#: Time slices of the utilisation plot.
BUCKETS = 40
#: Bars of the timeline sent to the page (the latest ending): an SVG of more is too slow.
MAX_BARS = 20_000
#: Rows of the unit table sent to the page (the latest submitted that pass its filter).
MAX_UNITS = 500


def services(coordination: Coordination) -> list[dict[str, Any]]:
    """Every service recorded in ``coordination``: id, kind, created; oldest first."""
    return [
        {"id": r["id"], "kind": r.get("kind", "?"), "created": r.get("created", 0.0)}
        for r in views.list_services(coordination)
    ]


def default_service(listed: list[dict[str, Any]]) -> str | None:
    """The service the page shows when none is named: the newest work-unit service."""
    units = [s for s in listed if s["kind"] == "workunit"]
    chosen = units or listed
    return chosen[-1]["id"] if chosen else None


def snapshot(
    coordination: Coordination, service_id: str | None, now: float, state: str | None = None
) -> dict[str, Any]:
    """Everything the page shows of ``service_id`` (None: the default service) at ``now``;
    the unit table holds the last MAX_UNITS units in ``state`` (None: in any state)."""
    listed = services(coordination)
    service_id = service_id or default_service(listed)
    data: dict[str, Any] = {
        "now": now,
        "coordination": coordination.public_url(),
        "services": listed,
        "service": None,
    }
    if service_id is None:
        return data
    view = views.service_view(coordination, service_id)
    data["service"] = {"id": view.id, "kind": view.kind, "created": view.created}
    data["pilots"] = [_pilot(coordination, view, p, now) for p in view.pilots]
    data["counts"] = {str(s): n for s, n in view.counts().items()}
    data["rates"] = _rates(view, now)
    table = [u for u in view.units if state is None or str(u.state) == state]
    data["units"] = [_unit(u) for u in table[-MAX_UNITS:]]
    data["units_matching"] = len(table)
    data["failed"] = _failed(coordination, view)
    timeline = layout(view, now)
    summary = report.summarize(view, timeline, BUCKETS)
    data["timeline"] = {
        "start": timeline.start,
        "end": timeline.end,
        "finished": timeline.finished,
        "pilots": [
            {"id": p.id, "first_row": p.first_row, "rows": p.rows, "slots": p.slots}
            for p in timeline.pilots
        ],
        "bars": [
            {"unit": b.unit_id, "row": b.row, "start": b.start, "end": b.end, "state": str(b.state)}
            for b in sorted(timeline.bars, key=lambda b: b.end)[-MAX_BARS:]
        ],
        "bars_total": len(timeline.bars),
    }
    data["utilisation"] = {
        "overall": summary.utilisation,
        "bucket_seconds": summary.bucket_seconds,
        "buckets": summary.buckets,
    }
    return data


def _pilot(
    coordination: Coordination, view: views.ServiceView, pilot: views.PilotView, now: float
) -> dict[str, Any]:
    busy = sum(u.cores for u in view.units if u.pilot == pilot.id and u.state == State.Running)
    beat = coordination.get_record(protocol.heartbeat_key(pilot.id)) or {}
    beat_ts = beat.get("ts")
    return {
        "id": pilot.id,
        "resource": redact_url(pilot.rm),
        "state": str(pilot.state),
        "detail": pilot.detail,
        "slots": pilot.slots,
        "busy": busy if view.kind == "workunit" else None,
        "free": None if pilot.slots is None else max(pilot.slots - busy, 0),
        "heartbeat_age": None if beat_ts is None else max(now - beat_ts, 0.0),
        "host": beat.get("host"),
    }


def _rates(view: views.ServiceView, now: float) -> dict[str, Any]:
    """Finished units per second: over the last RATE_WINDOW seconds and since the first submit."""
    finals = [u.history[-1][1] for u in view.units if u.state.is_final and u.history]
    first = min((u.history[0][1] for u in view.units if u.history), default=now)
    recent = sum(1 for ts in finals if ts >= now - RATE_WINDOW)
    elapsed = (max(finals) if finals and len(finals) == len(view.units) else now) - first
    return {
        "window": RATE_WINDOW,
        "recent": recent / RATE_WINDOW,
        "overall": len(finals) / elapsed if elapsed > 0 else None,
        "finished": len(finals),
    }


def _unit(unit: views.UnitView) -> dict[str, Any]:
    submitted = unit.history[0][1] if unit.history else None
    started = unit.runs[-1].start if unit.runs else None
    first_start = unit.runs[0].start if unit.runs else None
    ended = unit.history[-1][1] if unit.state.is_final and unit.history else None
    return {
        "id": unit.id,
        "name": unit.name,
        "state": str(unit.state),
        "detail": unit.detail,
        "pilot": unit.pilot,
        "exit_code": unit.exit_code,
        "cores": unit.cores,
        "runs": len(unit.runs),
        "tries": len(unit.tries),
        "submitted": submitted,
        "started": started,
        "ended": ended,
        "wait": None if first_start is None or submitted is None else first_start - submitted,
        "run": None if started is None or ended is None else ended - started,
    }


def _failed(coordination: Coordination, view: views.ServiceView) -> list[dict[str, Any]]:
    failed = [u for u in view.units if u.state == State.Failed]
    failed.sort(key=lambda u: u.history[-1][1] if u.history else 0.0)
    return [
        {"id": u.id, "name": u.name, **stderr_tail(coordination, u)}
        for u in failed[-MAX_FAILED_SHOWN:]
    ]


def stderr_path(unit: views.UnitView) -> str | None:
    """Where the unit's stderr went on its pilot's host: its ``error`` file in its sandbox."""
    if not unit.sandbox:
        return None
    return os.path.join(unit.sandbox, unit.error or "stderr")


def stderr_tail(
    coordination: Coordination, unit: views.UnitView, limit: int = STDERR_TAIL
) -> dict[str, Any]:
    """The end of the unit's stderr (at most ``limit`` characters), scrubbed, with where it
    came from: its agent's record in coordination, else its file; or a note saying why not."""
    path = stderr_path(unit)
    host = unit.runs[-1].host if unit.runs else None
    result: dict[str, Any] = {"path": path, "host": host, "stderr": None, "note": ""}
    recorded = None
    if unit.pilot:
        recorded = coordination.get_record(protocol.unit_tail_key(unit.pilot, unit.id))
    if recorded is not None:
        text = recorded.get("stderr") or ""
        result["note"] = f"as its agent recorded it (exit code {recorded.get('exit')})"
        if not text and recorded.get("stdout"):  # its stderr went into its stdout file
            text = recorded["stdout"]
            result["note"] += "; its stderr and stdout are one file"
        result["stderr"] = scrub(text[-limit:])
        return result
    if path is None:
        result["note"] = "the unit never started: it has no sandbox"
        return result
    if host and host not in _this_host() and not os.path.exists(path):
        result["note"] = (
            f"its agent recorded no stderr, and its file is on {host}, which this dashboard"
            f" cannot read: look at {path} there"
        )
        return result
    try:
        with open(path, "rb") as stream:
            size = stream.seek(0, os.SEEK_END)
            stream.seek(max(size - 4 * limit, 0))  # up to 4 bytes a character
            tail = stream.read().decode("utf-8", "replace")
    except OSError as exc:
        result["note"] = f"cannot read {path}: {exc.strerror or exc}"
        return result
    result["stderr"] = scrub(tail[-limit:])
    cut = len(tail) > limit or size > 4 * limit
    result["note"] = f"from {path}" + (f", its last {limit} characters" if cut else "")
    return result


def _this_host() -> set[str]:
    return {"localhost", "127.0.0.1", socket.gethostname(), socket.getfqdn()}
