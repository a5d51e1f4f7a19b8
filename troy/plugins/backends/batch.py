"""The template of a batch backend: the agent as one job that a resource manager queues and runs.

`BatchBackend` does what every such backend does the same way: start the
agent through the bootstrap (use a Python that has troy, or ship a wheel of
this troy), keep the handle, cache the job's state for a moment (each query
is a round trip to the resource manager), append the tail of the agent's
stderr to the detail of a failed job, tell a job ended at its wall time from
a cancel where the resource manager reports both alike, and cancel with a
grace period in which the agent can stop by itself.

A subclass writes what differs: `submit`, `query` and `remove` (the calls to
the resource manager) and `job_state` (its job record to a pilot state, best
a pure function in a module of its own, as saga_mapping.py and
condor_submit.py are); see docs/plugins.md, "Writing a batch backend".
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from troy.model.errors import BackendError
from troy.model.private import private_mkdir
from troy.model.states import State
from troy.plugins.backends import bootstrap
from troy.plugins.backends.base import Backend, PilotLaunch
from troy.plugins.backends.local import stderr_tail

#: The agent's stderr file in the pilot's working directory.
AGENT_ERROR = "agent.err"
#: Characters of the agent's stderr that end a failed pilot's detail, at most.
ERROR_TAIL = 2000
#: Seconds of slack when telling a wall-time end from a cancel by the clock.
WALL_TIME_SLACK = 5.0
#: Handle fields `launch` adds to what `submit` returns; the rest identifies the job.
HANDLE_FIELDS = frozenset({"working_directory", "submitted", "wall_time_limit"})

_StateKey = tuple[str, tuple[tuple[str, str], ...]]


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name if it has none), cut at 500."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:500]


def wall_time_over(handle: dict[str, Any]) -> bool:
    """Whether the job's wall time limit has passed since it was submitted (False without one)."""
    limit = handle.get("wall_time_limit")
    if not limit:
        return False
    ran = time.time() - handle.get("submitted", time.time())
    return bool(ran >= limit * 60 - WALL_TIME_SLACK)


