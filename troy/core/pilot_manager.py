"""The pilot manager: creates pilots through backends and tracks their states.

State comes from two sources: the agent's own reports (Running, and how it
ended) in the pilot's stream, and the backend's view of the agent job
(queued, or gone without a word: then the pilot Failed with the agent's
stderr as the reason).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar
from urllib.parse import urlsplit

from troy.core.monitor import Monitor
from troy.core.service import ServiceManager
from troy.core.tracked import Change, TrackedPilot
from troy.core.transitions import advance
from troy.model import config, protocol, secrets
from troy.model.description import PilotJobDescription
from troy.model.errors import BackendError, CoordinationError, NoSuchObject, TroyError
from troy.model.states import PILOTJOB_TYPE, PILOTJOB_TYPE_PLUGIN, State
from troy.plugins import data_records, registry
from troy.plugins.backends.base import Backend, PilotLaunch
from troy.plugins.options import url_options

log = logging.getLogger("troy.pilots")

#: Seconds between asking backends about pilots whose agents have not said they ended.
BACKEND_POLL = 0.5
#: Other names users give the TROY types.
_TYPE_NAMES = {"bigjob": "saga", "troy": "local", "fork": "local"}


def backend_class(rm: str, pj_type: Any) -> type[Backend]:
    """The backend plugin for a pj_type (TROY constant or plugin name), or by rm's scheme."""
    if pj_type is None:
        name = None
    elif isinstance(pj_type, PILOTJOB_TYPE) or (
        isinstance(pj_type, int) and not isinstance(pj_type, bool)
    ):
        try:
            name = PILOTJOB_TYPE_PLUGIN[PILOTJOB_TYPE(pj_type)]
        except ValueError:
            raise TroyError(f"pj_type {pj_type!r} is not a PILOTJOB_TYPE") from None
    elif isinstance(pj_type, str):
        lowered = pj_type.strip().lower()
        name = _TYPE_NAMES.get(lowered, lowered) if lowered not in ("", "unknown") else None
    else:
        raise TroyError(f"pj_type must be a PILOTJOB_TYPE or a plugin name, not {pj_type!r}")
    if name is None:
        plugin: type[Backend] = registry.for_url("backend", rm)
        return plugin
    loaded: type[Backend] = registry.load("backend", name)
    return loaded


P = TypeVar("P", bound=TrackedPilot)

#: Makes the object for a pilot: (manager, id, rm, description, pj_type, working directory).
PilotFactory = Callable[["PilotManager[P]", str, str, PilotJobDescription, str, str], P]


