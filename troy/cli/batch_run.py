"""`troy run`: start a batch file's pilots and units, or resume a run that was cut off.

A run is recorded when it starts: the record ``run/<work-unit service id>``
in coordination (the batch file, the pilot-job service) and, in the troy home,
``runs/<hash of the file's path>.json`` (the coordination URL and the service
ids), so ``troy run FILE --resume`` finds the run of that file and ``troy run
--resume SERVICE_ID`` the run of that service.

Every unit of a run is recorded by its one submit, so a run cut off at any
point afterwards (the troy process killed, the machine rebooted) is resumed by
reconnecting to its services: units that are Done stay Done; units still
running on pilots that outlived troy finish there; units that were waiting
(dependencies, or no pilot yet) are placed. If no pilot of the run is still
alive, the batch file's pilots are started again.
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
from troy.model import config
from troy.model.errors import TroyError
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
    print(f"  coordination  {units.coordination}", file=out)
    print(f"  units service {units.id} ({len(descriptions)} units)", file=out)
    print(
        f"  scheduler     {describe_scheduler(units.scheduler, units.scheduler_options)}", file=out
    )
    units.add(pilots)
    record = {"file": os.path.abspath(batch.path), "pilots": pilots.id, "units": units.id}
    coordination_client = units._manager.coordination
    coordination_client.put_record(_run_key(units.id), {**record, "started": run.started})
    state_file = _runs_file(batch.path)
    state_file.parent.mkdir(parents=True, exist_ok=True)
    state_file.write_text(json.dumps({**record, "coordination": units.coordination}))
    try:
        start_pilots(run, batch, out)
        out.flush()
        run.started = time.time()
        run.units.submit(descriptions)
    except BaseException:
        pilots.cancel()  # nothing of a failed start may keep running
        units.close()
        pilots.close()
        raise
    return run


def resume(
    service_id: str | None, batch_path: str | None, coordination: str | None, out: TextIO
) -> Run:
    """Reconnect to a recorded run and make sure it has live pilots."""
    if service_id is None:
        if batch_path is None:
            raise NoRun("--resume needs a service id, or the batch file of the run")
        state_file = _runs_file(batch_path)
        if not state_file.exists():
            raise NoRun(f"no earlier run of {batch_path} to resume (looked in {state_file})")
        saved = json.loads(state_file.read_text())
        service_id = str(saved["units"])
        coordination = coordination or saved.get("coordination")
    units = WorkUnitService(id=service_id, coordination=coordination)
    record = units._manager.coordination.get_record(_run_key(service_id))
    if record is None:
        units.close()
        raise NoRun(f"{service_id} was not started by troy run: nothing to resume")
    pilots = PilotJobService(id=record["pilots"], coordination=units.coordination)
    run = Run(units, pilots, float(record.get("started") or time.time()))
    done = sum(1 for unit in units.list() if unit.state == State.Done)
    print(f"troy run --resume {service_id}", file=out)
    print(f"  coordination  {units.coordination}", file=out)
    print(f"  units service {service_id} ({len(units.list())} units, {done} Done)", file=out)
    if not any(not pilot.state.is_final for pilot in pilots.list()):
        path = batch_path or record.get("file")
        if not path or not os.path.exists(path):
            raise NoRun(f"no pilot of {service_id} is alive and its batch file {path} is gone")
        print("  no live pilot: starting the batch file's pilots again", file=out)
        start_pilots(run, load_batch_file(path), out)
    for pilot in pilots.list():
        if not pilot.state.is_final:
            print(f"  pilot         {pilot.id} {pilot.state} on {pilot.rm}", file=out)
    out.flush()
    return run