class BatchBackend(Backend):
    """Runs the agent as one job of a resource manager; subclasses say how to reach it."""

    #: Seconds cancel gives the agent to stop by itself (it was asked to) before `remove`.
    cancel_grace: ClassVar[float] = 8.0
    #: Seconds between the queries cancel makes while it gives that grace.
    cancel_poll: ClassVar[float] = 0.5
    #: Seconds a job's record is cached for `state` (cancel always asks afresh).
    state_cache: ClassVar[float] = 1.0
    #: Pilot states in which cancel gives the grace; in any other it removes the job at once.
    cancel_waits_for: ClassVar[frozenset[State]] = frozenset({State.Running})
    #: The resource manager reports a job it ended at its wall time as canceled (SLURM through
    #: SAGA): a Canceled job whose wall time had passed is then Done, by the clock.
    timeout_is_cancel: ClassVar[bool] = False
    #: State detail when `query` finds no job; formatted with the handle's fields.
    missing_job: ClassVar[str] = "the resource manager does not know the agent job"

    # Per subclass (see __init_subclass__): job key -> (when asked, the job's record or None).
    _states: ClassVar[dict[_StateKey, tuple[float, Any]]] = {}
    _states_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._states = {}
        cls._states_lock = threading.Lock()

    # -- what a subclass writes ----------------------------------------------------------
    @abstractmethod
    def submit(
        self, launch: PilotLaunch, arguments: list[str], wheels: Sequence[Path]
    ) -> dict[str, Any]:
        """Submit ``/bin/sh arguments`` as the pilot's job; return the fields that identify it.

        The job runs in ``launch.working_directory`` with stdout/stderr in
        ``agent.out``/``agent.err`` there.  ``wheels`` are the local wheels in
        ship mode, troy's first, then the plugin packages' (each already placed
        by `ship_wheel`; a backend that sends input files with the job sends
        them), none in use mode.  The fields returned go
        into the handle as they are (JSON-ready, none named as in HANDLE_FIELDS).
        Raise BackendError on failure.
        """

    @abstractmethod
    def query(self, handle: dict[str, Any], look_back: bool) -> Any:
        """The job's record as the resource manager gives it (what `job_state` reads), or None.

        None when the resource manager does not know the job.  ``look_back``:
        also search the jobs that have left the queue (cancel passes False:
        for it a job that has left is gone).  Raise BackendError when the
        resource manager cannot be asked.
        """

    @abstractmethod
    def remove(self, handle: dict[str, Any]) -> None:
        """Remove (kill) the job.  Raise BackendError when that fails.

        An error is ignored when the job turns out to have ended meanwhile.
        """

    @abstractmethod
    def job_state(self, record: Any) -> tuple[State, str]:
        """The pilot state and detail for a job record from `query` (pure: no I/O).

        A job that ended without the agent's report is Failed (the template
        appends the tail of ``agent.err``), Done when the resource manager
        ended it at its wall time, Canceled when it canceled it.
        """

    # -- what a subclass may override ------------------------------------------------------
    def ship_wheel(self, launch: PilotLaunch, wheel: bootstrap.Wheel) -> str:
        """Put the wheel where the job will find it (ship mode); return that path there.

        The default copies it to ``WORKDIR/.troy/DIGEST/`` on this host, for a
        working directory the job's nodes share with this host.
        """
        directory = Path(launch.working_directory, bootstrap.STAGING_DIRECTORY, wheel.digest)
        target = directory / wheel.path.name
        try:
            if not target.exists():
                private_mkdir(directory)
                partial = target.with_suffix(f".{os.getpid()}.part")
                shutil.copyfile(wheel.path, partial)
                partial.replace(target)
        except OSError as exc:
            raise BackendError(f"cannot copy {wheel.path.name} to {directory}: {exc}") from exc
        return str(target)

    def error_tail(self, handle: dict[str, Any]) -> str:
        """The end of the agent's stderr, or "" if it cannot be read.

        The default reads ``agent.err`` in the working directory on this host.
        """
        directory = handle.get("working_directory")
        return stderr_tail(f"{directory}/{AGENT_ERROR}", ERROR_TAIL) if directory else ""

    # -- the contract, done once -------------------------------------------------------------
    def bootstrap_arguments(self, launch: PilotLaunch) -> tuple[list[str], list[Path]]:
        """The bootstrap's ``/bin/sh`` arguments, and the local wheels in ship mode (troy's first).

        Ship mode also ships the wheels of the plugin packages an agent may load
        (`bootstrap.plugin_wheels`); use mode ships nothing: the named Python's
        site must have them.
        """
        python = bootstrap.agent_python(launch.description.agent_python)
        if python is not None:
            return bootstrap.use_arguments(python, launch.agent_command), []
        try:
            wheel, plugins = bootstrap.troy_wheel(), bootstrap.plugin_wheels()
            where = self.ship_wheel(launch, wheel)
            placed = [(plugin, self.ship_wheel(launch, plugin)) for plugin in plugins]
            arguments = bootstrap.ship_arguments(
                launch.working_directory, wheel, where, launch.agent_command, placed
            )
        except bootstrap.ShipError as exc:
            raise BackendError(str(exc)) from exc
        return arguments, [wheel.path, *(plugin.path for plugin in plugins)]

    def launch(self, launch: PilotLaunch) -> dict[str, Any]:
        arguments, wheels = self.bootstrap_arguments(launch)
        job = self.submit(launch, arguments, wheels)
        return {
            **job,
            "working_directory": launch.working_directory,
            "submitted": time.time(),
            "wall_time_limit": launch.description.wall_time_limit,
        }

    def state(self, handle: dict[str, Any]) -> tuple[State, str]:
        key = self._key(handle)
        with self._states_lock:
            cached = self._states.get(key)
        if cached is not None and time.monotonic() - cached[0] < self.state_cache:
            record = cached[1]
        else:
            record = self.query(handle, look_back=True)
            with self._states_lock:
                self._states[key] = (time.monotonic(), record)
        if record is None:
            return State.Unknown, self.missing_job.format(**handle)
        state, detail = self.job_state(record)
        if state == State.Canceled and self.timeout_is_cancel and wall_time_over(handle):
            return State.Done, f"wall time limit of {handle['wall_time_limit']:g} min reached"
        if state == State.Failed:
            tail = self.error_tail(handle)
            if tail:
                return state, f"{detail}: {tail}"
        return state, detail

    def cancel(self, handle: dict[str, Any]) -> None:
        # The agent was asked to stop (it ends its units and reports): give a running one time.
        deadline = time.monotonic() + self.cancel_grace
        while True:
            state = self._fresh_state(handle)
            if state is None or state.is_final:
                return
            if state not in self.cancel_waits_for or time.monotonic() >= deadline:
                break
            time.sleep(self.cancel_poll)
        try:
            self.remove(handle)
        except BackendError:
            # Gone in the meantime is what was asked for; anything else is an error.
            with contextlib.suppress(BackendError):
                state = self._fresh_state(handle)
                if state is None or state.is_final:
                    return
            raise
        with self._states_lock:
            self._states.pop(self._key(handle), None)

    # -- helpers -------------------------------------------------------------------------------
    def _fresh_state(self, handle: dict[str, Any]) -> State | None:
        """The job's pilot state from a query now, without the history; None if it is gone."""
        record = self.query(handle, look_back=False)
        return None if record is None else self.job_state(record)[0]

    def _key(self, handle: dict[str, Any]) -> _StateKey:
        job = tuple(sorted((k, repr(v)) for k, v in handle.items() if k not in HANDLE_FIELDS))
        return self.rm, job