class PilotManager(ServiceManager, Generic[P]):
    """Creates, tracks and cancels the pilots of one pilot-job service.

    ``new_pilot`` makes the object that stands for a pilot (troy.PilotJob).
    """

    kind: ClassVar[str] = "pilotjob"
    id_prefix: ClassVar[str] = "pjs"
    noun: ClassVar[str] = "pilot-job service"
    state_hook: ClassVar[str | None] = "troy_pilot_state_changed"
    hook_id: ClassVar[str] = "pilot_id"

    def __init__(
        self,
        service_id: str | None,
        coordination_url: str | None,
        new_pilot: PilotFactory[P],
    ) -> None:
        super().__init__(service_id, coordination_url)
        self.new_pilot = new_pilot
        self._pilots: dict[str, P] = {}
        self._cursors: dict[str, Any] = {}
        self._backends: dict[str, Backend] = {}
        self._last_backend_poll = 0.0
        #: Per pilot: the last heartbeat seen and when (this process' monotonic clock).
        self._beats: dict[str, tuple[Any, float]] = {}
        self._service_cursor: Any = None
        self.monitor = Monitor(f"troy-pilots-{self.service_id}", self._poll)
        if service_id is not None:
            self._load_pilots()
        self.monitor.start()

    # -- reconnect -----------------------------------------------------------------
    def _load_pilots(self) -> None:
        """Pick up pilots recorded in the service stream (created here or by another process)."""
        events, self._service_cursor = self.coordination.read(
            protocol.service_key(self.service_id), self._service_cursor, skip_own=True
        )
        for event in events:
            if event.get("ev") != "pilot" or event["id"] in self._pilots:
                continue
            record = self.coordination.get_record(protocol.pilot_key(event["id"]))
            if record is None:
                continue
            pilot = self.new_pilot(
                self,
                record["id"],
                record["rm"],
                PilotJobDescription(record.get("description") or {}),
                record["pj_type"],
                record["working_directory"],
            )
            pilot.handle = record.get("handle")
            pilot.queue = record.get("queue") or pilot.queue
            pilot.attempt = record.get("attempt", 0)
            pilot.heartbeat_timeout = (record.get("heartbeat") or {}).get("timeout", 20.0)
            with self.lock:
                self._pilots[pilot.id] = pilot
            # Its state is what its stream says, before anyone judges it.
            self._read_stream(pilot)

    def check_now(self) -> None:
        """Bring every pilot's state up to date now: its stream, then its backend's view.

        A pilot whose agent is gone (the backend says its job ended) is recorded
        final here, before the caller decides anything on it (resume does).
        """
        self._load_pilots()
        for pilot in self.pilots():
            self._read_stream(pilot)
            if not pilot.state.is_final and pilot.handle is not None:
                self._check_backend(pilot)

    # -- queries -------------------------------------------------------------------
    def pilots(self) -> list[P]:
        with self.lock:
            return list(self._pilots.values())

    def get(self, pilot_id: str) -> P:
        with self.lock:
            try:
                return self._pilots[pilot_id]
            except KeyError:
                raise NoSuchObject(f"no pilot '{pilot_id}' in service {self.service_id}") from None

    # -- create --------------------------------------------------------------------
    def create(
        self,
        rm: str,
        description: PilotJobDescription | dict[str, Any],
        pj_type: Any = None,
        context: Any = None,
    ) -> P:
        if not isinstance(rm, str) or not rm.strip():
            raise TroyError(f"rm must be a resource URL such as fork://localhost, not {rm!r}")
        try:
            urlsplit(rm)
        except ValueError as exc:
            raise TroyError(f"rm {rm!r} is not a valid URL: {exc}") from None
        description = PilotJobDescription(description)
        description.validate()
        if description.launcher is not None:  # NoSuchPlugin before anything is recorded
            registry.load("launcher", description.launcher)
        plugin = backend_class(rm, pj_type)
        plugin.check_options(url_options(rm))
        backend = plugin(rm, context)
        backend.check(description)
        pilot_id = config.new_id("pilot")
        directory = description.working_directory
        if directory:
            directory = str(Path(directory).expanduser().absolute())
        else:
            directory = config.default_pilot_directory(pilot_id)
        pilot = self.new_pilot(self, pilot_id, rm, description, plugin.name, directory)
        if plugin.late_binding:
            pilot.queue = protocol.task_queue(self.service_id)
        pilot.context = context
        pilot.heartbeat_timeout = config.heartbeat_timeout()
        pilot.history.append((State.New, time.time()))
        self._backends[pilot_id] = backend
        self._write_record(pilot)
        self.coordination.append(
            protocol.service_key(self.service_id), [{"ev": "pilot", "id": pilot_id}]
        )
        with self.lock:
            self._pilots[pilot_id] = pilot
        self._launch(pilot, backend)
        return pilot

    def _write_record(self, pilot: P) -> None:
        self.coordination.put_record(
            protocol.pilot_key(pilot.id),
            {
                "id": pilot.id,
                "service": self.service_id,
                "rm": pilot.rm,
                "pj_type": pilot.pj_type,
                "description": pilot.description.as_dict(),
                "working_directory": pilot.working_directory,
                "handle": pilot.handle,
                "attempt": pilot.attempt,
                "created": pilot.history[0][1] if pilot.history else time.time(),
                "coordination": self.coordination.public_url(),
                "queue": pilot.queue,
                "pull": pilot.queue != protocol.pilot_key(pilot.id),
                "heartbeat": {
                    "interval": max(0.1, pilot.heartbeat_timeout / 6),
                    "timeout": pilot.heartbeat_timeout,
                },
            },
        )

    def _launch(self, pilot: P, backend: Backend) -> None:
        command = [
            sys.executable,
            "-m",
            "troy.agent",
            "--coordination",
            self.coordination.public_url(),
            "--pilot",
            pilot.id,
        ]
        # Secrets travel in the agent's environment, never on its command line (ps shows that).
        # With the secret options of the stores this process made Pilot-Data on (staging).
        hidden = {**self.coordination.agent_secrets(), **data_records.agent_store_secrets()}
        environment = {secrets.AGENT_SECRETS_ENV: secrets.encode(hidden)} if hidden else {}
        launch = PilotLaunch(
            pilot.id, pilot.rm, pilot.description, pilot.working_directory, command, environment
        )
        try:
            pilot.handle = backend.launch(launch)
        except BackendError as exc:
            self._record_state(pilot, State.Failed, f"launch failed: {exc}")
            raise
        except Exception as exc:
            self._record_state(pilot, State.Failed, f"launch failed: {exc!r}")
            raise BackendError(
                f"backend '{backend.name}' failed to launch {pilot.id}: {exc!r}"
            ) from exc
        self._write_record(pilot)
        self._record_state(pilot, State.Pending, "")

    def _record_state(self, pilot: P, state: State, detail: str) -> None:
        """Write a pilot state event as the manager, and apply it here at once."""
        event = protocol.pilot_state_event(str(state), pilot.attempt, detail=detail or None)
        self.coordination.append(protocol.pilot_key(pilot.id), [event])
        self._apply(pilot, [event])

    # -- state tracking -------------------------------------------------------------
    def _backend_for(self, pilot: P) -> Backend:
        backend = self._backends.get(pilot.id)
        if backend is None:
            backend = backend_class(pilot.rm, pilot.pj_type)(pilot.rm, pilot.context)
            self._backends[pilot.id] = backend
        return backend

    def _apply(self, pilot: P, events: list[dict[str, Any]]) -> None:
        changes: list[Change] = []
        with self.lock:
            for event in events:
                if event.get("ev") != "state":
                    continue
                if "slots" in event and event.get("a", 0) >= pilot.attempt:
                    pilot.slots = event["slots"]
                changes += (
                    advance(
                        pilot,
                        State(event["s"]),
                        event.get("a", 0),
                        event["ts"],
                        event.get("detail"),
                    )
                    or []
                )
        if changes:
            self.monitor.notify(lambda: self.deliver(changes))

    def _read_stream(self, pilot: P) -> bool:
        events, self._cursors[pilot.id] = self.coordination.read(
            protocol.pilot_key(pilot.id), self._cursors.get(pilot.id), skip_own=True
        )
        if events:
            self._apply(pilot, events)
        return bool(events)

    def _poll(self) -> bool:
        try:
            return self._poll_once()
        except CoordinationError:
            # What cannot be read cannot be judged: heartbeat clocks start again afterwards.
            self._beats.clear()
            raise

    def _poll_once(self) -> bool:
        busy = False
        self._load_pilots()
        poll_backends = time.monotonic() - self._last_backend_poll >= BACKEND_POLL
        if poll_backends:
            self._last_backend_poll = time.monotonic()
        for pilot in self.pilots():
            if pilot.state.is_final and pilot.id in self._cursors:
                continue
            busy |= self._read_stream(pilot)
            if poll_backends and not pilot.state.is_final and pilot.handle is not None:
                self._check_backend(pilot)
            if poll_backends and pilot.state == State.Running:
                self._check_heartbeat(pilot)
        # While a pilot is starting, look often: its Running is then seen at once.
        return busy or any(p.state in (State.New, State.Pending) for p in self.pilots())

    def _check_heartbeat(self, pilot: P) -> None:
        """Declare a Running pilot lost when its heartbeat stopped changing for too long.

        Changes are timed by this process' clock (hosts' clocks differ), from when
        this process first looked: a manager that reconnects gives every agent a
        full timeout before judging it.
        """
        record = self.coordination.get_record(protocol.heartbeat_key(pilot.id)) or {}
        beat = (record.get("a"), record.get("n"))
        now = time.monotonic()
        seen = self._beats.get(pilot.id)
        if seen is None or seen[0] != beat:
            self._beats[pilot.id] = (beat, now)
            return
        silent = now - seen[1]
        if silent > pilot.heartbeat_timeout:
            self._lost(pilot, f"agent heartbeat lapsed: no sign of life for {silent:.0f} s")

    def give_up(self, pilot: P, reason: str) -> None:
        """Record a pilot that will never run (or answer) as Failed, and stop what may run.

        For resume: a pilot left New without a handle by a process that died while
        it started it never launched, or launched an agent nobody knows of; the
        agent, if any, reads the terminate request and stops.
        """
        self._lost(pilot, reason)

    def _lost(self, pilot: P, reason: str) -> None:
        """Record a pilot whose agent stopped answering as Failed, and try to stop it."""
        self._record_state(pilot, State.Failed, reason)
        self.coordination.append(
            protocol.control_stream(pilot.id),
            # "lost": an agent that wakes up hands its units back as lost, not canceled.
            [{"ev": "terminate", "a": pilot.attempt, "reason": reason, "fate": "lost"}],
        )
        if pilot.handle is not None:
            backend, handle = self._backend_for(pilot), pilot.handle

            def stop() -> None:  # may wait for a slow backend; never hold up the monitor
                try:
                    backend.cancel(handle)
                except TroyError as exc:
                    log.warning("backend could not cancel lost pilot %s: %s", pilot.id, exc)

            threading.Thread(target=stop, name=f"troy-stop-{pilot.id}", daemon=True).start()

    def _check_backend(self, pilot: P) -> None:
        try:
            state, detail = self._backend_for(pilot).state(pilot.handle or {})
        except TroyError as exc:
            log.warning("cannot query pilot %s: %s", pilot.id, exc)
            return
        if not state.is_final:
            if pilot.state == State.Pending and detail and detail != pilot.state_detail:
                # Why it waits (e.g. HTCondor's hold reason): shown, not recorded.
                pilot.state_detail = detail
                now = time.time()
                self.monitor.notify(lambda: self.deliver([(pilot, "state_detail", detail, now)]))
            return
        if state.is_final:
            # The agent may have reported how it ended just before exiting: read that first.
            self._read_stream(pilot)
            if not pilot.state.is_final:
                self._record_state(pilot, state, detail)

    # -- control ---------------------------------------------------------------------
    def cancel_pilot(self, pilot: P, reason: str = "pilot canceled") -> None:
        """Ask the agent to stop, make the backend end the job, record Canceled.

        The backend is always asked, even when coordination cannot be written
        (the agent is then stopped by its job's end, not by its control stream),
        and also for a pilot already recorded final whose job the backend still
        runs (an agent given up for lost may be alive).  A coordination error is
        raised after that, so the caller knows the state could not be recorded.
        """
        if pilot.state.is_final:
            self._end_job_of_final(pilot)
            return
        pilot.canceling = True
        failure: TroyError | None = None
        try:
            self.coordination.append(
                protocol.control_stream(pilot.id),
                [{"ev": "terminate", "a": pilot.attempt, "reason": reason}],
            )
        except TroyError as exc:
            log.warning("cannot tell %s's agent to stop (%s); ending its job", pilot.id, exc)
            failure = exc
        if pilot.handle is not None:
            try:
                self._backend_for(pilot).cancel(pilot.handle)
            except TroyError as exc:
                log.warning("backend could not cancel %s: %s", pilot.id, exc)
        if failure is not None:
            raise failure
        self._read_stream(pilot)
        if not pilot.state.is_final:
            self._record_state(pilot, State.Canceled, reason)

    def _end_job_of_final(self, pilot: P) -> None:
        """Make the backend end the job of a pilot recorded final, if it still runs."""
        if pilot.handle is None:
            return
        backend = self._backend_for(pilot)
        try:
            state, _ = backend.state(pilot.handle)
            if not state.is_final and state != State.Unknown:  # Unknown: it cannot tell
                log.warning("%s is recorded %s but its job runs: ending it", pilot.id, pilot.state)
                backend.cancel(pilot.handle)
        except TroyError as exc:
            log.warning("backend could not end the job of %s: %s", pilot.id, exc)

    def cancel_all(self) -> None:
        pilots = self.pilots()
        for pilot in pilots:
            pilot.canceling = True  # so no unit is placed on one that is about to go
        failure: TroyError | None = None
        for pilot in pilots:  # every pilot's job ends, even if coordination fails for one
            try:
                self.cancel_pilot(pilot)
            except TroyError as exc:
                failure = failure or exc
        if failure is not None:
            raise failure

    def reinitialize(self, pilot: P, description: PilotJobDescription | dict[str, Any]) -> None:
        """Stop the pilot's agent and start a new one with a new description."""
        new_description = PilotJobDescription(description)
        new_description.validate()
        if new_description.launcher is not None:
            registry.load("launcher", new_description.launcher)
        backend = self._backend_for(pilot)
        old_handle = pilot.handle
        now = time.time()
        with self.lock:
            # The new attempt first: what the old agent reports as it stops is then stale.
            old_attempt = pilot.attempt
            pilot.attempt += 1
            pilot.description = new_description
            pilot.slots = new_description.number_of_processes
            pilot.state = State.New
            pilot.state_detail = "reinitialized"
            pilot.history.append((State.New, now))
            pilot.canceling = False
            pilot._unsettle()
            pilot.handle = None
        self.monitor.notify(
            lambda: self.deliver(
                [(pilot, "state", State.New, now), (pilot, "state_detail", "reinitialized", now)]
            )
        )
        self.coordination.append(
            protocol.control_stream(pilot.id),
            [{"ev": "terminate", "a": old_attempt, "reason": "pilot reinitialized"}],
        )
        if old_handle is not None:
            backend.cancel(old_handle)
        self._write_record(pilot)  # the new agent reads its attempt and description from it
        self._launch(pilot, backend)

    def close(self) -> None:
        """Stop watching (pilots keep running)."""
        self.monitor.stop()
        super().close()
