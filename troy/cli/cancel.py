"""`troy cancel ID...`: cancel services, pilots and units from any process.

Each id is found in coordination, as `troy status` finds services: a
work-unit service (``wus-...``), a pilot-job service (``pjs-...``), a pilot
(``pilot-...``) or a unit (``wus-....N``).  Every id is looked up before
anything is canceled: one that names nothing stops the command (exit 2,
naming it) with nothing canceled.

The process that runs `troy cancel` does not own the services: it opens them
as a follower (troy.core.lease), which may cancel.  What is canceled:

- a unit: withdrawn from its pilot's queue, or its agent told to stop it;
- a work-unit service: every unit of it not final; if `troy run` started it,
  also the pilots of that run (its owner, if alive, would end them anyway;
  one that died would leave them running);
- a pilot: its agent is told to terminate and its job is ended through the
  backend and the handle recorded when it was launched (by whichever process
  did), as PilotJob.cancel does;
- a pilot-job service: each of its pilots so.

Then it waits (``--wait`` seconds, default 10) until what it canceled is
final, and prints one line per id with the states it ended in.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from typing import Any, TextIO

from troy.model import protocol
from troy.model.errors import NoSuchObject, TroyError
from troy.plugins.coordination.base import Coordination


@dataclass(frozen=True)
class Target:
    """One id given to `troy cancel` and what it names."""

    id: str
    #: "workunit", "pilotjob" (services), "pilot" or "unit".
    kind: str
    #: The service it belongs to (itself for a service).
    service: str


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``cancel`` subcommand."""
    cancel = sub.add_parser(
        "cancel", help="cancel work-unit or pilot-job services, pilots or units by id"
    )
    cancel.add_argument(
        "ids", nargs="+", metavar="ID", help="ids: wus-..., pjs-..., pilot-..., wus-....N"
    )
    cancel.add_argument("--coordination", help="coordination URL")
    cancel.add_argument(
        "--wait",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long to wait for what was canceled to be final (default: 10)",
    )
    cancel.set_defaults(func=run)


def resolve(coordination: Coordination, ids: Sequence[str]) -> list[Target]:
    """What each id names; NoSuchObject naming every id that names nothing."""
    found: list[Target] = []
    unknown: list[str] = []
    for given in dict.fromkeys(ids):
        target = _find(coordination, given)
        if target is None:
            unknown.append(given)
        else:
            found.append(target)
    if unknown:
        raise NoSuchObject(
            f"nothing canceled: no service, pilot or unit {', '.join(map(repr, unknown))}"
            f" in {coordination.public_url()}"
        )
    return found


def _find(coordination: Coordination, given: str) -> Target | None:
    record = coordination.get_record(protocol.service_key(given))
    if record is not None and record.get("kind") in ("workunit", "pilotjob"):
        return Target(given, str(record["kind"]), given)
    record = coordination.get_record(protocol.pilot_key(given))
    if record is not None and record.get("service"):
        return Target(given, "pilot", str(record["service"]))
    service, dot, number = given.rpartition(".")
    if dot and number.isdigit():
        record = coordination.get_record(protocol.service_key(service))
        if record is not None and record.get("kind") == "workunit":
            return Target(given, "unit", service)
    return None


def run(args: argparse.Namespace) -> int:
    from troy.core.service import absolute_url
    from troy.model import config
    from troy.plugins.registry import open_coordination

    url = absolute_url(args.coordination or config.default_coordination_url())
    coordination = open_coordination(url)  # looking up ids only reads
    try:
        targets = resolve(coordination, args.ids)
        runs = {
            t.id: record
            for t in targets
            if t.kind == "workunit"
            and (record := coordination.get_record(f"run/{t.id}")) is not None
        }
    finally:
        coordination.close()
    cancel(targets, runs, url, args.wait, sys.stdout)
    return 0


