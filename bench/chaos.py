"""Fault-injection campaign: run batch files with `troy run` while killing things.

    python bench/chaos.py --trials 20 --seed 1                 # file, redis and zmq in turn
    python bench/chaos.py --trials 200 --seed 7 --coordination redis --units 30
    python bench/chaos.py --trials 1 --seed 1234               # re-run one trial exactly

Each trial (its own seed: ``--seed`` plus the trial's number, so ``--trials 1
--seed S`` repeats trial S) writes a batch file of ``--units`` units (each
sleeps 0.05-0.5 s and logs its start and its end to a side-effect log, see
chaos_unit.py) on 1-3 local pilots of two slots, runs it with ``troy run`` as
a subprocess, and on a schedule drawn from the seed injects faults:

``agent_kill`` / ``agent_stop``
    SIGKILL an agent, or SIGSTOP it for 0.5-13 s (longer than the trial's
    heartbeat timeout of 10 s, sometimes: then it is given up), then SIGCONT.  Never the last live
    agent, and at most one per pilot but one: the run must have a pilot left.
``manager_kill`` / ``manager_stop``
    SIGKILL the ``troy run`` process (with zmq, the broker dies with it),
    then ``troy run --resume FILE`` after 0-1 s, again until the run ends (at
    most a few times; ``troy run FILE`` afresh if the killed one had not yet
    recorded its run, as a user would); or SIGSTOP it for 0.5-3 s.
``all_kill``
    SIGKILL the ``troy run`` process and every agent at once (as if the
    machine's troy processes crashed; units run on), then resume as above:
    the resumed run must start pilots again.
``manager_twice``
    start a second ``troy run --resume FILE`` while the first one runs; both
    follow the run to its end.
``redis_kill`` / ``redis_outage``
    SIGKILL redis-server and start it again on the same port and directory
    after 0-1.5 s; or stop it (SIGTERM) for 1-3 s.
``disk_full``
    fill the tmpfs that holds the trial's troy home (file coordination, the
    zmq journal, the redis directory) for 0.5-3 s, then free it.  Skipped,
    with the reason printed once, where a tmpfs cannot be mounted.

Every process of a trial has ``CHAOS_TRIAL=<token>`` in its environment
(``troy run`` gets it, its agents and units inherit it); the campaign finds
agents by it in /proc, watches units' processes, and after the run checks
that none is left.  It kills only by PID.  When the run has ended, a fresh
process reads the coordination through troy's API, and chaos_check.check
judges the history (what counts as a violation is documented there).

Output: a line per trial, then ``SUMMARY {json}`` (trials, faults by kind,
violations by kind, seeds with violations).  Exit status 1 on any violation.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from chaos_check import check, count
from chaos_procs import ProcScanner, RedisServer, Tmpfs, free_port, send

UNIT = Path(__file__).resolve().parent / "chaos_unit.py"
COORDINATIONS = ("file", "redis", "zmq")
MARKER = "CHAOS_TRIAL"
#: `troy run`'s last line when it followed a run to its end.
SUMMARY = re.compile(r"^\d+ units: .*makespan", re.MULTILINE)
#: The trials' $TROY_HEARTBEAT_TIMEOUT (s).  An outage (redis, a full disk, a stopped
#: manager) lasts up to 3 s, and an agent that could not write backs off up to 5 s before
#: it tries again: no outage may cost a pilot.  A stopped agent sometimes lasts longer.
HEARTBEAT_TIMEOUT = "10"
POLL = 0.02


@dataclass
class Fault:
    kind: str
    at: float  # seconds after the trial started
    hold: float  # how long a stop, outage or full disk lasts; delay before a restart


@dataclass
class Trial:
    seed: int
    coordination: str
    pilots: int
    units: int
    faults: list[Fault]
    durations: list[float]
    injected: list[str] = field(default_factory=list)


def plan(seed: int, coordinations: list[str], units: int, disk: bool) -> Trial:
    """A trial's workload and fault schedule, from its seed alone."""
    draw = random.Random(seed)
    coordination = coordinations[seed % len(coordinations)]
    pilots = draw.randint(1, 3)
    durations = [round(draw.uniform(0.05, 0.5), 3) for _ in range(units)]
    horizon = 1.0 + sum(durations) / (2 * pilots)  # agents start in about a second
    kinds = ["manager_kill", "manager_stop", "all_kill", "manager_twice"]
    if pilots > 1:
        kinds += ["agent_kill", "agent_stop", "agent_kill"]
    if coordination == "redis":
        kinds += ["redis_kill", "redis_outage"]
    if disk:
        kinds.append("disk_full")
    faults = []
    for _ in range(draw.randint(1, 3)):
        kind = draw.choice(kinds)
        hold = {
            "agent_stop": draw.uniform(0.5, 13.0),
            "manager_kill": draw.uniform(0.0, 1.0),
            "all_kill": draw.uniform(0.0, 1.0),
            "manager_stop": draw.uniform(0.5, 3.0),
            "redis_kill": draw.uniform(0.0, 1.5),
            "redis_outage": draw.uniform(1.0, 3.0),
            "disk_full": draw.uniform(0.5, 3.0),
        }.get(kind, 0.0)
        faults.append(Fault(kind, round(draw.uniform(0.3, horizon), 3), round(hold, 3)))
    faults.sort(key=lambda f: f.at)
    return Trial(seed, coordination, pilots, units, faults, durations)


