"""`troy compare --real`: a workload played for real, on local pilots, recorded as simulated.

Each pilot of the workload becomes a local pilot (``fork://localhost``) with its
slots, labels, hints and wall time; each store a file-store Pilot-Data with its
labels, and each input a data unit of its size in that store; each unit a
work unit with its cores, labels, hints, dependencies and inputs, submitted at
its submit time, that sleeps its runtime (or runs its workload entry's
``executable``, if it gives one).  What a local machine cannot be, a
wrapper plays:

- the pilot wrapper (the pilot description's ``executable``, through which the
  local backend starts the agent, see troy.plugins.backends.local) sleeps the
  pilot's ``start_delay`` before it execs the agent, and hands the agent (so
  its units) the pilot's speed and labels in ``TROY_SIM_SPEED``,
  ``TROY_SIM_MACHINE`` and ``TROY_SIM_DATACENTER``;
- the unit sleeps ``runtime / speed`` plus, for each input that is not local
  to its pilot (by the rule of troy.plugins.schedulers.data_aware.is_local),
  the network's ``latency + size / bandwidth``: the pilots all run on this
  machine, so the real copy of the input (which the agent does, and records,
  as for any unit) is local-disk fast;
- a failure at ``at`` kills the pilot's agent (SIGKILL to its process group),
  as a node that dies would.

The run is then read back from coordination like any other service
(`troy.cli.real_records`), with the workload's unit and pilot ids.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from troy.api.data_service import PilotDataService
from troy.api.objects import PilotJob
from troy.api.services import PilotJobService, WorkUnitService
from troy.cli.real_records import RealRecords, real_records
from troy.core.views import service_view
from troy.model.errors import BadDescription, Timeout
from troy.plugins.registry import open_coordination
from troy.sim.model import SimPilot, SimUnit, Workload

#: Sleeps the pilot's start delay, exports its speed and labels, then execs the agent.
PILOT_WRAPPER = (
    'sleep "$1"; TROY_SIM_SPEED="$2"; TROY_SIM_MACHINE="$3"; TROY_SIM_DATACENTER="$4";'
    ' export TROY_SIM_SPEED TROY_SIM_MACHINE TROY_SIM_DATACENTER; shift 4; exec "$@"'
)
#: Computes a unit's seconds: ARGV[1] its runtime, then (machine, datacenter, seconds) per input.
UNIT_SECONDS = (
    'BEGIN { speed = ENVIRON["TROY_SIM_SPEED"]; if (speed <= 0) speed = 1;'
    ' m = ENVIRON["TROY_SIM_MACHINE"]; d = ENVIRON["TROY_SIM_DATACENTER"];'
    " t = ARGV[1] / speed;"
    " for (i = 2; i + 2 < ARGC; i += 3) {"
    ' if (ARGV[i] != "" || m != "") near = (ARGV[i] != "" && ARGV[i] == m);'
    ' else near = (ARGV[i+1] != "" && ARGV[i+1] == d);'
    " if (!near) t += ARGV[i+2] }"
    ' printf "%.6f", t }'
)
#: The unit: sleeps what UNIT_SECONDS computes.
UNIT_SCRIPT = 'program=$1; shift; exec sleep "$(awk "$program" "$@")"'


@dataclass(frozen=True)
class RealRun:
    """One real run of a workload: its records and where they are kept."""

    result: RealRecords
    service: str
    #: The coordination URL without its secrets (it is recorded with the results).
    coordination: str
    #: Units not final when the run's time ran out (then canceled).
    timed_out: int


@dataclass(frozen=True)
class RealOptions:
    """How `troy compare --real` runs: its coordination (None: the default) and time limit."""

    coordination: str | None = None
    #: Seconds a run may take; then its units still not final are canceled.
    timeout: float = 3600.0


def check_real(workload: Workload) -> None:
    """BadDescription unless every pilot of ``workload`` can run on this machine."""
    for pilot in workload.pilots:
        if pilot.pj_type not in (None, "local"):
            raise BadDescription(
                f"pilots.{pilot.id}.pj_type",
                f"--real runs the workload's pilots on this machine (pj_type local);"
                f" {pilot.pj_type!r} is another backend",
            )
        if pilot.resource is None:
            continue
        parts = urlsplit(pilot.resource)
        if parts.scheme not in ("fork", "local") or parts.hostname not in (None, "localhost"):
            raise BadDescription(
                f"pilots.{pilot.id}.resource",
                f"--real runs the workload's pilots on this machine (fork://localhost);"
                f" {pilot.resource!r} is elsewhere",
            )


def _label(description: dict[str, Any], machine: str | None, datacenter: str | None) -> None:
    """Give ``description`` the affinity labels that are set."""
    if machine is not None:
        description["affinity_machine_label"] = machine
    if datacenter is not None:
        description["affinity_datacenter_label"] = datacenter


def pilot_description(pilot: SimPilot, directory: Path) -> dict[str, Any]:
    """The local pilot that plays ``pilot``: its wrapper, slots, labels, hints and wall time."""
    description: dict[str, Any] = {
        "number_of_processes": pilot.slots,
        "working_directory": str(directory),
        "executable": "/bin/sh",
        "arguments": [
            "-c",
            PILOT_WRAPPER,
            "troy-sim-pilot",
            repr(pilot.start_delay),
            repr(pilot.speed),
            pilot.machine or "",
            pilot.datacenter or "",
        ],
    }
    _label(description, pilot.machine, pilot.datacenter)
    if pilot.hints:
        description["hints"] = dict(pilot.hints)
    if pilot.wall_time is not None:
        description["wall_time_limit"] = (pilot.start_delay + pilot.wall_time) / 60.0
    return description


def unit_description(
    unit: SimUnit, workload: Workload, data_urls: Mapping[str, str]
) -> dict[str, Any]:
    """The work unit that plays ``unit``: a sleep of its runtime and emulated transfers.

    A unit whose workload entry gives an ``executable`` runs that instead (with
    the entry's other description attributes); its runtime is then its own.
    """
    stores = {store.id: store for store in workload.stores}
    arguments = ["-c", UNIT_SCRIPT, "troy-sim-unit", UNIT_SECONDS, repr(unit.runtime)]
    for data in unit.inputs:
        store = stores[data.store]
        seconds = workload.network.transfer_seconds(data.size)
        arguments += [store.machine or "", store.datacenter or "", repr(seconds)]
    description: dict[str, Any] = dict(unit.command or {})
    if "executable" not in description:
        description.update(executable="/bin/sh", arguments=arguments)
    description.update(name=unit.id, cores=unit.cores)
    if unit.after:
        description["after"] = list(unit.after)
    if unit.inputs:
        description["input_data"] = [data_urls[data.url] for data in unit.inputs]
    _label(description, unit.machine, unit.datacenter)
    if unit.hints:
        description["hints"] = dict(unit.hints)
    if unit.wall_time_limit is not None:
        description["wall_time_limit"] = unit.wall_time_limit
    if unit.total_cpu_time is not None:
        description["total_cpu_time"] = unit.total_cpu_time
    if unit.retries:
        description["retries"] = unit.retries
    return description


def make_inputs(workload: Workload, directory: Path, data: PilotDataService) -> dict[str, str]:
    """A Pilot-Data per store and a data unit per input of its size: input URL -> DU URL."""
    stores = {}
    for store in workload.stores:
        description: dict[str, Any] = {"service_url": str(directory / "stores" / store.id)}
        _label(description, store.machine, store.datacenter)
        stores[store.id] = data.create(description)
    files = directory / "files"
    urls: dict[str, str] = {}
    for unit in workload.units:
        for item in unit.inputs:
            path = files / f"{len(urls)}.dat"
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("wb") as out:
                out.truncate(item.size)  # sparse: the agent's copy reads it in full
            du = stores[item.store].submit_data_unit({"file_urls": [str(path)]})
            urls[item.url] = du.get_url()
    return urls


def submissions(workload: Workload) -> list[tuple[float, list[int]]]:
    """When to submit which units (by index): at their submit time, each after its ``after``.

    A unit submitted before a unit it waits for would name a unit troy does
    not know yet; it is submitted with it instead (it would wait anyway, as in
    the simulation), and within one submit after it.
    """
    units = workload.units
    index = {unit.id: i for i, unit in enumerate(units)}
    when: dict[int, tuple[float, int]] = {}  # unit -> (submit, depth in the dependencies)

    def resolve(start: int) -> tuple[float, int]:
        stack = [start]
        while stack:
            i = stack[-1]
            waiting = [index[d] for d in units[i].after if index[d] not in when]
            if waiting:
                stack.extend(waiting)  # the workload has no cycles (checked when read)
                continue
            stack.pop()
            parents = [when[index[d]] for d in units[i].after]
            submit = max([units[i].submit, *(p[0] for p in parents)])
            when[i] = (submit, 1 + max((p[1] for p in parents), default=-1))
        return when[start]

    order = sorted(range(len(units)), key=lambda i: (*resolve(i), i))
    batches: list[tuple[float, list[int]]] = []
    for i in order:
        at = when[i][0]
        if batches and batches[-1][0] == at:
            batches[-1][1].append(i)
        else:
            batches.append((at, [i]))
    return batches


def _kill_at(pilot: PilotJob, at: float, stop: threading.Event) -> None:
    """SIGKILL ``pilot``'s agent (its process group) at wall-clock time ``at``."""
    if stop.wait(max(0.0, at - time.time())):
        return
    pid = (pilot.handle or {}).get("pid")
    if isinstance(pid, int):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def run_real(
    workload: Workload,
    scheduler: str,
    options: Mapping[str, Any],
    directory: str | os.PathLike[str],
    coordination: str | None = None,
    timeout: float = 3600.0,
) -> RealRun:
    """Play ``workload`` for real with ``scheduler`` (``options`` as given, seed included)."""
    base = Path(directory)
    base.mkdir(parents=True, exist_ok=True)
    data = PilotDataService(coordination=coordination)
    pilots = PilotJobService(coordination=coordination)
    units = WorkUnitService(
        coordination=coordination, scheduler=scheduler, scheduler_options=dict(options)
    )
    stop = threading.Event()
    killers: list[threading.Thread] = []
    timed_out = 0
    try:
        data_urls = make_inputs(workload, base, data)
        descriptions = [unit_description(unit, workload, data_urls) for unit in workload.units]
        units.add(pilots)
        origin = time.time()
        made: dict[str, PilotJob] = {}
        for pilot in workload.pilots:
            made[pilot.id] = pilots.create(
                "fork://localhost", pilot_description(pilot, base / "pilots" / pilot.id)
            )
        for failure in workload.failures:
            thread = threading.Thread(
                target=_kill_at,
                args=(made[failure.pilot], origin + failure.at, stop),
                name=f"troy-sim-failure-{failure.pilot}",
                daemon=True,
            )
            thread.start()
            killers.append(thread)
        for at, batch in submissions(workload):
            time.sleep(max(0.0, origin + at - time.time()))
            units.submit([descriptions[i] for i in batch])
        try:
            units.wait(timeout=max(0.0, origin + timeout - time.time()))
        except Timeout:
            timed_out = sum(1 for unit in units.list() if not unit.state.is_final)
            units.cancel()
        pilot_ids = {pilot.id: pilot_id for pilot_id, pilot in made.items()}
    finally:
        stop.set()
        pilots.cancel()
        for thread in killers:
            thread.join()
        units.close()
        pilots.close()
        data.close()
    client = open_coordination(units.coordination)
    try:
        view = service_view(client, units.id)
        public = client.public_url()  # it is recorded with the results: no secret in it
    finally:
        client.close()
    entries = {unit.id: unit.name for unit in workload.units}
    result = real_records(view, origin, entries, pilot_ids)
    return RealRun(result, units.id, public, timed_out)
