"""The pilot agent: claims units from its pilot's queue and runs them in its slots.

One dispatcher (the main thread) claims units in batches, keeps FIFO order
and counts free slots; a pool of worker threads (one per slot) starts each
unit and waits for it; state changes are reported in batches.  The agent
stops on a terminate request, on SIGTERM (both: units Canceled, pilot
Canceled) or when the pilot's wall_time_limit is reached (units Failed with
the reason, pilot Done); units it claimed but had not started go back to
its queue so the manager can place them elsewhere.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any

from troy.agent.launcher import describe_exit, prepare, start
from troy.agent.reporter import Reporter
from troy.core import protocol
from troy.plugins.coordination.base import Coordination

log = logging.getLogger("troy.agent")

#: Seconds between SIGTERM and SIGKILL when a unit is stopped.
KILL_GRACE = 2.0
#: Seconds between looks at the control stream.
CONTROL_INTERVAL = 0.05


@dataclass(slots=True)
class Job:
    """A claimed unit."""

    id: str
    service: str
    description: dict[str, Any]
    attempt: int
    cores: int


class Agent:
    """Runs the units of one pilot."""

    def __init__(self, coordination: Coordination, pilot_id: str) -> None:
        self.coordination = coordination
        self.pilot_id = pilot_id
        record = coordination.get_record(protocol.pilot_key(pilot_id))
        if record is None:
            raise RuntimeError(f"no pilot record for {pilot_id} in {coordination.url}")
        self.record = record
        description = record.get("description") or {}
        self.attempt: int = record.get("attempt", 0)
        self.slots: int = description.get("number_of_processes") or len(os.sched_getaffinity(0))
        self.directory: str = record["working_directory"]
        limit = description.get("wall_time_limit")
        self.wall_time_limit: float | None = limit
        self.deadline = time.monotonic() + limit * 60 if limit else None
        host = socket.gethostname()
        self.host = host
        self.claimer = re.sub(
            r"[^A-Za-z0-9._-]", "_", f"{pilot_id}.{self.attempt}.{host}.{os.getpid()}"
        )
        self.queue = protocol.pilot_key(pilot_id)
        self.reporter = Reporter(coordination)
        self.base_environment = dict(os.environ)
        self.base_environment.update(description.get("environment") or {})
        self.base_environment["TROY_PILOT_ID"] = pilot_id
        self.base_environment.pop("TROY_AGENT_LOG", None)

        self._lock = threading.Lock()
        self._running: dict[str, subprocess.Popen[bytes]] = {}
        self._cancel_requested: set[str] = set()
        self._work: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._completions: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._stop: tuple[str, str, str] | None = None  # (pilot state, unit state, detail)
        self._ending: tuple[str, str] | None = None  # unit state/detail for killed units
        self._control_cursor: Any = None
        self._signaled = threading.Event()

    # -- reports -------------------------------------------------------------
    def _report_unit(self, job: Job, state: str, **extra: Any) -> None:
        event = protocol.unit_state_event(job.id, state, job.attempt, pilot=self.pilot_id, **extra)
        self.reporter.add(protocol.service_key(job.service), event)

    def _report_pilot(self, state: str, **extra: Any) -> None:
        self.reporter.add(
            protocol.pilot_key(self.pilot_id),
            protocol.pilot_state_event(state, self.attempt, **extra),
        )

    # -- workers ---------------------------------------------------------------
    def _worker(self) -> None:
        while True:
            job = self._work.get()
            if job is None:
                return
            try:
                self._execute(job)
            except Exception:  # never lose a slot to a bug: report and go on
                self._report_unit(job, "Failed", detail=f"agent error: {traceback.format_exc()}")
            self._completions.put(job.cores)

    def _execute(self, job: Job) -> None:
        try:
            prepared = prepare(job.id, job.description, self.directory, self.base_environment)
            process = start(prepared)
        except OSError as exc:
            what = exc.filename or job.description.get("executable")
            self._report_unit(job, "Failed", detail=f"cannot start {what}: {exc.strerror or exc}")
            return
        with self._lock:
            self._running[job.id] = process
            canceled = job.id in self._cancel_requested or self._ending is not None
        self._report_unit(job, "Running", sandbox=prepared.sandbox, host=self.host)
        if canceled:
            self._kill(process)
        returncode = process.wait()
        with self._lock:
            self._running.pop(job.id, None)
            canceled = job.id in self._cancel_requested
            ending = self._ending
        if canceled:
            self._report_unit(job, "Canceled", detail="canceled", exit=returncode)
        elif ending is not None and returncode != 0:
            self._report_unit(job, ending[0], detail=ending[1], exit=returncode)
        elif returncode == 0:
            self._report_unit(job, "Done", exit=0)
        else:
            self._report_unit(job, "Failed", detail=describe_exit(returncode), exit=returncode)

    @staticmethod
    def _kill(process: subprocess.Popen[bytes]) -> None:
        """SIGTERM the unit's process group, SIGKILL it after a grace period."""

        def signal_group(signum: int) -> None:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signum)

        signal_group(signal.SIGTERM)
        timer = threading.Timer(KILL_GRACE, signal_group, args=(signal.SIGKILL,))
        timer.daemon = True
        timer.start()

    # -- control -----------------------------------------------------------------
    def _read_control(self, backlog: collections.deque[Job]) -> None:
        events, self._control_cursor = self.coordination.read(
            protocol.control_stream(self.pilot_id), self._control_cursor
        )
        for event in events:
            if event.get("ev") == "cancel":
                ids = set(event.get("units") or ())
                with self._lock:
                    self._cancel_requested |= ids
                    running = [p for uid, p in self._running.items() if uid in ids]
                for process in running:
                    self._kill(process)
                for job in [job for job in backlog if job.id in ids]:
                    backlog.remove(job)
                    self._report_unit(job, "Canceled", detail="canceled before it started")
            elif event.get("ev") == "terminate" and event.get("a", 0) >= self.attempt:
                reason = event.get("reason") or "pilot canceled"
                self.request_stop("Canceled", "Canceled", reason)

    def request_stop(self, pilot_state: str, unit_state: str, detail: str) -> None:
        """Ask the main loop to end the pilot (first request wins)."""
        if self._stop is None:
            self._stop = (pilot_state, unit_state, detail)

    def _accept(self, items: list[dict[str, Any]], backlog: collections.deque[Job]) -> None:
        for item in items:
            description = item["d"]
            cores = int(
                description.get("total_cpu_count") or description.get("number_of_processes") or 1
            )
            job = Job(item["id"], item["service"], description, item.get("a", 0), cores)
            if job.id in self._cancel_requested:
                self._report_unit(job, "Canceled", detail="canceled before it started")
            elif cores > self.slots:
                self._report_unit(
                    job,
                    "Failed",
                    detail=f"needs {cores} slots but pilot {self.pilot_id} has {self.slots}",
                )
            else:
                backlog.append(job)

    # -- main loop ---------------------------------------------------------------
    def run(self) -> int:
        """Run until stopped; return the process exit code."""
        os.makedirs(self.directory, exist_ok=True)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self._signaled.set())
        workers = [
            threading.Thread(target=self._worker, name=f"troy-slot-{n}", daemon=True)
            for n in range(self.slots)
        ]
        for worker in workers:
            worker.start()
        self._report_pilot("Running", slots=self.slots, host=self.host, pid=os.getpid())
        self.reporter.flush()
        backlog: collections.deque[Job] = collections.deque()
        try:
            self._loop(backlog)
        except Exception:
            self.request_stop("Failed", "Failed", f"agent error: {traceback.format_exc()}")
        assert self._stop is not None
        self._shutdown(backlog, workers, *self._stop)
        return 0 if self._stop[0] != "Failed" else 1

    def _loop(self, backlog: collections.deque[Job]) -> None:
        free = self.slots
        claim_size = max(64, 4 * self.slots)
        next_control = 0.0
        idle = 0.005
        while True:
            now = time.monotonic()
            if now >= next_control:
                self._read_control(backlog)
                next_control = now + CONTROL_INTERVAL
            if self._signaled.is_set():
                # A terminate request sent with the signal says why; read it first.
                self._read_control(backlog)
                self.request_stop("Canceled", "Canceled", "pilot canceled")
            if self.deadline is not None and now >= self.deadline:
                detail = f"pilot wall_time_limit of {self.wall_time_limit:g} min reached"
                self.request_stop("Done", "Failed", detail)
            if self._stop is not None:
                return
            claimed = 0
            if len(backlog) < 2 * self.slots:
                items = self.coordination.claim(self.queue, self.claimer, claim_size)
                claimed = len(items)
                self._accept(items, backlog)
            while backlog and backlog[0].cores <= free:
                job = backlog.popleft()
                free -= job.cores
                self._work.put(job)
            if self.reporter.due():
                self.reporter.flush()
            if claimed or free < self.slots or backlog:
                idle = 0.005
                timeout = min(self.reporter.interval, CONTROL_INTERVAL)
            else:
                timeout = idle
                idle = min(idle * 2, 0.1)
                if self.reporter.pending:
                    self.reporter.flush()
            try:
                free += self._completions.get(timeout=timeout)
                while True:
                    free += self._completions.get_nowait()
            except queue.Empty:
                pass

    def _shutdown(
        self,
        backlog: collections.deque[Job],
        workers: list[threading.Thread],
        pilot_state: str,
        unit_state: str,
        detail: str,
    ) -> None:
        with self._lock:
            self._ending = (unit_state, detail)
            running = list(self._running.values())
        for process in running:
            self._kill(process)
        # Units waiting to start go back to the pilot's queue: the manager places them again.
        pending = list(backlog)
        while True:
            try:
                job = self._work.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                pending.append(job)
        for _ in workers:
            self._work.put(None)
        for worker in workers:
            worker.join(timeout=KILL_GRACE + 3)
        if pending:
            self.coordination.enqueue(
                self.queue,
                [
                    {"id": j.id, "service": j.service, "d": j.description, "a": j.attempt}
                    for j in pending
                ],
            )
        self._report_pilot(pilot_state, detail=detail)
        self.reporter.flush()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m troy.agent``."""
    import argparse

    from troy.core.registry import open_coordination

    parser = argparse.ArgumentParser(prog="python -m troy.agent", description=__doc__)
    parser.add_argument("--coordination", required=True, help="coordination URL")
    parser.add_argument("--pilot", required=True, help="pilot id")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    coordination = open_coordination(args.coordination)
    try:
        return Agent(coordination, args.pilot).run()
    finally:
        coordination.close()