def batch_file(trial: Trial, directory: Path, url: str, log: Path) -> Path:
    pilots = [
        {
            "resource": "fork://localhost",
            "pj_type": "local",
            "number_of_processes": 2,
            "working_directory": str(directory / f"pilot-{number}"),
        }
        for number in range(trial.pilots)
    ]
    units = [
        {
            "executable": sys.executable,
            "arguments": ["-I", "-S", str(UNIT), str(log), str(index), str(seconds)],
        }
        for index, seconds in enumerate(trial.durations)
    ]
    path = directory / "batch.yaml"
    # JSON is YAML: the batch file reader takes either.
    path.write_text(json.dumps({"coordination": url, "pilots": pilots, "units": units}, indent=1))
    return path


class Runner:
    """One trial: its services, its `troy run` processes, its faults, then its check."""

    def __init__(self, trial: Trial, directory: Path, timeout: float, tmpfs_ok: bool) -> None:
        self.trial = trial
        self.dir = directory
        self.timeout = timeout
        self.token = f"{os.getpid()}-{trial.seed}-{secrets.token_hex(4)}"
        self.home = directory / "home"
        self.log = directory / "units.log"
        self.scanner = ProcScanner(MARKER, self.token)
        self.tmpfs = Tmpfs(self.home) if tmpfs_ok else None
        self.redis: RedisServer | None = None
        self.manager: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.killed_manager = False
        self.service: str | None = None
        self.stopped: dict[int, float] = {}  # pid -> when to SIGCONT
        self.restarts: list[tuple[float, str]] = []  # (when, what): "redis" or "disk"
        self.agent_faults = 0
        self.resume_at: float | None = None  # when to start `troy run --resume`
        self.batch = directory / "batch.yaml"
        self.seconds: list[subprocess.Popen[bytes]] = []  # managers started beside the first
        self.redis_retry = 0.0
        self.deadline = 0.0  # when the campaign may try to start redis again
        base = {k: v for k, v in os.environ.items() if k != "TROY_COORDINATION"}
        base["TROY_HOME"] = str(self.home)
        base["TROY_HEARTBEAT_TIMEOUT"] = HEARTBEAT_TIMEOUT
        self.quiet_env = dict(base)  # for processes that are not the trial's (gather)
        self.env = {**base, MARKER: self.token}

    # -- the run ------------------------------------------------------------------------
    def start_manager(self, batch: Path, resume: bool, second: bool = False) -> None:
        """`troy run FILE`, or `troy run --resume FILE`.

        ``second``: a second manager beside the current one, left to finish by itself.
        """
        name = f"second-{len(self.seconds) + 1}" if second else str(self.starts + 1)
        if not second:
            self.starts += 1
        out = open(self.dir / f"manager-{name}.out", "wb")  # noqa: SIM115
        argv = [sys.executable, "-m", "troy", "run"]
        if resume:
            argv += ["--resume", str(batch)]
        else:
            argv.append(str(batch))
        with out:
            process = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=self.env, cwd=self.dir,
            )  # fmt: skip
        if second:
            self.seconds.append(process)
        else:
            self.manager = process
            self.killed_manager = False

    def _note_service(self) -> None:
        """The run's work-unit service id, once `troy run` has printed it."""
        if self.service is None and self.starts:
            found = re.search(r"units service (\S+)", self.manager_output())
            self.service = found.group(1) if found else None

    def manager_output(self) -> str:
        return (self.dir / f"manager-{self.starts}.out").read_text(errors="replace")

    def run(self) -> dict[str, Any]:
        trial = self.trial
        stuck: str | None = None
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.tmpfs is not None:
            self.tmpfs.mount()
        self.home.mkdir(parents=True, exist_ok=True)
        if trial.coordination == "redis":
            self.redis = RedisServer(self.home / "redis", self.quiet_env)
            if not self.redis.start():
                raise RuntimeError(f"redis-server did not start: see {self.dir}/redis.log")
            url = self.redis.url
        elif trial.coordination == "zmq":
            url = f"tcp://127.0.0.1:{free_port()}"
        else:
            url = (self.home / "coordination").as_uri()
        batch = batch_file(trial, self.dir, url, self.log)
        started = time.monotonic()
        self.deadline = started + self.timeout
        max_starts = 8 + sum(1 for f in trial.faults if f.kind in ("manager_kill", "all_kill"))
        pending = list(trial.faults)
        self.start_manager(batch, resume=False)
        while True:
            now = time.monotonic()
            if now - started > self.timeout:
                stuck = f"the run did not end within {self.timeout:.0f} s"
                break
            self.scanner.poll()
            self._restore(now)
            self._note_service()
            for fault in list(pending):
                if now - started >= fault.at and self._inject(fault, now):
                    pending.remove(fault)
                    trial.injected.append(fault.kind)
            assert self.manager is not None
            if self.manager.poll() is None:
                time.sleep(POLL)
                continue
            output = self.manager_output()
            self._note_service()
            if SUMMARY.search(output) and not self.killed_manager:
                break  # troy run followed the run to its end
            if self.resume_at is None:
                if self.starts >= max_starts:
                    stuck = f"troy run ended {self.starts} times without finishing the run"
                    break
                self.resume_at = now + 1.0  # it failed by itself (a full disk?): again
            if now < self.resume_at:
                time.sleep(POLL)
                continue
            self.resume_at = None
            if self.service is None or "no earlier run" in output or "nothing to resume" in output:
                # It ended before it recorded the run (killed early, or a full disk): there
                # is nothing to resume, so start the batch file afresh, as a user would.
                self.service = None
                self.start_manager(batch, resume=False)
            else:
                self.start_manager(batch, resume=True)
        return self._finish(url, stuck)

    # -- faults -------------------------------------------------------------------------
    def _inject(self, fault: Fault, now: float) -> bool:
        """Inject ``fault`` now if its target is there; False to try again later."""
        kind = fault.kind
        manager = self.manager
        if kind in ("agent_kill", "agent_stop"):
            live = [pid for pid in self.scanner.agents() if pid not in self.stopped]
            if len(live) < 2 or self.agent_faults >= self.trial.pilots - 1:
                return False
            pid = random.Random(f"{self.trial.seed}:{now}").choice(sorted(live))
            if kind == "agent_kill":
                send(pid, signal.SIGKILL)
            elif send(pid, signal.SIGSTOP):
                self.stopped[pid] = now + fault.hold
            self.agent_faults += 1
            return True
        if kind == "all_kill":  # as if the machine's troy processes crashed; units live on
            agents = self.scanner.agents()
            if manager is None or manager.poll() is not None or not agents:
                return False
            self.killed_manager = True
            manager.kill()
            for pid in agents:
                send(pid, signal.SIGKILL)
            manager.wait(10)
            self.resume_at = now + fault.hold
            return True
        if kind == "manager_twice":  # a second `troy run --resume FILE` while one runs
            if manager is None or manager.poll() is not None or self.service is None:
                return False
            self.start_manager(self.batch, resume=True, second=True)
            return True
        if kind in ("manager_kill", "manager_stop"):
            if manager is None or manager.poll() is not None or manager.pid in self.stopped:
                return False
            if kind == "manager_kill":
                self.killed_manager = True
                manager.kill()
                manager.wait(10)
                self.resume_at = now + fault.hold
            elif send(manager.pid, signal.SIGSTOP):
                self.stopped[manager.pid] = now + fault.hold
            return True
        if kind in ("redis_kill", "redis_outage"):
            if self.redis is None or not self.redis.running:
                return False
            if kind == "redis_kill":
                self.redis.kill()
            else:
                self.redis.stop()
            self.restarts.append((now + fault.hold, "redis"))
            return True
        if kind == "disk_full":
            if self.tmpfs is None or any(what == "disk" for _, what in self.restarts):
                return False
            self.tmpfs.fill()
            self.restarts.append((now + fault.hold, "disk"))
            return True
        raise ValueError(kind)

    def _restore(self, now: float, everything: bool = False) -> None:
        """SIGCONT, restart redis, free the disk: whatever is due (or all of it)."""
        for pid, when in list(self.stopped.items()):
            if everything or now >= when:
                send(pid, signal.SIGCONT)
                del self.stopped[pid]
        keep = []
        for when, what in self.restarts:
            if not (everything or now >= when):
                keep.append((when, what))
            elif what == "redis" and self.redis is not None and not self.redis.start(timeout=2.0):
                keep.append((now + 0.5, what))
            elif what == "disk" and self.tmpfs is not None:
                self.tmpfs.free()
        self.restarts = keep
        # Like a service manager would: redis-server exits by itself on a full disk
        # (an AOF write error with appendfsync always); start it again.
        if (
            self.redis is not None
            and not self.redis.running
            and not any(what == "redis" for _, what in self.restarts)
            and now >= self.redis_retry
        ):
            self.redis_retry = now + 0.5
            self.redis.start(timeout=2.0)

    # -- the end ------------------------------------------------------------------------
    def _finish(self, url: str, stuck: str | None) -> dict[str, Any]:
        self._restore(time.monotonic(), everything=True)
        leftovers: list[dict[str, Any]] = []
        for second in self.seconds:  # they follow the same run: they end with it
            try:
                second.wait(max(1.0, self.deadline - time.monotonic()) if not stuck else 1.0)
            except subprocess.TimeoutExpired:
                second.kill()
                second.wait(10)
                stuck = stuck or "a second `troy run --resume` did not end with the run"
        if stuck:
            if self.manager is not None and self.manager.poll() is None:
                self.manager.kill()
                self.manager.wait(10)
            self.scanner.kill_all()
        else:
            # troy run has canceled the pilots; give agents and units a moment to go.
            deadline = time.monotonic() + 10.0
            while self.scanner.poll() and time.monotonic() < deadline:
                time.sleep(0.05)
            leftovers = [{"pid": pid, "cmd": cmd} for pid, cmd in self.scanner.alive.items()]
            self.scanner.kill_all()
        units: list[dict[str, Any]] | None = None
        events: list[dict[str, Any]] = []
        self._note_service()
        if self.service is not None:
            gathered = subprocess.run(
                [sys.executable, __file__, "--gather", url, self.service],
                capture_output=True, text=True, env=self.quiet_env, timeout=120, cwd=self.dir,
            )  # fmt: skip
            if gathered.returncode == 0:
                read = json.loads(gathered.stdout.strip().splitlines()[-1])
                units, events = read["units"], read["events"]
            else:
                stuck = stuck or f"cannot read the run back: {gathered.stderr.strip()[-500:]}"
        else:
            stuck = stuck or "troy run never printed its service id"
        log = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        return {
            "expected": list(range(self.trial.units)),
            "units": units,
            "events": events,
            "log": log,
            "procs": self.scanner.seen,
            "leftovers": leftovers,
            "stuck": stuck,
        }

    def close(self) -> None:
        """Stop everything this trial started, by PID; unmount its tmpfs."""
        with contextlib.suppress(Exception):
            self._restore(time.monotonic(), everything=True)
        for process in [self.manager, *self.seconds]:
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(10)
        self.scanner.kill_all()
        if self.redis is not None:
            self.redis.stop()
        if self.tmpfs is not None:
            self.tmpfs.unmount()