def cancel(
    targets: Sequence[Target],
    runs: dict[str, dict[str, Any]],
    url: str,
    wait: float,
    out: TextIO,
) -> None:
    """Cancel every target (all are known to exist), wait up to ``wait`` s, print what became."""
    from troy.api.services import PilotJobService, WorkUnitService

    with ExitStack() as stack:
        unit_services: dict[str, WorkUnitService] = {}
        pilot_services: dict[str, PilotJobService] = {}

        def units_of(service_id: str) -> WorkUnitService:
            if service_id not in unit_services:
                # A follower: it never takes the service over, but it may cancel.
                service = WorkUnitService(id=service_id, coordination=url, take_over=False)
                unit_services[service_id] = stack.enter_context(service)
            return unit_services[service_id]

        def pilots_of(service_id: str) -> PilotJobService:
            if service_id not in pilot_services:
                service = PilotJobService(id=service_id, coordination=url)
                pilot_services[service_id] = stack.enter_context(service)
            return pilot_services[service_id]

        # Everything is looked up (a unit unknown to its service stops it all) before any cancel.
        objects: list[tuple[Target, list[Any]]] = []
        for target in targets:
            if target.kind == "unit":
                try:
                    unit = units_of(target.service).get_unit(target.id)
                except NoSuchObject as exc:
                    raise NoSuchObject(f"nothing canceled: {exc}") from None
                objects.append((target, [unit]))
            elif target.kind == "workunit":
                objects.append((target, list(units_of(target.id).list())))
            elif target.kind == "pilot":
                objects.append((target, [pilots_of(target.service).get_pilot(target.id)]))
            else:
                objects.append((target, list(pilots_of(target.id).list())))
        run_pilots: dict[str, list[Any]] = {}
        for service_id, record in runs.items():
            if record.get("pilots"):
                run_pilots[service_id] = pilots_of(str(record["pilots"])).list()
        before = {id(obj): obj.state for _, objs in objects for obj in objs}
        failure: TroyError | None = None
        for target, objs in objects:  # units first: their pilots may end with them
            if target.kind == "workunit":
                units_of(target.id).cancel()
            elif target.kind == "unit":
                objs[0].cancel()
        for target, objs in objects:
            pilots = objs if target.kind in ("pilot", "pilotjob") else run_pilots.get(target.id, [])
            for pilot in pilots:
                try:
                    pilot.cancel()
                except TroyError as exc:  # every pilot is tried; the first error is raised
                    failure = failure or exc
        deadline = time.monotonic() + wait
        for _, objs in objects:
            for obj in objs:
                if not obj.state.is_final:
                    with suppress(TroyError):
                        obj.wait(timeout=max(0.0, deadline - time.monotonic()))
        for target, objs in objects:
            print(_describe(target, objs, before, run_pilots.get(target.id, [])), file=out)
        if failure is not None:
            raise failure


def _describe(
    target: Target, objs: Sequence[Any], before: dict[int, Any], run_pilots: Sequence[Any]
) -> str:
    """``wus-1.3 (unit): Running -> Canceled``, or counts for a service."""
    if target.kind in ("unit", "pilot"):
        obj = objs[0]
        was = before[id(obj)]
        if was.is_final:
            return f"{target.id} ({target.kind}): already {was}, nothing to cancel"
        return f"{target.id} ({target.kind}): {was} -> {obj.state}"
    noun = "units" if target.kind == "workunit" else "pilots"
    canceled = sum(1 for obj in objs if not before[id(obj)].is_final)
    counts: dict[str, int] = {}
    for obj in objs:
        counts[str(obj.state)] = counts.get(str(obj.state), 0) + 1
    states = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "none"
    line = f"{target.id} ({target.kind} service): canceled {canceled} of {len(objs)} {noun}"
    line += f", now {states}"
    if run_pilots:
        line += f"; the pilots of its run: {', '.join(f'{p.id} {p.state}' for p in run_pilots)}"
    return line
