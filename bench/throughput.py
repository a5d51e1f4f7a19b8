"""Throughput of troy against the machine's process-launch ceiling, in one run.

    python bench/throughput.py                      # W1, W2, startup, W3 with the defaults
    python bench/throughput.py --workload w1 -n 5000 -s 2 --repeats 3
    python bench/throughput.py --coordination file:///tmp/coord --workload w2

Workloads
    w1       N null units (/bin/true): the machine's ceiling (bench/spawn_ceiling.c, S
             threads of posix_spawn, built with cc; without cc, S Python processes
             of os.posix_spawn), the thread-pool ceiling (S threads calling
             subprocess.run), troy (one local pilot with S slots, one bulk submit),
             and troy against both ceilings.
    w2       N x /bin/sleep 0.1 on S slots: makespan against the ideal N*0.1/S.
    startup  PilotJobService.create() to the first unit Running.
    latency  --samples times each: create() to the first unit Running; and on an idle
             pilot, one unit's submit() to its Running and its Done to wait() returning.
    w3       100,000 null units (scale; ``--n-scale 1000000`` for a million): bulk-submit
             time, all Done, the manager's peak RSS when submit returned (what the
             units cost: independent of load), when all were Done, and after close
             (which compacts the service's stream), and
             throughput against W1's.  Runs in a child process so the RSS is the
             manager's own.

Each workload runs ``--repeats`` times; the median and range are printed, then one
line of JSON with every figure (prefixed ``RESULT``).  Timings are measured here,
never asserted in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import troy
from troy import State


def raw_ceiling(n: int, slots: int, argv: list[str]) -> float:
    """Seconds for a pool of ``slots`` threads to run ``argv`` n times (the thread-pool ceiling)."""
    started = time.perf_counter()
    with ThreadPoolExecutor(slots) as pool:
        list(pool.map(lambda _: subprocess.run(argv, check=True), range(n)))
    return time.perf_counter() - started


SPAWN_CEILING_C = Path(__file__).with_name("spawn_ceiling.c")

# One process of the Python fallback: says it is ready, waits for the go, spawns.
PROCESS_CEILING_CHILD = """
import os, sys
count, program = int(sys.argv[1]), sys.argv[2]
print("ready", flush=True)
sys.stdin.readline()
for _ in range(count):
    pid = os.posix_spawn(program, [program], os.environ)
    if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0:
        sys.exit(f"{program} failed")
