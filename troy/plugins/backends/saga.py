"""The `saga` backend: BigJob's own way, the agent as one job through radical.saga.

Chosen with pj_type "saga" / "bigjob" / PILOTJOB_TYPE.BIGJOB, or by the URL's
scheme: ``ssh://``, ``slurm://``, ``pbs://``, ``pbspro://``, ``torque://``,
``sge://``, ``lsf://`` and their ``+ssh`` forms (the resource manager is
reached through ssh).  ``fork://localhost`` works too when the pj_type is
given (by scheme alone fork:// is the local backend).

The pilot description becomes a SAGA job description (processes, wall time,
queue, project, candidate hosts, memory ...); the job runs the bootstrap (see
troy.plugins.backends.bootstrap), which execs the agent in the pilot's working
directory.  The agent's stdout/stderr are ``agent.out``/``agent.err`` there.

SAGA job states map to pilot states: New/Pending/Suspended = Pending,
Running = Running, Failed = Failed with the tail of ``agent.err``, and
Canceled by the resource manager = Done with "wall time limit reached" when
the job's wall time had run out (SLURM reports a timeout as a cancel), else
Canceled.  The agent also stops itself shortly before its wall time.
"""

from __future__ import annotations

import contextlib
import math
import os
import shlex
import threading
import time
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

from troy.model import config
from troy.model.description import PilotJobDescription
from troy.model.errors import BackendError
from troy.model.states import State
from troy.plugins.backends import bootstrap
from troy.plugins.backends.base import Backend, PilotLaunch

_BATCH_SCHEMES = ("slurm", "pbs", "pbspro", "torque", "sge", "lsf")
#: Schemes whose jobs are started by a batch system (they need a queue on SLURM).
BATCH_SCHEMES = frozenset((*_BATCH_SCHEMES, *(f"{s}+ssh" for s in _BATCH_SCHEMES)))
#: Seconds cancel gives the agent to stop by itself (it was asked to) before the job is killed.
CANCEL_GRACE = 8.0
#: Seconds a job's SAGA state is cached (each query is a round trip to the resource).
STATE_CACHE = 1.0
#: Seconds of slack when telling a wall-time end from a cancel.
_WALL_TIME_SLACK = 5.0

_SAGA_TO_TROY = {
    "New": State.Pending,
    "Pending": State.Pending,
    "Suspended": State.Pending,
    "Running": State.Running,
    "Done": State.Done,
    "Failed": State.Failed,
    "Canceled": State.Canceled,
}


def _saga() -> Any:
    """radical.saga, imported on first use (it is an optional dependency, slow to import).

    Its log files go to ``$TROY_HOME/logs`` rather than the current directory,
    unless ``$RADICAL_DEFAULT_LOG_DIR`` says otherwise.
    """
    if "RADICAL_DEFAULT_LOG_DIR" not in os.environ:
        logs = config.troy_home() / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        os.environ["RADICAL_DEFAULT_LOG_DIR"] = str(logs)
    try:
        import radical.saga as rs
    except ImportError as exc:
        raise BackendError("the saga backend needs radical.saga: pip install 'troy[saga]'") from exc
    return rs


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:500]


def files_url(rm: str) -> str:
    """Where the resource's files are reached from here: sftp:// for ssh forms, else local."""
    parts = urlsplit(rm)
    scheme = parts.scheme.lower()
    if scheme == "ssh" or scheme.endswith("+ssh"):
        return f"sftp://{parts.netloc}"
    return "file://localhost"


@dataclass
class _Connection:
    """One SAGA job service (costly to open: seconds) shared by the pilots of one URL."""

    service: Any
    lock: threading.Lock


