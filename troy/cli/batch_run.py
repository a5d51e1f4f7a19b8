"""`troy run`: start a batch file's pilots and units, or resume a run that was cut off.

A run is recorded when it starts: the record ``run/<work-unit service id>``
in coordination (the batch file, the pilot-job service) and, in the troy home,
``runs/<hash of the file's path>.json`` (the public coordination URL and the
service ids), so ``troy run FILE --resume`` finds the run of that file and ``troy
run --resume SERVICE_ID`` the run of that service.

Secrets.  The banner shows the coordination URL redacted (``redis://:***@host``)
and the run file keeps it without its secrets (naming them under ``"secrets"``):
a resume of a run whose URL held a password needs it again, from the batch
file's ``coordination``, ``--coordination``, ``$TROY_COORDINATION`` (if it
names the same coordination) or the plugin's own ways (a password file, the
environment); without it the resume stops with an error that says so.

Every unit of a run is recorded by its one submit, so a run cut off at any
point afterwards (the troy process killed with its agents, the machine
rebooted) is resumed by reconnecting to its services: units that are Done
stay Done; units still running on pilots that outlived troy finish there;
every pilot that ended is restarted from its recorded description; units
that were waiting (dependencies, or no pilot yet) are placed, and units that
were running on a pilot that died run again as a new try.  One process owns a
run: a resume while another process still runs it follows that one.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from troy.api.services import PilotJobService, WorkUnitService
from troy.cli.batchfile import BatchFile, load_batch_file
from troy.model import config, secrets
from troy.model.errors import CoordinationError, TroyError
from troy.model.private import private_mkdir, private_write
from troy.model.states import State


class NoRun(TroyError):
    """There is no recorded run to resume."""


@dataclass
class Run:
    """A run's two services, and when it started."""

    units: WorkUnitService
    pilots: PilotJobService
    started: float


def _run_key(units_id: str) -> str:
    return f"run/{units_id}"


def _runs_file(batch_path: str) -> Path:
    digest = hashlib.sha256(os.path.abspath(batch_path).encode()).hexdigest()[:16]
    return config.troy_home() / "runs" / f"{digest}.json"


def describe_scheduler(name: str, options: dict[str, Any] | None) -> str:
    """``random {"seed": 7}``: the strategy and the options it ran with."""
    return f"{name} {json.dumps(options, sort_keys=True)}" if options else name


def start_pilots(run: Run, batch: BatchFile, out: TextIO) -> None:
    for spec in batch.pilots:
        pilot = run.pilots.create(spec.resource, spec.description, spec.pj_type)
        print(f"  pilot         {pilot.id} on {pilot.rm} in {pilot.working_directory}", file=out)


def start(batch: BatchFile, coordination: str | None, out: TextIO) -> Run:
    """Start a new run of ``batch``: services, pilots, one submit of every unit."""
    descriptions = batch.unit_descriptions()
    pilots = PilotJobService(coordination=coordination)
    units = WorkUnitService(
        coordination=coordination,
        scheduler=batch.scheduler,
        scheduler_options=batch.scheduler_options,
    )
    run = Run(units, pilots, time.time())
    print(f"troy run {batch.path}", file=out)
    print(f"  coordination  {shown_url(units)}", file=out)
    print(f"  units service {units.id} ({batch.unit_count} units)", file=out)
    print(
        f"  scheduler     {describe_scheduler(units.scheduler, units.scheduler_options)}", file=out
    )
    units.add(pilots)
    record = {"file": os.path.abspath(batch.path), "pilots": pilots.id, "units": units.id}
    coordination_client = units._manager.coordination
    coordination_client.put_record(_run_key(units.id), {**record, "started": run.started})
    state_file = _runs_file(batch.path)
    private_mkdir(state_file.parent)
    public, withheld = secrets.split_url(
        units.coordination, type(coordination_client).secret_options()
    )
    saved: dict[str, Any] = {**record, "coordination": public}
    if withheld:
        saved["secrets"] = sorted(withheld)
    private_write(state_file, json.dumps(saved).encode())
    try:
        start_pilots(run, batch, out)
        out.flush()
        run.started = time.time()
        run.units.submit(descriptions)
        # A run cut off before this line has no units: its resume submits them.
        coordination_client.put_record(
            _run_key(units.id), {**record, "started": run.started, "submitted": True}
        )
    except BaseException:
        pilots.cancel()  # nothing of a failed start may keep running
        units.close()
        pilots.close()
        raise
    return run


