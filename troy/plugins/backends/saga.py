"""The `saga` backend: BigJob's own way, the agent as one job through radical.saga.

Chosen with pj_type "saga" / "bigjob" / PILOTJOB_TYPE.BIGJOB, or by the URL's
scheme: ``ssh://``, ``slurm://``, ``pbs://``, ``pbspro://``, ``torque://``,
``sge://``, ``lsf://`` and their ``+ssh`` forms (the resource manager is
reached through ssh).  ``fork://localhost`` works too when the pj_type is
given (by scheme alone fork:// is the local backend).

The pilot description becomes a SAGA job description, and SAGA job states
become pilot states, in saga_mapping.py; the job runs the bootstrap (see
troy.plugins.backends.bootstrap), which execs the agent in the pilot's working
directory.  The agent's stdout/stderr are ``agent.out``/``agent.err`` there.
A Canceled job whose wall time had run out is Done (SLURM reports a timeout
as a cancel).  The agent also stops itself shortly before its wall time.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from troy.model import config
from troy.model.description import PilotJobDescription
from troy.model.errors import BackendError
from troy.model.private import private_mkdir
from troy.model.states import FINAL_STATES, State
from troy.plugins.backends import bootstrap
from troy.plugins.backends.base import PilotLaunch
from troy.plugins.backends.batch import ERROR_TAIL, BatchBackend, first_line
from troy.plugins.backends.saga_mapping import (
    AGENT_ERROR,
    SCHEMES,
    check_description,
    files_url,
    job_attributes,
    job_state,
    saga_scheme,
)


def _saga() -> Any:
    """radical.saga, imported on first use (it is an optional dependency, slow to import).

    Its log files go to ``$TROY_HOME/logs`` rather than the current directory,
    unless ``$RADICAL_DEFAULT_LOG_DIR`` says otherwise.
    """
    if "RADICAL_DEFAULT_LOG_DIR" not in os.environ:
        logs = config.troy_home() / "logs"
        private_mkdir(logs)
        os.environ["RADICAL_DEFAULT_LOG_DIR"] = str(logs)
    try:
        import radical.saga as rs
    except ImportError as exc:
        raise BackendError("the saga backend needs radical.saga: pip install 'troy[saga]'") from exc
    return rs


@dataclass
class _Connection:
    """One SAGA job service (costly to open: seconds) shared by the pilots of one URL."""

    service: Any
    lock: threading.Lock


class SagaBackend(BatchBackend):
    """Submits the agent as a SAGA job to the resource manager the URL names."""

    name: ClassVar[str] = "saga"
    schemes: ClassVar[tuple[str, ...]] = SCHEMES
    capabilities: ClassVar[frozenset[str]] = frozenset({"mpi"})
    cancel_poll: ClassVar[float] = 0.2
    #: Any job not yet final gets cancel's grace, a queued one too.
    cancel_waits_for: ClassVar[frozenset[State]] = frozenset(State) - FINAL_STATES
    timeout_is_cancel: ClassVar[bool] = True

    _connections: ClassVar[dict[tuple[str, int], _Connection]] = {}
    _connections_lock: ClassVar[threading.Lock] = threading.Lock()
    #: job id -> its SAGA job object (found again through the job service otherwise)
    _jobs: ClassVar[dict[str, Any]] = {}

    def __init__(self, rm: str, context: Any = None) -> None:
        super().__init__(rm, context)
        saga_scheme(rm)

    def check(self, description: PilotJobDescription) -> None:
        check_description(self.rm, description)

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
                        f"cannot open a SAGA job service for {self.rm}: {first_line(exc)}"
                    ) from exc
                connection = _Connection(service, threading.Lock())
                self._connections[key] = connection
            return connection

    def _job(self, job_id: str) -> Any:
        job = self._jobs.get(job_id)
        if job is not None:
            return job
        connection = self._connection()
        with connection.lock:
            try:
                job = connection.service.get_job(job_id)
            except Exception as exc:
                raise BackendError(f"cannot find job {job_id}: {first_line(exc)}") from exc
        self._jobs[job_id] = job
        return job

    def job_description(self, launch: PilotLaunch, arguments: list[str]) -> Any:
        """The SAGA job description that runs ``/bin/sh arguments`` for this pilot."""
        jd = _saga().job.Description()
        for name, value in job_attributes(launch, arguments).items():
            setattr(jd, name, value)
        return jd

    # -- the template's hooks -----------------------------------------------------------
    def ship_wheel(self, launch: PilotLaunch, wheel: bootstrap.Wheel) -> str:
        """Copy the wheel to ``WORKDIR/.troy/DIGEST/`` on the resource (SFTP for ssh forms)."""
        staging = f"{launch.working_directory}/{bootstrap.STAGING_DIRECTORY}/{wheel.digest}"
        self._stage(wheel.path.as_uri().replace("file:///", "file://localhost/"), staging)
        return f"{staging}/{wheel.path.name}"

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
                f"cannot copy {name} to {directory} on {self.rm}: {first_line(exc)}"
            ) from exc

    def submit(
        self, launch: PilotLaunch, arguments: list[str], wheels: Sequence[Path]
    ) -> dict[str, Any]:
        jd = self.job_description(launch, arguments)
        connection = self._connection()
        with connection.lock:
            try:
                job = connection.service.create_job(jd)
                job.run()
                job_id = str(job.id)
            except Exception as exc:
                raise BackendError(
                    f"SAGA could not submit the agent to {self.rm}: {first_line(exc)}"
                ) from exc
        self._jobs[job_id] = job
        return {"job_id": job_id}

    def query(self, handle: dict[str, Any], look_back: bool) -> str:
        job_id = handle["job_id"]
        job = self._job(job_id)
        connection = self._connection()
        with connection.lock:
            try:
                return str(job.state)
            except Exception as exc:
                raise BackendError(f"cannot get the state of {job_id}: {first_line(exc)}") from exc

    def remove(self, handle: dict[str, Any]) -> None:
        job = self._job(handle["job_id"])
        connection = self._connection()
        # An error here means the job already ended: nothing to cancel.
        with connection.lock, contextlib.suppress(Exception):
            job.cancel()
        self._jobs.pop(handle["job_id"], None)

    def job_state(self, record: Any) -> tuple[State, str]:
        return job_state(str(record))

    def error_tail(self, handle: dict[str, Any]) -> str:
        """The end of the agent's stderr on the resource (through SAGA), or "" if unreadable."""
        if not handle.get("working_directory"):
            return ""
        rs = _saga()
        url = f"{files_url(self.rm)}{handle['working_directory']}/{AGENT_ERROR}"
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
        return str(text).strip()[-ERROR_TAIL:]