"""


class MachineCeiling:
    """The machine's launch ceiling: bench/spawn_ceiling.c (S threads of posix_spawn +
    waitpid, no GIL) compiled with the system's ``cc``; without a compiler (or if it
    fails), S Python processes each calling os.posix_spawn N/S times."""

    def __init__(self, work: str) -> None:
        self.binary: str | None = None
        self.why = ""
        compiler = shutil.which("cc")
        if compiler is None:
            self.why = "no cc on this machine"
            return
        binary = os.path.join(work, "spawn_ceiling")
        built = subprocess.run(
            [compiler, "-O2", "-pthread", "-o", binary, str(SPAWN_CEILING_C)],
            capture_output=True, text=True,
        )  # fmt: skip
        if built.returncode == 0:
            self.binary = binary
        else:
            self.why = f"cc failed: {built.stderr.strip()[:200]}"

    @property
    def kind(self) -> str:
        return "c" if self.binary else "python-processes"

    def describe(self, slots: int) -> str:
        if self.binary:
            return f"C ceiling (posix_spawn, {slots} threads)"
        return f"Python ceiling ({slots} processes)"

    def seconds(self, n: int, slots: int, program: str) -> float:
        if self.binary:
            out = subprocess.run(
                [self.binary, str(n), str(slots), program],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            return float(out.stdout)
        return process_ceiling(n, slots, program)


def process_ceiling(n: int, slots: int, program: str) -> float:
    """Seconds for ``slots`` Python processes (one GIL each) to spawn ``program`` n times."""
    children = []
    for i in range(slots):
        argv = [sys.executable, "-c", PROCESS_CEILING_CHILD, str(n // slots + (i < n % slots))]
        children.append(
            subprocess.Popen([*argv, program], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        )
    for child in children:  # interpreter start-up is not part of the ceiling
        assert child.stdout is not None and child.stdout.readline().strip() == b"ready"
    started = time.perf_counter()
    for child in children:
        assert child.stdin is not None
        child.stdin.write(b"go\n")
        child.stdin.flush()
    failed = [child for child in children if child.wait() != 0]
    elapsed = time.perf_counter() - started
    for child in children:
        assert child.stdin is not None and child.stdout is not None
        child.stdin.close()
        child.stdout.close()
    if failed:
        raise SystemExit("the Python posix_spawn ceiling failed")
    return elapsed


class Session:
    """One pilot-job service with one running pilot of S slots, and a unit service."""

    def __init__(self, coordination: str, slots: int, directory: str) -> None:
        self.pilots = troy.PilotJobService(coordination=coordination)
        self.units = troy.WorkUnitService(coordination=coordination)
        self.units.add(self.pilots)
        self.created = time.time()
        self.pilot = self.pilots.create(
            "fork://localhost", {"number_of_processes": slots, "working_directory": directory}
        )

    def wait_running(self) -> None:
        deadline = time.monotonic() + 60
        while self.pilot.state != State.Running:
            if self.pilot.state.is_final or time.monotonic() > deadline:
                raise SystemExit(
                    f"pilot did not start: {self.pilot.state} {self.pilot.state_detail}"
                )
            time.sleep(0.005)

    def run(self, descriptions: list[dict[str, Any]]) -> tuple[float, float, list[troy.WorkUnit]]:
        """(submit seconds, submit-to-all-final seconds, units)."""
        started = time.perf_counter()
        units = self.units.submit(descriptions)
        submitted = time.perf_counter()
        self.units.wait()
        finished = time.perf_counter()
        bad = [u for u in units if u.state != State.Done]
        if bad:
            raise SystemExit(f"{len(bad)} units not Done, e.g. {bad[0].id}: {bad[0].state_detail}")
        return submitted - started, finished - started, units

    def close(self) -> None:
        self.pilots.cancel()
        self.units.close()
        self.pilots.close()


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def ms(seconds: list[float]) -> list[float]:
    return [value * 1000 for value in seconds]


def show(label: str, values: list[float], unit: str) -> None:
    s = summary(values)
    print(f"  {label:<38} {s['median']:10.2f} {unit:<8} (range {s['min']:.2f} - {s['max']:.2f})")


def workload_w1(args: argparse.Namespace, work: str) -> dict[str, Any]:
    """Per repeat, in this order: the machine ceiling, the thread-pool ceiling, troy."""
    machine = MachineCeiling(work)
    machine_rates, raw_rates, troy_rates = [], [], []
    vs_machine, vs_raw = [], []
    for repeat in range(args.repeats):
        machine_rates.append(args.n / machine.seconds(args.n, args.slots, "/bin/true"))
        raw_rates.append(args.n / raw_ceiling(args.n, args.slots, ["/bin/true"]))
        session = Session(args.coordination, args.slots, os.path.join(work, f"w1-{repeat}"))
        try:
            session.wait_running()
            _, total, _ = session.run([{"executable": "/bin/true"}] * args.n)
        finally:
            session.close()
        troy_rates.append(args.n / total)
        vs_machine.append(troy_rates[-1] / machine_rates[-1])
        vs_raw.append(troy_rates[-1] / raw_rates[-1])
    print(f"W1: {args.n} x /bin/true on {args.slots} slots")
    if machine.why:
        print(f"  ({machine.why}: the machine ceiling is S Python processes of os.posix_spawn)")
    show(machine.describe(args.slots), machine_rates, "units/s")
    show("thread-pool ceiling (subprocess.run)", raw_rates, "units/s")
    show("troy (one local pilot)", troy_rates, "units/s")
    show(f"troy / {'C' if machine.binary else 'Python processes'}", vs_machine, "")
    show("troy / thread pool", vs_raw, "")
    return {
        "ceiling": machine.kind,
        "ceiling_note": machine.why,
        "machine_per_s": summary(machine_rates),
        "threadpool_per_s": summary(raw_rates),
        "troy_per_s": summary(troy_rates),
        "troy_vs_machine": summary(vs_machine),
        "troy_vs_threadpool": summary(vs_raw),
    }


def workload_w2(args: argparse.Namespace, work: str) -> dict[str, Any]:
    n = args.n_sleep
    ideal = n * 0.1 / args.slots
    makespans, efficiencies = [], []
    for repeat in range(args.repeats):
        session = Session(args.coordination, args.slots, os.path.join(work, f"w2-{repeat}"))
        try:
            session.wait_running()
            _, total, _ = session.run([{"executable": "/bin/sleep", "arguments": ["0.1"]}] * n)
        finally:
            session.close()
        makespans.append(total)
        efficiencies.append(ideal / total)
    print(f"W2: {n} x /bin/sleep 0.1 on {args.slots} slots (ideal {ideal:.2f} s)")
    show("makespan", makespans, "s")
    show("efficiency (ideal / actual)", efficiencies, "")
    return {"ideal_s": ideal, "makespan_s": summary(makespans), "efficiency": summary(efficiencies)}


def workload_startup(args: argparse.Namespace, work: str) -> dict[str, Any]:
    latencies = []
    for repeat in range(args.repeats):
        pilots = troy.PilotJobService(coordination=args.coordination)
        units = troy.WorkUnitService(coordination=args.coordination)
        units.add(pilots)
        started = time.time()
        description = {
            "number_of_processes": args.slots,
            "working_directory": os.path.join(work, f"s-{repeat}"),
            **json.loads(args.pilot),
        }
        pilots.create(args.rm, description, args.pj_type)
        unit = units.submit({"executable": "/bin/true"})
        unit.wait(timeout=300)
        running = unit.timestamp(State.Running)
        assert running is not None, unit.state_detail
        latencies.append(running - started)
        pilots.cancel()
        units.close()
        pilots.close()
    print(f"startup: create() to first unit Running ({args.rm}, pj_type {args.pj_type})")
    print("  each: " + ", ".join(f"{latency:.2f} s" for latency in latencies))
    show("latency", latencies, "s")
    return {"create_to_running_s": summary(latencies)}


def workload_latency(args: argparse.Namespace, work: str) -> dict[str, Any]:
    """create() to the first unit Running, then single units on an idle pilot.

    Each single unit is submitted after the pilot has been idle for --idle seconds;
    ``start`` is submit() to the unit's recorded Running time (the agent's clock, the
    same machine), ``seen`` is its recorded Done time to the return of unit.wait().
    """
    creates, starts, seens, totals = [], [], [], []
    for repeat in range(args.samples):
        pilots = troy.PilotJobService(coordination=args.coordination)
        units = troy.WorkUnitService(coordination=args.coordination)
        units.add(pilots)
        try:
            created = time.time()
            pilots.create(
                "fork://localhost",
                {"number_of_processes": args.slots,
                 "working_directory": os.path.join(work, f"l-{repeat}")},
            )  # fmt: skip
            first = units.submit({"executable": "/bin/true"})
            first.wait(timeout=60)
            running = first.timestamp(State.Running)
            assert running is not None, first.state_detail
            creates.append(running - created)
            if repeat == 0:  # single units, all on the first pilot
                for _ in range(args.samples):
                    time.sleep(args.idle)
                    submitted = time.time()
                    unit = units.submit({"executable": "/bin/true"})
                    unit.wait(timeout=60)
                    seen = time.time()
                    started, ended = unit.timestamp(State.Running), unit.timestamp(State.Done)
                    assert unit.state == State.Done and started and ended, unit.state_detail
                    starts.append(started - submitted)
                    seens.append(seen - ended)
                    totals.append(seen - submitted)
        finally:
            pilots.cancel()
            units.close()
            pilots.close()
    print(f"latency: {args.samples} samples each; single units after {args.idle:g} s idle")
    show("create() to first unit Running", ms(creates), "ms")
    show("submit() to Running (idle pilot)", ms(starts), "ms")
    show("Done to wait() returning", ms(seens), "ms")
    show("submit() to wait() returning", ms(totals), "ms")
    return {
        "samples": args.samples,
        "idle_s": args.idle,
        "create_to_running_ms": summary(ms(creates)),
        "submit_to_running_ms": summary(ms(starts)),
        "done_to_wait_ms": summary(ms(seens)),
        "submit_to_wait_ms": summary(ms(totals)),
    }


W3_CHILD = """
import json, os, resource, sys, time
sys.path.insert(0, os.path.dirname(sys.argv[1]))
from throughput import Session
n, slots, coordination, directory = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
session = Session(coordination, slots, directory)
session.wait_running()
before_mb = peak_mb()
started = time.perf_counter()
units = session.units.submit([{"executable": "/bin/true"}] * n)
submit = time.perf_counter() - started
submit_mb = peak_mb()
session.units.wait()
total = time.perf_counter() - started
run_mb = peak_mb()
session.close()
done = sum(1 for u in units if u.state == "Done")
print(json.dumps({"submit_s": submit, "total_s": total, "done": done, "rss_mb": peak_mb(),
                  "rss_submit_mb": submit_mb, "rss_start_mb": before_mb, "rss_run_mb": run_mb}))