def resume(
    service_id: str | None, batch_path: str | None, coordination: str | None, out: TextIO
) -> Run:
    """Reconnect to a recorded run, own it, and give it live pilots again.

    If another process owns the run and is alive, this one follows it to the
    end instead (and takes over if that owner stops).  Otherwise pilot states
    are brought up to date first (streams, then backends); if units are left,
    every pilot of the run that ended is restarted from its recorded
    description before anything is placed or judged.
    """
    units: WorkUnitService | None = None
    if service_id is None:
        if batch_path is None:
            raise NoRun("--resume needs a service id, or the batch file of the run")
        state_file = _runs_file(batch_path)
        if not state_file.exists():
            raise NoRun(f"no earlier run of {batch_path} to resume (looked in {state_file})")
        saved = json.loads(state_file.read_text())
        service_id = str(saved["units"])
        if not coordination:
            units = _reconnect(service_id, saved)
    if units is None:
        units = WorkUnitService(id=service_id, coordination=coordination, take_over=False)
    client = units._manager.coordination
    record = client.get_record(_run_key(service_id))
    if record is None:
        units.close()
        raise NoRun(f"{service_id} was not started by troy run: nothing to resume")
    pilots = PilotJobService(id=record["pilots"], coordination=units.coordination)
    run = Run(units, pilots, float(record.get("started") or time.time()))
    print(f"troy run --resume {service_id}", file=out)
    print(f"  coordination  {shown_url(units)}", file=out)
    manager = units._manager
    manager.prepare = lambda: _prepare(run, record, batch_path, out)
    if not manager.acquire():
        print(f"  owner         {manager.owner()}: following it to the end", file=out)
        out.flush()
        return run
    for pilot in pilots.list():
        if not pilot.state.is_final:
            print(f"  pilot         {pilot.id} {pilot.state} on {pilot.rm}", file=out)
    out.flush()
    return run


def shown_url(units: WorkUnitService) -> str:
    """The service's coordination URL as it may be shown: each secret ``***``."""
    client = units._manager.coordination
    return secrets.redact_url(units.coordination, type(client).secret_options())


def _reconnect(service_id: str, saved: dict[str, Any]) -> WorkUnitService:
    """The run's work-unit service through the coordination URL its run file recorded.

    That URL is public: ``$TROY_COORDINATION`` is used instead if it names the
    same coordination with its secrets.  If the run's URL had secrets
    (``saved["secrets"]``) and the coordination refuses the URL without them,
    the error says how to give them.
    """
    url = saved.get("coordination")
    default = config.default_coordination_url()
    if url and secrets.split_url(default)[0] == url:
        url = default
    try:
        return WorkUnitService(id=service_id, coordination=url, take_over=False)
    except CoordinationError as exc:
        withheld = saved.get("secrets")
        if not withheld:
            raise
        raise NoRun(
            f"cannot resume {service_id}: its coordination URL had a {' and a '.join(withheld)}"
            f" that troy does not record, and {url} without it fails ({exc}); give the URL"
            " with it again: --coordination URL, the batch file's coordination, or"
            " $TROY_COORDINATION naming the same coordination (docs/coordination.md)"
        ) from exc


def _prepare(run: Run, record: dict[str, Any], batch_path: str | None, out: TextIO) -> None:
    """What the owner of a resumed run does first: judge every pilot, restart the dead."""
    manager = run.pilots._manager
    manager.check_now()  # their streams, then their backends
    for pilot in run.pilots.list():
        if pilot.state == State.New and pilot.handle is None:
            # Its creator died before it launched (or before it said so): it never will.
            manager.give_up(pilot, "never launched: the process starting it ended first")
    listed = run.units.list()
    done = sum(1 for unit in listed if unit.state == State.Done)
    print(f"  units service {run.units.id} ({len(listed)} units, {done} Done)", file=out)
    unsubmitted = not listed and not record.get("submitted")
    if unsubmitted or any(not unit.state.is_final for unit in listed):
        _restart_pilots(run, record, batch_path, out)
    if unsubmitted:
        # Cut off between recording the run and submitting it: submit it now, once.
        batch = load_batch_file(_batch_path(record, batch_path))
        print(f"  units         never submitted: submitting {batch.unit_count}", file=out)
        run.units.submit(batch.unit_descriptions())
        client = run.units._manager.coordination
        client.put_record(_run_key(run.units.id), {**record, "submitted": True})


def _batch_path(record: dict[str, Any], batch_path: str | None) -> str:
    """The run's batch file; NoRun if it is gone."""
    path = batch_path or record.get("file")
    if not path or not os.path.exists(path):
        raise NoRun(f"the run needs its batch file, and {path} is gone")
    return str(path)


def _restart_pilots(run: Run, record: dict[str, Any], batch_path: str | None, out: TextIO) -> None:
    """Start a new pilot for each pilot of the run that ended, from its recorded description.

    Pilots replaced before are not restarted again (the run record keeps
    ``replaced``: old id -> new id).  A pilot that cannot be restarted is named
    with the reason.  A run that never got pilots starts its batch file's.
    """
    replaced: dict[str, str] = dict(record.get("replaced") or {})
    current = [p for p in run.pilots.list() if p.id not in replaced]
    if not current:
        print("  no pilot recorded: starting the batch file's pilots", file=out)
        start_pilots(run, load_batch_file(_batch_path(record, batch_path)), out)
        return
    for old in current:
        if not old.state.is_final:
            continue
        description = dict(old.description.as_dict())
        if description.get("working_directory"):
            description["working_directory"] = old.working_directory
        try:
            new = run.pilots.create(old.rm, description, old.pj_type)
        except TroyError as exc:
            print(f"  pilot         {old.id} ({old.state}) could not be restarted: {exc}", file=out)
            continue
        replaced[old.id] = new.id
        # Recorded at once: a resume cut off here never starts this pilot's replacement twice.
        client = run.units._manager.coordination
        client.put_record(_run_key(run.units.id), {**record, "replaced": replaced})
        print(f"  pilot         {new.id} restarted on {new.rm} (replaces {old.id}: {old.state})",
              file=out)  # fmt: skip
