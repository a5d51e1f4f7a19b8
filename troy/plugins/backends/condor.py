"""The `condor` backend: the pilot's agent as an HTCondor glide-in job, through htcondor2.

Chosen with pj_type "condor" / PILOTJOB_TYPE.CONDOR, or by the URL's scheme:
``condor://`` (this host's schedd) or ``condor://HOST[:PORT][?schedd=NAME]``
(a schedd found through the pool's collector at HOST:PORT); ``?universe=grid
&grid_resource=...`` submits to the grid universe (see condor_submit.py and
docs/backends.md).

The job is ``/bin/sh`` running the bootstrap (troy.plugins.backends.bootstrap),
which execs the agent; the pilot description becomes the submit description
(condor_submit.submit_description).  Job states map to pilot states in
`job_state`; a job that has left the queue is looked up in the schedd's history.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from troy.model.description import PilotJobDescription
from troy.model.errors import BackendError
from troy.model.states import State
from troy.plugins.backends import bootstrap
from troy.plugins.backends.base import Backend, PilotLaunch
from troy.plugins.backends.condor_submit import (
    AGENT_ERROR,
    WALL_TIME_REASON,
    CondorTarget,
    parse_condor_url,
    submit_description,
)
from troy.plugins.backends.local import stderr_tail

#: Seconds cancel gives the agent to stop by itself (it was asked to) before the job is removed.
CANCEL_GRACE = 8.0
#: Seconds a job's ClassAd is cached by state() (each query is a round trip to the schedd).
STATE_CACHE = 2.0
#: The job attributes state() reads.
JOB_PROJECTION = [
    "ClusterId",
    "ProcId",
    "JobStatus",
    "HoldReason",
    "RemoveReason",
    "ExitCode",
    "ExitBySignal",
    "ExitSignal",
]
#: The reason cancel gives the schedd; it ends up in the job's RemoveReason.
CANCEL_REASON = "troy: pilot canceled"

IDLE, RUNNING, REMOVED, COMPLETED, HELD, TRANSFERRING_OUTPUT, SUSPENDED = range(1, 8)
_FINAL = (REMOVED, COMPLETED)


def _bindings() -> Any:
    """htcondor2, imported on first use (it is an optional dependency)."""
    try:
        # Imported by name: the bindings carry no type information (no py.typed).
        return importlib.import_module("htcondor2")
    except ImportError as exc:
        raise BackendError(
            "the condor backend needs the HTCondor bindings: pip install 'troy[condor]'"
        ) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:500]


def _text(ad: Mapping[str, Any], name: str) -> str:
    value = ad.get(name)
    return value.strip() if isinstance(value, str) else ""


def _integer(ad: Mapping[str, Any], name: str) -> int | None:
    value = ad.get(name)
    # Exactly int: classad2 reads undefined and error as Value members, an IntEnum (2 and 1).
    return value if type(value) is int else None


def job_state(ad: Mapping[str, Any], agent_err: str | None = None) -> tuple[State, str]:
    """The pilot state, and a detail, for a job's ClassAd (a classad2.ClassAd or a dict).

    Idle, Held (with its HoldReason) and Suspended are Pending; Running and
    Transferring output are Running; Removed is Done at the wall time (troy's
    periodic_remove says so in RemoveReason), else Canceled; Completed is
    Failed, since the agent reports its own end and this is read only when it
    did not: with the exit code and the tail of ``agent_err`` (a local path,
    read if it exists).
    """
    status = _integer(ad, "JobStatus")
    if status == IDLE:
        return State.Pending, "idle: waiting for a matching slot"
    if status in (RUNNING, TRANSFERRING_OUTPUT):
        return State.Running, ""
    if status == HELD:
        return State.Pending, f"held: {_text(ad, 'HoldReason') or 'no reason given'}"
    if status == SUSPENDED:
        return State.Pending, "suspended by HTCondor"
    if status == REMOVED:
        reason = _text(ad, "RemoveReason")
        if reason.startswith(WALL_TIME_REASON):
            return State.Done, reason.removeprefix("troy: ")
        return State.Canceled, f"the agent job was removed: {reason or 'no reason given'}"
    if status == COMPLETED:
        if ad.get("ExitBySignal") is True:
            how = f"killed by signal {_integer(ad, 'ExitSignal')}"
        else:
            how = f"exit code {_integer(ad, 'ExitCode')}"
        detail = f"agent job ended without the agent reporting its end ({how})"
        tail = stderr_tail(agent_err) if agent_err else ""
        return State.Failed, f"{detail}: {tail}" if tail else detail
    return State.Unknown, f"unknown JobStatus {ad.get('JobStatus')!r}"


def pick_schedd(ads: list[Any], host: str | None, where: str) -> Any:
    """The schedd ad among a collector's ``ads`` that runs on ``host``, else the only one."""
    if not ads:
        raise BackendError(f"the collector at {where} knows no schedd")
    if host:
        wanted = host.lower()

        def on_host(ad: Any) -> bool:
            names = [_text(ad, "Name").lower(), _text(ad, "Machine").lower()]
            return any(n == wanted or n.startswith(wanted + ".") for n in names if n)

        matching = [ad for ad in ads if on_host(ad)]
        if len(matching) == 1:
            return matching[0]
        if matching:
            ads = matching
    if len(ads) == 1:
        return ads[0]
    names = ", ".join(sorted(_text(ad, "Name") for ad in ads))
    raise BackendError(
        f"the collector at {where} knows several schedds ({names}): name one with ?schedd=NAME"
    )


