"""The `condor` backend: the pilot's agent as an HTCondor glide-in job, through htcondor2.

Chosen with pj_type "condor" / PILOTJOB_TYPE.CONDOR, or by the URL's scheme:
``condor://`` (this host's schedd) or ``condor://HOST[:PORT][?schedd=NAME]``
(a schedd found through the pool's collector at HOST:PORT); ``?universe=grid
&grid_resource=...`` submits to the grid universe (see condor_submit.py and
docs/backends.md).

The job is ``/bin/sh`` running the bootstrap (troy.plugins.backends.bootstrap),
which execs the agent; the pilot description becomes the submit description
and job ads become pilot states in condor_submit.py (pure).  A job that has
left the queue is looked up in the schedd's history.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

from troy.model.description import PilotJobDescription
from troy.model.errors import BackendError
from troy.model.private import private_mkdir
from troy.model.states import State
from troy.plugins.backends import bootstrap
from troy.plugins.backends.base import PilotLaunch
from troy.plugins.backends.batch import BatchBackend, first_line
from troy.plugins.backends.condor_submit import (
    UNIVERSES,
    CondorTarget,
    ad_text,
    job_state,
    parse_condor_url,
    pick_schedd,
    submit_description,
)
from troy.plugins.options import Option, choice, text

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


def _bindings() -> Any:
    """htcondor2, imported on first use (it is an optional dependency)."""
    try:
        # Imported by name: the bindings carry no type information (no py.typed).
        return importlib.import_module("htcondor2")
    except ImportError as exc:
        raise BackendError(
            "the condor backend needs the HTCondor bindings: pip install 'troy[condor]'"
        ) from exc


class CondorBackend(BatchBackend):
    """Submits the agent as an HTCondor glide-in job to the schedd the URL names."""

    name: ClassVar[str] = "condor"
    schemes: ClassVar[tuple[str, ...]] = ("condor",)
    capabilities: ClassVar[frozenset[str]] = frozenset()
    option_specs: ClassVar[Mapping[str, Option]] = MappingProxyType(
        {
            "schedd": Option(
                None,
                "the schedd's Name, asked of the pool's collector (needs a host in the URL);"
                " else the schedd on that host, else the pool's only one",
                text(),
            ),
            "universe": Option(
                "vanilla",
                "the universe the glide-in runs in (grid if grid_resource is given)",
                choice(*UNIVERSES, ignore_case=True),
            ),
            "grid_resource": Option(
                None, "the grid universe's grid_resource, e.g. 'batch slurm'", text()
            ),
        }
    )
    state_cache: ClassVar[float] = 2.0
    missing_job: ClassVar[str] = (
        "job {cluster} is in neither the queue nor the history of the schedd"
    )

    #: (URL, schedd name asked for) -> (htcondor2.Schedd, its Name; None for the local one)
    _schedds: ClassVar[dict[tuple[str, str | None], tuple[Any, str | None]]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, rm: str, context: Any = None) -> None:
        super().__init__(rm, context)
        self.target: CondorTarget = parse_condor_url(rm)

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
                f"no HTCondor schedd reachable at {self.rm} ({first_line(exc)}): is condor_schedd"
                " running on this host? Set CONDOR_CONFIG to your pool's configuration, or name"
                " the pool's collector: condor://central-manager[:port][?schedd=NAME]"
            )
        return BackendError(
            f"no HTCondor collector reachable at {self.target.collector} for {self.rm}"
            f" ({first_line(exc)}): is it the pool's central manager, and may this host query it?"
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
                located = htcondor2.Schedd(ad), ad_text(ad, "Name") or None
        except htcondor2.HTCondorException as exc:
            raise self._unreachable(exc) from exc
        with self._lock:
            self._schedds[key] = located
        return located

    def _forget(self, name: str | None) -> None:
        """Drop a located schedd (its address may have changed); locate it again next time."""
        with self._lock:
            self._schedds.pop((self.rm, name), None)

    # -- the template's hooks -----------------------------------------------------------
    def ship_wheel(self, launch: PilotLaunch, wheel: bootstrap.Wheel) -> str:
        """``./NAME``: `submit` transfers the wheels into the job's scratch directory."""
        return f"./{wheel.path.name}"

    def submit(
        self, launch: PilotLaunch, arguments: list[str], wheels: Sequence[Path]
    ) -> dict[str, Any]:
        description = submit_description(launch, arguments, self.target, wheels)
        try:  # initialdir: the submit side writes agent.out/err/log there
            private_mkdir(launch.working_directory)
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
                f"HTCondor could not submit the agent to {self.rm}: {first_line(exc)}"
            ) from exc
        return {"cluster": cluster, "schedd": name}

    def query(self, handle: dict[str, Any], look_back: bool) -> Mapping[str, Any] | None:
        """The job's ClassAd from the queue, else (``look_back``) from the history, or None."""
        name: str | None = handle.get("schedd")
        cluster = int(handle["cluster"])
        htcondor2 = _bindings()
        schedd = self._schedd(name)[0]
        constraint = f"ClusterId == {cluster} && ProcId == 0"
        try:
            ads = schedd.query(constraint, JOB_PROJECTION)
            if not ads and look_back:
                ads = schedd.history(constraint, JOB_PROJECTION, match=1)
        except htcondor2.HTCondorException as exc:
            self._forget(name)
            raise BackendError(
                f"cannot ask the schedd of {self.rm} about job {cluster}: {first_line(exc)}"
            ) from exc
        return ads[0] if ads else None

    def remove(self, handle: dict[str, Any]) -> None:
        cluster = int(handle["cluster"])
        htcondor2 = _bindings()
        try:
            self._schedd(handle.get("schedd"))[0].act(
                htcondor2.JobAction.Remove, f"ClusterId == {cluster}", reason=CANCEL_REASON
            )
        except htcondor2.HTCondorException as exc:
            raise BackendError(
                f"cannot remove job {cluster} from the schedd of {self.rm}: {first_line(exc)}"
            ) from exc

    def job_state(self, record: Any) -> tuple[State, str]:
        return job_state(record)