"""


def workload_w3(args: argparse.Namespace, work: str, w1: dict[str, Any] | None) -> dict[str, Any]:
    submits, rates, rss, at_submit, per_unit, run = [], [], [], [], [], []
    for repeat in range(args.repeats_w3):
        result = subprocess.run(
            [sys.executable, "-c", W3_CHILD, os.path.abspath(__file__), str(args.n_scale),
             str(args.slots), args.coordination, os.path.join(work, f"w3-{repeat}")],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        if figures["done"] != args.n_scale:
            raise SystemExit(f"W3: only {figures['done']} of {args.n_scale} units Done")
        submits.append(figures["submit_s"])
        rates.append(args.n_scale / figures["total_s"])
        rss.append(figures["rss_mb"])
        at_submit.append(figures["rss_submit_mb"])
        run.append(figures["rss_run_mb"])
        per_unit.append(
            (figures["rss_submit_mb"] - figures["rss_start_mb"]) * 1048576 / args.n_scale
        )
    print(f"W3: {args.n_scale} x /bin/true on {args.slots} slots (all Done)")
    show("bulk submit", submits, "s")
    show("throughput", rates, "units/s")
    show("manager peak RSS at submit", at_submit, "MB")
    show("  of which per unit", per_unit, "bytes")
    show("manager peak RSS until all Done", run, "MB")
    show("manager peak RSS (with close)", rss, "MB")
    result_w3: dict[str, Any] = {
        "submit_s": summary(submits),
        "troy_per_s": summary(rates),
        "manager_rss_mb": summary(rss),
        "manager_rss_submit_mb": summary(at_submit),
        "manager_rss_run_mb": summary(run),
        "submit_bytes_per_unit": summary(per_unit),
    }
    if w1 is not None:
        scale = statistics.median(rates) / w1["troy_per_s"]["median"]
        print(f"  {'throughput vs W1':<38} {scale:10.2f}")
        result_w3["throughput_vs_w1"] = scale
    return result_w3


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    workloads = ["all", "w1", "w2", "startup", "latency", "w3"]
    parser.add_argument("--workload", choices=workloads, default="all")
    parser.add_argument("-n", type=int, default=5000, help="units in W1 (default 5000)")
    parser.add_argument("--n-sleep", type=int, default=200, help="units in W2 (default 200)")
    parser.add_argument("--n-scale", type=int, default=100_000, help="units in W3 (default 100000)")
    parser.add_argument("-s", "--slots", type=int, default=2, help="pilot slots = raw pool size")
    parser.add_argument("--coordination", help="coordination URL (default: a fresh directory)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of W1, W2, startup")
    parser.add_argument(
        "--rm", default="fork://localhost", help="resource URL of the startup pilot"
    )
    parser.add_argument("--pj-type", help="backend of the startup pilot (default: by --rm)")
    parser.add_argument(
        "--pilot", default="{}", help="JSON merged into the startup pilot's description"
    )
    parser.add_argument("--samples", type=int, default=20, help="samples of each latency")
    parser.add_argument(
        "--idle", type=float, default=0.5, help="seconds the pilot idles before each latency unit"
    )
    parser.add_argument("--repeats-w3", type=int, default=1, help="runs of W3")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="troy-bench-")
    if args.coordination is None:
        args.coordination = "file://" + os.path.join(work, "coordination")
    print(f"troy {troy.__version__} on {platform.node()}: {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, coordination {args.coordination}")  # fmt: skip
    results: dict[str, Any] = {"slots": args.slots, "coordination": args.coordination.split(":")[0]}
    if args.workload in ("all", "w1"):
        results["w1"] = workload_w1(args, work) | {"n": args.n}
    if args.workload in ("all", "w2"):
        results["w2"] = workload_w2(args, work) | {"n": args.n_sleep}
    if args.workload in ("all", "startup"):
        results["startup"] = workload_startup(args, work)
    if args.workload in ("all", "latency"):
        results["latency"] = workload_latency(args, work)
    if args.workload in ("all", "w3"):
        results["w3"] = workload_w3(args, work, results.get("w1")) | {"n": args.n_scale}
    print("RESULT " + json.dumps(results))


if __name__ == "__main__":
    main()