def gather(url: str, service: str) -> None:
    """Print (one JSON line) the run's units and its raw unit state events, read afresh."""
    import troy
    from troy.model import protocol

    units = troy.WorkUnitService(id=service, coordination=url)
    try:
        listed = []
        for unit in units.list():
            arguments = unit.description.get("arguments") or []
            listed.append(
                {
                    "id": unit.id,
                    "index": int(arguments[4]) if len(arguments) > 4 else -1,
                    "state": str(unit.state),
                    "detail": unit.state_detail,
                    "attempt": unit.attempt,
                    "tries": unit.tries,
                    "history": [[str(state), when] for state, when in unit.history],
                }
            )
        coordination = units._manager.coordination
        events: list[dict[str, Any]] = []
        cursor = None
        while True:
            batch, cursor = coordination.read(protocol.service_key(service), cursor)
            if not batch:
                break
            for event in batch:
                if event.get("ev") == "unit" and "state" in event:
                    event = event["state"]
                if event.get("ev") == "state":
                    events.append({k: event.get(k) for k in ("id", "s", "a", "ts")})
    finally:
        units.close()
    print(json.dumps({"units": listed, "events": events}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--coordination", default=",".join(COORDINATIONS))
    parser.add_argument("--units", type=int, default=20)
    parser.add_argument("--trial-timeout", type=float, default=60.0)
    parser.add_argument("--workdir", help="where trials run (default: a temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep every trial's directory")
    parser.add_argument("--no-disk", action="store_true", help="no disk_full faults")
    parser.add_argument("--gather", nargs=2, metavar=("URL", "SERVICE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    # A SIGTERM ends the campaign as Ctrl-C does: through every trial's cleanup.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if args.gather:
        gather(*args.gather)
        return 0
    coordinations = [c.strip() for c in args.coordination.split(",") if c.strip()]
    for name in coordinations:
        if name not in COORDINATIONS:
            parser.error(f"unknown coordination {name!r}: choose from {', '.join(COORDINATIONS)}")
    if "redis" in coordinations and shutil.which("redis-server") is None:
        parser.error("redis coordination needs redis-server on PATH")
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="troy-chaos-")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    disk = not args.no_disk
    if disk:
        reason = Tmpfs.why_not(workdir / "probe")
        with contextlib.suppress(OSError):
            (workdir / "probe").rmdir()
        if reason:
            print(f"disk_full faults skipped: cannot mount a tmpfs here ({reason})", flush=True)
            disk = False
    faults: Counter[str] = Counter()
    violations: Counter[str] = Counter()
    bad_seeds: dict[str, list[int]] = {}
    started = time.monotonic()
    for number in range(args.trials):
        seed = args.seed + number
        trial = plan(seed, coordinations, args.units, disk)
        directory = workdir / f"trial-{seed}"
        runner = Runner(trial, directory, args.trial_timeout, disk)
        began = time.monotonic()
        try:
            history = runner.run()
            (directory / "history.json").write_text(json.dumps(history))
            found = check(history)
        finally:
            runner.close()
        faults.update(trial.injected)
        kinds = count(found)
        violations.update(kinds)
        for kind in kinds:
            bad_seeds.setdefault(kind, []).append(seed)
        print(
            f"trial seed={seed} coordination={trial.coordination} pilots={trial.pilots}"
            f" units={trial.units} faults={','.join(trial.injected) or '-'}"
            f" violations={json.dumps(kinds, sort_keys=True)} ({time.monotonic() - began:.1f} s)",
            flush=True,
        )
        for violation in found[:10]:
            text = " ".join(str(violation).split())
            print(f"    {text[:300]}", flush=True)
        if len(found) > 10:
            print(f"    ... {len(found) - 10} more in {directory}/history.json", flush=True)
        if found or args.keep:
            print(f"    kept in {directory}", flush=True)
        else:
            shutil.rmtree(directory, ignore_errors=True)
    summary = {
        "trials": args.trials,
        "seed": args.seed,
        "coordination": coordinations,
        "units": args.units,
        "faults": dict(sorted(faults.items())),
        "violations": dict(sorted(violations.items())),
        "seeds_with_violations": bad_seeds,
        "seconds": round(time.monotonic() - started, 1),
    }
    print("SUMMARY " + json.dumps(summary, sort_keys=True), flush=True)
    if not args.workdir and not violations and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