class SagaBackend(Backend):
    """Submits the agent as a SAGA job to the resource manager the URL names."""

    name: ClassVar[str] = "saga"
    schemes: ClassVar[tuple[str, ...]] = ("ssh", *sorted(BATCH_SCHEMES))
    capabilities: ClassVar[frozenset[str]] = frozenset({"mpi"})

    _connections: ClassVar[dict[tuple[str, int], _Connection]] = {}
    _connections_lock: ClassVar[threading.Lock] = threading.Lock()
    #: job id -> (when asked, state, saga job object)
    _states: ClassVar[dict[str, tuple[float, str, Any]]] = {}

    def __init__(self, rm: str, context: Any = None) -> None:
        super().__init__(rm, context)
        scheme = urlsplit(rm).scheme.lower()
        if scheme not in (*self.schemes, "fork", "local"):
            raise BackendError(
                f"the saga backend does not take '{scheme}://' URLs ({rm}); it takes"
                f" fork, {', '.join(self.schemes)}"
            )
        self.batch = scheme in BATCH_SCHEMES
        self.scheme = scheme

    # -- checks before anything is recorded --------------------------------------------
    def check(self, description: PilotJobDescription) -> None:
        if self.scheme.startswith("slurm") and not description.queue:
            raise BackendError(
                f"a slurm pilot needs a queue (the SLURM partition) in its description ({self.rm})"
            )

    # -- SAGA plumbing ----------------------------------------------------------------
    def _connection(self) -> _Connection:
        key = (self.rm, id(self.context))
        with self._connections_lock:
            connection = self._connections.get(key)
            if connection is None:
                rs = _saga()
                try:
                    if self.context is not None:
                        session = rs.Session()
                        session.add_context(self.context)
                        service = rs.job.Service(self.rm, session=session)
                    else:
                        service = rs.job.Service(self.rm)
                except Exception as exc:
                    raise BackendError(
                        f"cannot open a SAGA job service for {self.rm}: {_first_line(exc)}"
                    ) from exc
                connection = _Connection(service, threading.Lock())
                self._connections[key] = connection
            return connection

    def _job(self, job_id: str) -> Any:
        cached = self._states.get(job_id)
        if cached is not None:
            return cached[2]
        connection = self._connection()
        with connection.lock:
            try:
                return connection.service.get_job(job_id)
            except Exception as exc:
                raise BackendError(f"cannot find job {job_id}: {_first_line(exc)}") from exc

    def _saga_state(self, job_id: str, fresh: bool = False) -> str:
        cached = self._states.get(job_id)
        now = time.monotonic()
        if cached is not None and not fresh and now - cached[0] < STATE_CACHE:
            return cached[1]
        job = self._job(job_id)
        connection = self._connection()
        with connection.lock:
            try:
                state = str(job.state)
            except Exception as exc:
                raise BackendError(f"cannot get the state of {job_id}: {_first_line(exc)}") from exc
        self._states[job_id] = (now, state, job)
        return state

    # -- the contract -------------------------------------------------------------------
    def job_description(self, launch: PilotLaunch, arguments: list[str]) -> Any:
        """The SAGA job description that runs ``/bin/sh arguments`` for this pilot."""
        rs = _saga()
        pilot = launch.description
        jd = rs.job.Description()
        jd.name = launch.pilot_id
        jd.executable = "/bin/sh"
        # SAGA joins arguments into a shell command line as they are: quote them here.
        jd.arguments = [shlex.quote(argument) for argument in arguments]
        jd.working_directory = launch.working_directory
        jd.output = "agent.out"
        jd.error = "agent.err"
        if launch.environment:
            jd.environment = dict(launch.environment)
        if not self.batch:
            return jd  # fork/ssh start one process: the agent sizes its slots itself
        processes = pilot.number_of_processes or 1
        jd.number_of_processes = processes
        jd.total_cpu_count = pilot.total_cpu_count or processes
        if pilot.processes_per_host:
            jd.processes_per_host = pilot.processes_per_host
        if pilot.wall_time_limit:
            jd.wall_time_limit = math.ceil(pilot.wall_time_limit)
        for name in ("queue", "project", "candidate_hosts", "operating_system_type"):
            value = getattr(pilot, name)
            if value:
                setattr(jd, name, value)
        if pilot.total_physical_memory:
            jd.total_physical_memory = pilot.total_physical_memory
        if pilot.total_cpu_time:
            jd.total_cpu_time = int(pilot.total_cpu_time)
        if pilot.cpu_architecture:
            jd.system_architecture = {"cpu": pilot.cpu_architecture}
        return jd

    def _bootstrap_arguments(self, launch: PilotLaunch) -> list[str]:
        """``-c SCRIPT troy-bootstrap MODE ...``: the bootstrap, then the agent's argv."""
        python = bootstrap.agent_python(launch.description.agent_python)
        if python is not None:
            return bootstrap.use_arguments(python, launch.agent_command)
        wheel = bootstrap.troy_wheel()
        staging = f"{launch.working_directory}/{bootstrap.STAGING_DIRECTORY}/{wheel.digest}"
        self._stage(wheel.path.as_uri().replace("file:///", "file://localhost/"), staging)
        return bootstrap.ship_arguments(
            launch.working_directory, wheel, f"{staging}/{wheel.path.name}", launch.agent_command
        )

    def _stage(self, source: str, directory: str) -> None:
        """Copy one file into ``directory`` on the resource, unless it is there already."""
        rs = _saga()
        name = source.rsplit("/", 1)[1]
        try:
            target = rs.filesystem.Directory(
                f"{files_url(self.rm)}{directory}", rs.filesystem.CREATE_PARENTS
            )
            try:
                if not target.exists(name):
                    target.copy(source, name)
            finally:
                target.close()
        except Exception as exc:
            raise BackendError(
                f"cannot copy {name} to {directory} on {self.rm}: {_first_line(exc)}"
            ) from exc

    def launch(self, launch: PilotLaunch) -> dict[str, Any]:
        jd = self.job_description(launch, self._bootstrap_arguments(launch))
        connection = self._connection()
        with connection.lock:
            try:
                job = connection.service.create_job(jd)
                job.run()
                job_id = str(job.id)
            except Exception as exc:
                raise BackendError(
                    f"SAGA could not submit the agent to {self.rm}: {_first_line(exc)}"
                ) from exc
        self._states[job_id] = (0.0, "Pending", job)
        return {
            "job_id": job_id,
            "working_directory": launch.working_directory,
            "submitted": time.time(),
            "wall_time_limit": launch.description.wall_time_limit,
        }

    def _error_tail(self, handle: dict[str, Any], limit: int = 2000) -> str:
        """The end of the agent's stderr on the resource, or "" if it cannot be read."""
        rs = _saga()
        url = f"{files_url(self.rm)}{handle['working_directory']}/agent.err"
        try:
            remote = rs.filesystem.File(url)
            try:
                text = remote.read()
            finally:
                remote.close()
        except Exception:
            return ""
        if isinstance(text, bytes):
            text = text.decode(errors="replace")
        return str(text).strip()[-limit:]

    def state(self, handle: dict[str, Any]) -> tuple[State, str]:
        saga_state = self._saga_state(handle["job_id"])
        state = _SAGA_TO_TROY.get(saga_state, State.Unknown)
        if state == State.Pending and saga_state == "Suspended":
            return state, "suspended by the resource manager"
        if state == State.Failed:
            reason = self._error_tail(handle) or "no output on stderr"
            return state, f"agent job failed: {reason}"
        if state == State.Canceled:
            limit = handle.get("wall_time_limit")
            ran = time.time() - handle.get("submitted", time.time())
            if limit and ran >= limit * 60 - _WALL_TIME_SLACK:
                return State.Done, f"wall time limit of {limit:g} min reached"
            return state, "the resource manager canceled the agent job"
        if state == State.Done:
            return State.Failed, "agent job ended without the agent reporting its end"
        return state, ""

    def cancel(self, handle: dict[str, Any]) -> None:
        job_id = handle["job_id"]
        # The agent was asked to stop (it ends its units and reports): give it the time.
        deadline = time.monotonic() + CANCEL_GRACE
        while time.monotonic() < deadline:
            if _SAGA_TO_TROY.get(self._saga_state(job_id, fresh=True), State.Unknown).is_final:
                return
            time.sleep(0.2)
        job = self._job(job_id)
        connection = self._connection()
        # An error here means the job already ended: nothing to cancel.
        with connection.lock, contextlib.suppress(Exception):
            job.cancel()
        self._states.pop(job_id, None)
