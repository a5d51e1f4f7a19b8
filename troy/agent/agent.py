"""The pilot agent: claims units from its pilot's queue and runs them in its slots.

One dispatcher (the main thread) claims units in batches (in pull mode, one
per free slot) and checks each item (troy.agent.queue_items) and each
control request (troy.agent.control); worker
threads, one per running unit (troy.agent.slots), start each unit in FIFO
order with bounded backfill and wait for it; state
changes are reported in batches.  Units' input_data is staged in before they
start and output_data out after they end (troy.agent.staging).  The agent
stops on a terminate request, on SIGTERM (both: units Canceled, pilot
Canceled) or when the pilot's wall_time_limit is reached (units Failed with
the reason, pilot Done); units it claimed but had not started go back to
its queue so the manager can place them elsewhere.  A guard process ends the
units of an agent that dies, and a unit that runs again first ends any copy of
an earlier attempt still running on this host (troy.agent.guard).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import re
import signal
import socket
import subprocess
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from troy.agent import guard, log_tail
from troy.agent.control import Cancel, Terminate, control_request
from troy.agent.launcher import describe_exit, load_launcher, prepare, start
from troy.agent.queue_items import BadQueueItem, to_job, unexpected
from troy.agent.reporter import Reporter
from troy.agent.resources import discover, pilot_slots
from troy.agent.slots import Job, SlotPool
from troy.agent.staging import Stager, StagingError
from troy.model import protocol, retry, secrets
from troy.model.errors import CoordinationError, CoordinationRefused
from troy.model.private import private_mkdir
from troy.plugins import data_records
from troy.plugins.coordination.base import Coordination

log = logging.getLogger("troy.agent")

#: Seconds between SIGTERM and SIGKILL when a unit is stopped.
KILL_GRACE = 2.0
#: Seconds between looks at the control stream.
CONTROL_INTERVAL = 0.05
#: Pauses between looks at an empty queue when coordination cannot block (see
#: Coordination.wait_for_work): the first, doubling to the longest after IDLE_FAST_FOR
#: seconds without work (the longest is what a unit sent to an idle pilot may wait).
IDLE_POLL = 0.025
IDLE_POLL_MAX = 0.25
IDLE_FAST_FOR = 2.0
#: Longest block in Coordination.wait_for_work (it also ends at the next heartbeat): a
#: signal that comes without a terminate request (which wakes it) is seen by then.
IDLE_WAIT = 2.0
#: Seconds between heartbeats unless the pilot record says otherwise.
DEFAULT_HEARTBEAT = 2.0
#: Seconds without coordination after which the agent gives up (its units are lost then).
MAX_OUTAGE = 600.0
#: Seconds between tries while coordination is unreachable: the first wait, doubling to the cap.
OUTAGE_FIRST_WAIT = 0.2
OUTAGE_MAX_WAIT = 5.0
#: Seconds an agent keeps trying to reach coordination when it starts.
CONNECT_WINDOW = 60.0
#: The most items one claim takes.
MAX_CLAIM = 8192
#: How many (unit, attempt) pairs an agent remembers having taken, to run a duplicate once.
TAKEN_MEMORY = 100_000


def wall_time_seconds(limit_minutes: float, in_batch_job: bool) -> float:
    """Seconds the agent runs before it ends the pilot at its wall time.

    Inside a batch job the agent stops early, by 10% of the limit but at most
    60 s: the batch system counts from the job's start, before the bootstrap,
    and the agent must report its end and hand back its units before it is killed.
    """
    seconds = limit_minutes * 60
    if in_batch_job:
        seconds -= min(60.0, seconds * 0.1)
    return seconds


class Agent:
    """Runs the units of one pilot."""

    def __init__(self, coordination: Coordination, pilot_id: str) -> None:
        self.coordination = coordination
        self.pilot_id = pilot_id
        record = coordination.get_record(protocol.pilot_key(pilot_id))
        if record is None:
            raise RuntimeError(f"no pilot record for {pilot_id} in {coordination.public_url()}")
        self.record = record
        description = record.get("description") or {}
        self.attempt: int = record.get("attempt", 0)
        self.directory: str = record["working_directory"]
        host = socket.gethostname()
        self.host = host
        #: The batch allocation the agent runs in (kind "none" outside one).
        self.allocation = discover(os.environ)
        limit = description.get("wall_time_limit")
        self.wall_time_limit: float | None = limit
        self.deadline = (
            time.monotonic() + wall_time_seconds(limit, self.allocation.kind != "none")
            if limit
            else None
        )
        self.slots: int = pilot_slots(self.allocation, description.get("number_of_processes"), host)
        #: Wraps units for parallel launch: the pilot's ``launcher``, else the allocation's default.
        self.launcher = load_launcher(description.get("launcher"), self.allocation)
        self.claimer = re.sub(
            r"[^A-Za-z0-9._-]", "_", f"{pilot_id}.{self.attempt}.{host}.{os.getpid()}"
        )
        self.queue: str = record.get("queue") or protocol.pilot_key(pilot_id)
        #: Late binding: claim one unit per free slot, hold no backlog (diane workers).
        self.pull = bool(record.get("pull"))
        #: Wakes the main loop: a report to write, or the backlog running low.
        self._wake = threading.Event()
        self.reporter = Reporter(coordination, self._wake, claimed=(self.queue, self.claimer))
        # Units inherit the agent's environment: set what they all share once, here.
        os.environ.update(description.get("environment") or {})
        os.environ["TROY_PILOT_ID"] = pilot_id
        os.environ["TROY_PILOT_DIRECTORY"] = self.directory
        for stale in ("PWD", "OLDPWD"):  # the creator's directories, not the unit's sandbox
            os.environ.pop(stale, None)
        self.base_environment = os.environ
        #: Stages units' input_data/output_data (locality by the pilot's affinity labels).
        self.stager = Stager(
            coordination,
            description.get("affinity_datacenter_label"),
            description.get("affinity_machine_label"),
        )

        self._lock = threading.Lock()
        self._running: dict[str, subprocess.Popen[bytes]] = {}
        self._cancel_requested: set[str] = set()
        #: (unit id, attempt) of the items taken lately, oldest first (see _accept).
        self._taken: dict[tuple[str, int], None] = {}
        # Capped: each claimed item is checked (~15 us) while the main loop waits, and a
        # pilot of 100,000 slots must still beat its heart between claims.
        self.claim_size = max(64, min(4 * self.slots, MAX_CLAIM))
        self.pool = SlotPool(
            self.slots, self._run, low_water=max(2 * self.slots, 32), hungry=self._wake
        )
        #: (pilot state, fate of units it kills: "Canceled" or "lost", why), once stopping.
        self._stop: tuple[str, str, str] | None = None
        #: (fate, why) for the units killed as the pilot ends.
        self._ending: tuple[str, str] | None = None
        self._control_cursor: Any = None
        self._signaled = threading.Event()
        self._beats = 0
        beat = record.get("heartbeat") or {}
        self.heartbeat_interval: float = beat.get("interval", DEFAULT_HEARTBEAT)
        self.heartbeat_timeout: float = beat.get("timeout", 6 * self.heartbeat_interval)
        #: When (monotonic) the last beat that was written began, and that beat if it
        #: was followed by a look at the control stream: the agent was in touch then.
        self._beat_began = self._in_touch_since = time.monotonic()
        #: Ends this agent's units if it dies (None where there is no /proc); set by run().
        self.guard: guard.Guard | None = None

    # -- reports -------------------------------------------------------------
    def _report_unit(self, job: Job, state: str, **extra: Any) -> None:
        event = protocol.unit_state_event(job.id, state, job.attempt, pilot=self.pilot_id, **extra)
        self.reporter.add(protocol.service_key(job.service), event)

    def _report_pilot(self, state: str, **extra: Any) -> None:
        self.reporter.add(
            protocol.pilot_key(self.pilot_id),
            protocol.pilot_state_event(state, self.attempt, **extra),
        )

    # -- units -----------------------------------------------------------------
    def _run(self, job: Job) -> None:
        """Run one unit to its end in the calling slot thread; report whatever happens."""
        try:
            self._execute(job)
        except Exception:  # never lose a slot to a bug: report and go on
            self._report_unit(job, "Failed", detail=f"agent error: {traceback.format_exc()}")

    def _execute(self, job: Job) -> None:
        description = job.description
        transfers: list[dict[str, Any]] = []
        try:
            registry = self.guard.directory if self.guard is not None else None
            if job.attempt and registry is not None:  # never alongside an earlier copy
                guard.end_earlier_copies(registry, job.id, job.attempt)
            prepared = prepare(
                job.id,
                description,
                self.directory,
                self.base_environment,
                self.allocation,
                cores=job.granted,
                launcher=self.launcher,
            )
            if description.get("input_data"):
                transfers = self.stager.stage_in(description, prepared.sandbox)
            if not self._may_start(job):
                return
            process = start(prepared)
            if self.guard is not None:
                self.guard.started(job.id, job.attempt, process.pid)
        except guard.GuardError as exc:
            self._fail(job, "lost", str(exc))
            return
        except StagingError as exc:
            self._fail(job, "failed", str(exc), transfers=transfers)
            return
        except OSError as exc:
            what = exc.filename or job.description.get("executable")
            self._fail(job, "failed", f"cannot start {what}: {exc.strerror or exc}")
            return
        with self._lock:
            self._running[job.id] = process
            canceled = job.id in self._cancel_requested or self._ending is not None
        granted = job.granted if job.max_cores > job.cores else None  # a range: say how many
        self._report_unit(job, "Running", sandbox=prepared.sandbox, host=self.host, cores=granted)
        if canceled:
            self._kill(process)
        returncode = self.guard.wait(process) if self.guard is not None else process.wait()
        with self._lock:
            self._running.pop(job.id, None)
            canceled = job.id in self._cancel_requested
            ending = self._ending
        if returncode != 0 and not canceled:  # its output's ends, for `troy logs --unit`
            log_tail.publish_unit_tail(self.coordination, self.pilot_id, job, returncode, prepared)
        if canceled:
            self._report_unit(job, "Canceled", detail="canceled", exit=returncode)
            return
        if ending is not None and returncode != 0:
            fate, why = ending
            if fate == "Canceled":
                self._report_unit(job, "Canceled", detail=why, exit=returncode)
            else:  # cut off by the pilot's end: lost, not the unit's fault
                self._fail(job, "lost", why, returncode)
            return
        if description.get("output_data"):
            try:
                transfers += self.stager.stage_out(description, prepared.sandbox)
            except StagingError as exc:
                self._fail(job, "failed", str(exc), returncode, transfers)
                return
        if returncode == 0:
            detail = retry.final_detail(job.tries, "done") if job.tries else None
            self._report_unit(job, "Done", exit=0, detail=detail, transfers=transfers or None)
        else:
            self._fail(job, "failed", describe_exit(returncode), returncode, transfers)

    def _fail(
        self,
        job: Job,
        kind: str,
        why: str,
        returncode: int | None = None,
        transfers: list[dict[str, Any]] | None = None,
    ) -> None:
        """Report a unit that failed or was lost: back to be placed again, or Failed."""
        retries = job.description.get("retries")
        if retry.again(job.tries, kind, retries):
            event = protocol.unit_state_event(
                job.id,
                "New",
                job.attempt + 1,
                pilot="",  # it leaves this pilot: the manager places it again
                detail=retry.requeue_detail(job.tries, kind, why, retries),
                tries=retry.record(job.tries, job.attempt, kind, why),
                exit=returncode,
            )
            self.reporter.add(protocol.service_key(job.service), event)
        else:
            self._report_unit(
                job,
                "Failed",
                detail=retry.final_detail(job.tries, why),
                exit=returncode,
                transfers=transfers or None,
            )

    def _may_start(self, job: Job) -> bool:
        """Hold a unit while the agent is out of touch; False if it must not start at all.

        An agent that has not beaten and then read its control stream for half its
        heartbeat timeout (stopped, or cut off from coordination) may be given up
        for lost, and then its units run again elsewhere: a unit it starts late
        could run alongside its own re-run.  So it waits until the agent is in
        touch again; if the agent is stopping by then (e.g. it read that it was given
        up), the unit goes back to the queue unstarted, as its backlog does.
        """
        if time.monotonic() - self._in_touch_since < self.heartbeat_timeout / 2:
            return True
        log.info("out of touch with coordination: %s waits to start", job.id)
        while time.monotonic() - self._in_touch_since >= self.heartbeat_timeout / 2:
            if self._stop is not None:
                break
            time.sleep(CONTROL_INTERVAL)
        if self._stop is None:
            return True
        item = {"id": job.id, "service": job.service, "d": job.description, "a": job.attempt}
        try:
            self.coordination.enqueue(self.queue, [{**item, "t": job.tries}])
        except CoordinationError as exc:  # then its pilot's end makes it lost
            log.error("could not hand back %s: %s", job.id, exc)
        return False

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
    def _read_control(self) -> None:
        events, self._control_cursor = self.coordination.read(
            protocol.control_stream(self.pilot_id), self._control_cursor
        )
        for event in events:
            request = control_request(event)
            if isinstance(request, Cancel):
                ids = request.units
                with self._lock:
                    self._cancel_requested |= ids
                    running = [p for uid, p in self._running.items() if uid in ids]
                for process in running:
                    self._kill(process)
                for job in self.pool.remove(ids):
                    self._report_unit(job, "Canceled", detail="canceled before it started")
            elif isinstance(request, Terminate) and request.attempt >= self.attempt:
                if request.lost:  # the manager gave this agent up for lost
                    self.request_stop("Failed", "lost", request.reason)
                else:
                    self.request_stop("Canceled", "Canceled", request.reason)

    def request_stop(self, pilot_state: str, unit_state: str, detail: str) -> None:
        """Ask the main loop to end the pilot (first request wins)."""
        if self._stop is None:
            self._stop = (pilot_state, unit_state, detail)

    def _accept(self, items: list[Any]) -> None:
        """Check each claimed item (troy.agent.queue_items) and give the good ones to the slots.

        A bad item never stops the agent: its unit is reported Failed with what was
        wrong, or, without a usable id or service to report to, dropped with a warning.
        """
        jobs = []
        for item in items:
            try:
                job = to_job(item)
            except BadQueueItem as exc:
                self._reject(exc)
                continue
            except Exception as exc:  # a bug in the check must not stop the agent
                self._reject(unexpected(item, exc))
                continue
            taken = (job.id, job.attempt)
            if taken in self._taken:
                # The same attempt queued twice (a commit retried after an unknown
                # outcome): it runs once; the copy is only acknowledged.
                log.info("unit %s attempt %s was queued twice: running it once", *taken)
                self.reporter.acknowledge([job.id])
                continue
            self._taken[taken] = None
            if len(self._taken) > TAKEN_MEMORY:
                del self._taken[next(iter(self._taken))]
            fewest, most = job.cores, job.max_cores
            if job.id in self._cancel_requested:
                self._report_unit(job, "Canceled", detail="canceled before it started")
            elif fewest > self.slots:
                at_least = "at least " if most > fewest else ""
                self._report_unit(
                    job,
                    "Failed",
                    detail=f"needs {at_least}{fewest} slots but pilot {self.pilot_id}"
                    f" has {self.slots}",
                )
            else:
                jobs.append(job)
        self.pool.add(jobs)

    def _reject(self, bad: BadQueueItem) -> None:
        """Fail the unit of a queue item the agent cannot run, or drop the item with a warning."""
        if bad.unit_id is None or bad.service is None:
            log.warning("dropped %s", bad)
            if bad.unit_id is not None:
                self.reporter.acknowledge([bad.unit_id])
            return
        log.warning("unit %s failed: %s", bad.unit_id, bad.reason)
        event = protocol.unit_state_event(
            bad.unit_id, "Failed", bad.attempt, pilot=self.pilot_id, detail=str(bad)
        )
        self.reporter.add(protocol.service_key(bad.service), event)

    # -- main loop ---------------------------------------------------------------
    def run(self) -> int:
        """Run until stopped; return the process exit code."""
        private_mkdir(self.directory)
        self._start_guard()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self._signaled.set())
        self.pool.start()
        self._report_pilot("Running", slots=self.slots, host=self.host, pid=os.getpid())
        try:
            self.reporter.flush()
        except CoordinationError as exc:
            # The report is kept: the loop writes it once coordination answers, and
            # gives up only after its outage time, as for any outage.
            log.warning("coordination unreachable at start, trying again: %s", exc)
        try:
            self._loop()
        except Exception:
            self.request_stop("Failed", "lost", f"agent error: {traceback.format_exc()}")
        assert self._stop is not None
        self._shutdown(*self._stop)
        if self.guard is not None:
            self.guard.close()  # it ends whatever did not stop in time
        return 0 if self._stop[0] != "Failed" else 1

    def _start_guard(self) -> None:
        """Start the guard; end units that dead agents left on this host.

        Raises GuardError if the guard cannot be started.
        """
        if not guard.available():
            log.warning("no /proc here: units are not ended if this agent dies")
            return
        directory: Path | None = None
        try:
            directory = guard.registry_directory()
        except guard.GuardError as exc:  # the guard still ends this agent's units
            log.error("%s; units that run again here are not checked for earlier copies", exc)
        if directory is not None:
            ended = guard.sweep(directory)
            if ended:
                log.warning("ended %d unit process groups left by dead agents on this host", ended)
        self.guard = guard.Guard(directory, self.pilot_id)
        self.guard.start()

    def _loop(self) -> None:
        """Claim units while the backlog is low; watch control, signals and the wall time.

        Starting units is the slot threads' business; this loop only keeps them fed,
        writes their reports in batches and beats the heart.  While coordination is
        unreachable the units keep running and their reports wait; after
        MAX_OUTAGE seconds without it the agent gives up.
        """
        next_control = 0.0
        next_beat = 0.0
        idle = 0.005
        idle_since = time.monotonic()
        low_water = max(2 * self.slots, 32)
        outage_since: float | None = None
        outage_wait = OUTAGE_FIRST_WAIT
        while True:
            now = time.monotonic()
            if self._signaled.is_set():
                # A terminate request sent with the signal says why; read it first.
                with contextlib.suppress(CoordinationError):
                    self._read_control()
                self.request_stop("Canceled", "Canceled", "pilot canceled")
            if self.deadline is not None and now >= self.deadline:
                detail = f"pilot wall_time_limit of {self.wall_time_limit:g} min reached"
                self.request_stop("Done", "lost", detail)
            if self._stop is not None:
                return
            claimed = 0
            try:
                if now >= next_beat:
                    self._beat()
                    next_beat = now + self.heartbeat_interval
                if now >= next_control:
                    self._read_control()
                    next_control = now + CONTROL_INTERVAL
                    # After the read: a slot thread that sees it in touch sees a stop it requested.
                    self._in_touch_since = self._beat_began
                wanted = self._wanted(low_water)
                if wanted:
                    items = self.coordination.claim(self.queue, self.claimer, wanted)
                    claimed = len(items)
                    self._accept(items)
                if self.reporter.due() or (self.reporter.pending and not self.pool.busy):
                    self.reporter.flush()
                outage_since = None
                outage_wait = OUTAGE_FIRST_WAIT
            except CoordinationError as exc:
                if outage_since is None:
                    outage_since = now
                    log.warning("coordination unreachable, units go on: %s", exc)
                elif now - outage_since > MAX_OUTAGE:
                    self.request_stop(
                        "Failed", "lost", f"coordination unreachable for {MAX_OUTAGE:g} s: {exc}"
                    )
                    continue
                # Back off (doubling, capped, with jitter so agents do not retry in step);
                # a unit that ends, or a signal, wakes it early, once: no busy loop.
                self._wake.wait(outage_wait * random.uniform(0.8, 1.2))
                self._wake.clear()
                outage_wait = min(outage_wait * 2, OUTAGE_MAX_WAIT)
                continue
            if claimed or self.pool.busy or self.pool.waiting:
                idle = 0.005
                idle_since = now
                timeout = min(self.reporter.interval, CONTROL_INTERVAL)
            else:
                if self._wait_for_work(min(next_beat, self._stop_by()) - now):
                    next_control = 0.0  # it may have been a control request
                    continue
                # Polling: fast right after work, slower the longer it lasts; the
                # control stream is read on each look (CONTROL_INTERVAL has passed).
                timeout = min(idle, max(0.0, next_beat - now))
                cap = IDLE_POLL if now - idle_since < IDLE_FAST_FOR else IDLE_POLL_MAX
                idle = min(idle * 2, cap)
            self._wake.wait(timeout)
            self._wake.clear()

    def _stop_by(self) -> float:
        """The monotonic time by which the loop must look at signals and the wall time."""
        return self.deadline if self.deadline is not None else float("inf")

    def _wait_for_work(self, until_beat: float) -> bool:
        """Block on coordination while idle, until a unit or a control request may have
        come (or the next beat is due); False at once where coordination cannot block."""
        timeout = min(IDLE_WAIT, until_beat)
        if timeout <= 0.005 or self._signaled.is_set():
            return False
        try:
            stream = protocol.control_stream(self.pilot_id)
            return self.coordination.wait_for_work(
                self.queue, stream, self._control_cursor, timeout
            )
        except CoordinationError:  # the next claim finds the outage and backs off
            return False

    def _wanted(self, low_water: int) -> int:
        """How many units to claim now: a batch when the backlog runs low, or (pull
        mode) one per slot that is free and not promised to a unit already claimed."""
        if self.pull:  # the backlog is at most a few units here: summing it is cheap
            return min(MAX_CLAIM, max(0, self.slots - self.pool.busy - self.pool.promised))
        return self.claim_size if self.pool.waiting <= low_water else 0

    def _beat(self) -> None:
        """Tell the manager this agent lives (it counts changes, not clock readings)."""
        self._beats += 1
        began = time.monotonic()
        self.coordination.put_record(
            protocol.heartbeat_key(self.pilot_id),
            {"n": self._beats, "a": self.attempt, "ts": time.time(), "host": self.host},
        )
        self._beat_began = began

    def _shutdown(self, pilot_state: str, unit_fate: str, detail: str) -> None:
        """End the pilot: unstarted units back to the queue, running ones killed, report.

        When the units it cuts off are lost (wall time, agent error), the pilot's end
        is reported before they are, so the manager places them on other pilots and
        never on this one again.  Canceled units are reported first, with why.
        """
        pending = self.pool.drain()
        with self._lock:
            self._ending = (unit_fate, detail)
            running = list(self._running.values())
        try:
            if pending:  # the manager places them again
                self.coordination.enqueue(
                    self.queue,
                    [
                        {"id": j.id, "service": j.service, "d": j.description, "a": j.attempt,
                         "t": j.tries}
                        for j in pending
                    ],
                )  # fmt: skip
                self.reporter.acknowledge([j.id for j in pending])
            if unit_fate == "lost":
                self._report_pilot(pilot_state, detail=detail)
                self.reporter.flush()
        except CoordinationError as exc:
            log.error("could not hand back units or report the pilot's end: %s", exc)
        for process in running:
            self._kill(process)
        self.pool.close(timeout=KILL_GRACE + 3)
        if unit_fate != "lost":
            self._report_pilot(pilot_state, detail=detail)
        try:
            self.reporter.flush()
        except CoordinationError as exc:
            # The manager will find the pilot gone and place its units elsewhere.
            log.error("could not report the pilot's end: %s", exc)


def connect(url: str, opener: Any, window: float = CONNECT_WINDOW) -> Coordination:
    """The agent's connection: an outage just as it starts is waited out, for ``window`` s.

    The manager reached the service moments before it launched this agent, so a
    failure now is most likely an outage (a Redis restarting, a full disk); but a
    service that refuses this agent's credentials (CoordinationRefused) will not
    change its mind, and that is raised at once.
    """
    deadline = time.monotonic() + window
    wait = OUTAGE_FIRST_WAIT
    while True:
        try:
            connection: Coordination = opener(url)
            return connection
        except CoordinationRefused:
            raise
        except CoordinationError as exc:
            if time.monotonic() + wait > deadline:
                raise
            log.warning("cannot reach coordination yet, trying again in %.1f s: %s", wait, exc)
            time.sleep(wait * random.uniform(0.8, 1.2))
            wait = min(wait * 2, OUTAGE_MAX_WAIT)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m troy.agent``."""
    import argparse

    from troy.plugins.registry import open_coordination

    parser = argparse.ArgumentParser(prog="python -m troy.agent", description=__doc__)
    parser.add_argument("--coordination", required=True, help="coordination URL")
    parser.add_argument("--pilot", required=True, help="pilot id")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(secrets.ScrubFilter())
    # Taken out of the environment before any unit starts: units never see them.
    given = data_records.take_store_secrets(secrets.take_agent_secrets())
    url = secrets.join_url(args.coordination, given)
    data_records.remember_coordination_url(url)
    coordination = connect(url, open_coordination)
    tail = log_tail.start(coordination, args.pilot)  # its log, for `troy logs`
    try:
        return Agent(coordination, args.pilot).run()
    finally:
        tail.close()
        coordination.close()