class CondorBackend(Backend):
    """Submits the agent as an HTCondor glide-in job to the schedd the URL names."""

    name: ClassVar[str] = "condor"
    schemes: ClassVar[tuple[str, ...]] = ("condor",)
    capabilities: ClassVar[frozenset[str]] = frozenset()

    #: (URL, schedd name asked for) -> (htcondor2.Schedd, its Name; None for the local one)
    _schedds: ClassVar[dict[tuple[str, str | None], tuple[Any, str | None]]] = {}
    #: (URL, schedd name, cluster) -> (when asked, the job's ad or None if gone)
    _ads: ClassVar[dict[tuple[str, str | None, int], tuple[float, Mapping[str, Any] | None]]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, rm: str, context: Any = None) -> None:
        super().__init__(rm, context)
        self.target: CondorTarget = parse_condor_url(rm)

    # -- checks before anything is recorded --------------------------------------------
    def check(self, description: PilotJobDescription) -> None:
        processes = description.number_of_processes or 1
        per_host = description.processes_per_host
        if per_host and per_host < processes:
            raise BackendError(
                f"processes_per_host: a condor glide-in is one job on one machine; it cannot"
                f" spread {processes} processes {per_host} per host ({self.rm})"
            )

    # -- finding the schedd -------------------------------------------------------------
    def _unreachable(self, exc: BaseException) -> BackendError:
        if self.target.collector is None:
            return BackendError(
                f"no HTCondor schedd reachable at {self.rm} ({_first_line(exc)}): is condor_schedd"
                " running on this host? Set CONDOR_CONFIG to your pool's configuration, or name"
                " the pool's collector: condor://central-manager[:port][?schedd=NAME]"
            )
        return BackendError(
            f"no HTCondor collector reachable at {self.target.collector} for {self.rm}"
            f" ({_first_line(exc)}): is it the pool's central manager, and may this host query it?"
        )

    def _schedd(self, name: str | None) -> tuple[Any, str | None]:
        """The htcondor2.Schedd named ``name`` (None: the URL's choice), and its Name.

        Located once per process; `_forget` makes the next call locate it again.
        """
        key = (self.rm, name)
        with self._lock:
            cached = self._schedds.get(key)
        if cached is not None:
            return cached
        htcondor2 = _bindings()
        target = self.target
        located: tuple[Any, str | None]
        try:
            if target.collector is None:
                located = htcondor2.Schedd(), None
            else:
                collector = htcondor2.Collector(target.collector)
                wanted = name or target.schedd
                if wanted:
                    ad = collector.locate(htcondor2.DaemonType.Schedd, wanted)
                    if ad is None:
                        raise BackendError(
                            f"the collector at {target.collector} knows no schedd named"
                            f" '{wanted}' ({self.rm})"
                        )
                else:
                    ads = collector.locateAll(htcondor2.DaemonType.Schedd)
                    ad = pick_schedd(list(ads), target.host, target.collector)
                located = htcondor2.Schedd(ad), _text(ad, "Name") or None
        except htcondor2.HTCondorException as exc:
            raise self._unreachable(exc) from exc
        with self._lock:
            self._schedds[key] = located
        return located

    def _forget(self, name: str | None) -> None:
        """Drop a located schedd (its address may have changed); locate it again next time."""
        with self._lock:
            self._schedds.pop((self.rm, name), None)

    # -- the contract -------------------------------------------------------------------
    def bootstrap_arguments(self, launch: PilotLaunch) -> tuple[list[str], Path | None]:
        """The bootstrap's ``/bin/sh`` arguments, and the wheel to transfer (ship mode) or None."""
        python = bootstrap.agent_python(launch.description.agent_python)
        if python is not None:
            return bootstrap.use_arguments(python, launch.agent_command), None
        wheel = bootstrap.troy_wheel()
        # The wheel is transferred into the job's scratch directory, its working directory.
        arguments = bootstrap.ship_arguments(
            launch.working_directory, wheel, f"./{wheel.path.name}", launch.agent_command
        )
        return arguments, wheel.path

    def launch(self, launch: PilotLaunch) -> dict[str, Any]:
        arguments, wheel = self.bootstrap_arguments(launch)
        description = submit_description(launch, arguments, self.target, wheel)
        try:  # initialdir: the submit side writes agent.out/err/log there
            Path(launch.working_directory).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BackendError(
                f"cannot prepare pilot directory {launch.working_directory}: {exc}"
            ) from exc
        htcondor2 = _bindings()
        schedd, name = self._schedd(None)
        try:
            result = schedd.submit(htcondor2.Submit(description))
            cluster = int(result.cluster())
        except Exception as exc:  # HTCondorException, and what Submit raises on bad input
            self._forget(None)
            raise BackendError(
                f"HTCondor could not submit the agent to {self.rm}: {_first_line(exc)}"
            ) from exc
        return {
            "cluster": cluster,
            "schedd": name,
            "working_directory": launch.working_directory,
            "submitted": time.time(),
            "wall_time_limit": launch.description.wall_time_limit,
        }

    def _job_ad(
        self, handle: dict[str, Any], fresh: bool, history: bool = True
    ) -> Mapping[str, Any] | None:
        """The job's ClassAd from the queue, else (``history``) from the history, or None.

        What state() reads is cached for STATE_CACHE seconds, unless ``fresh``.
        """
        name: str | None = handle.get("schedd")
        cluster = int(handle["cluster"])
        key = (self.rm, name, cluster)
        with self._lock:
            cached = self._ads.get(key)
        if cached is not None and not fresh and time.monotonic() - cached[0] < STATE_CACHE:
            return cached[1]
        htcondor2 = _bindings()
        schedd = self._schedd(name)[0]
        constraint = f"ClusterId == {cluster} && ProcId == 0"
        try:
            ads = schedd.query(constraint, JOB_PROJECTION)
            if not ads and history:
                ads = schedd.history(constraint, JOB_PROJECTION, match=1)
        except htcondor2.HTCondorException as exc:
            self._forget(name)
            raise BackendError(
                f"cannot ask the schedd of {self.rm} about job {cluster}: {_first_line(exc)}"
            ) from exc
        ad = ads[0] if ads else None
        if history:
            with self._lock:
                self._ads[key] = (time.monotonic(), ad)
        return ad

    def state(self, handle: dict[str, Any]) -> tuple[State, str]:
        ad = self._job_ad(handle, fresh=False)
        if ad is None:
            return State.Unknown, (
                f"job {handle['cluster']} is in neither the queue nor the history of the schedd"
            )
        agent_err = f"{handle['working_directory']}/{AGENT_ERROR}"
        return job_state(ad, agent_err)

    def cancel(self, handle: dict[str, Any]) -> None:
        cluster = int(handle["cluster"])
        # The agent was asked to stop (it ends its units and reports): give a running one time.
        deadline = time.monotonic() + CANCEL_GRACE
        while True:
            ad = self._job_ad(handle, fresh=True, history=False)
            status = None if ad is None else _integer(ad, "JobStatus")
            if status is None or status in _FINAL:
                return
            if status not in (RUNNING, TRANSFERRING_OUTPUT) or time.monotonic() >= deadline:
                break
            time.sleep(0.5)
        htcondor2 = _bindings()
        name: str | None = handle.get("schedd")
        try:
            self._schedd(name)[0].act(
                htcondor2.JobAction.Remove, f"ClusterId == {cluster}", reason=CANCEL_REASON
            )
        except htcondor2.HTCondorException as exc:
            # Gone in the meantime is what was asked for; anything else is an error.
            with contextlib.suppress(BackendError):
                ad = self._job_ad(handle, fresh=True, history=False)
                if ad is None or _integer(ad, "JobStatus") in _FINAL:
                    return
            raise BackendError(
                f"cannot remove job {cluster} from the schedd of {self.rm}: {_first_line(exc)}"
            ) from exc
        with self._lock:
            self._ads.pop((self.rm, name, cluster), None)
