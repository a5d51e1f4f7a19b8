"""Many agents on one coordination: their CPU while idle, and a sleep workload's efficiency.

    python bench/many_agents.py                                  # 128 pilots x 4 slots, file
    python bench/many_agents.py --pilots 16 --repeats 5 --idle 10
    python bench/many_agents.py --coordination "redis://127.0.0.1:6392/0?prefix=many"
    python bench/many_agents.py --coordination "tcp://127.0.0.1:5793?journal=/tmp/manyzmq"

One run starts ``--pilots`` local pilots of ``--slots`` slots on one
coordination, waits until all are Running, then, ``--repeats`` times:

idle     sums the CPU time (utime + stime from /proc/<pid>/stat) of every process
         of the run (this one, the manager, and its descendants: the agents, their
         guards, an embedded broker) over ``--idle`` seconds with nothing to do;
         reported as percent of one core.  CPU time, not wall time: machine load
         does not distort it.
latency  submits one ``/bin/true`` to the idle pilots, ``--latency-n`` times, one after
         the other after a pause: submit() to Running (as the agent reported it)
         and submit() to Done seen by wait(); the median over all is kept.
sleep    submits pilots x slots x ``--rounds`` units of ``sleep --duration`` and
         reports efficiency = ideal / makespan, the ideal being rounds x duration.

The median and range of each figure are printed, then one line of JSON
(prefixed ``RESULT``).  Timings are measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from typing import Any

from throughput import show, summary  # this folder is on sys.path when run

import troy
from troy import State

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (its threads included), 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as file:
            fields = file.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def descendants(root: int) -> list[int]:
    """``root`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as file:
                parent = int(file.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        children.setdefault(parent, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def kind_of(pid: int) -> str:
    """ "manager" (this process), "agent", "guard" or "other" (e.g. a unit)."""
    if pid == os.getpid():
        return "manager"
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            command = file.read()
    except OSError:
        return "other"
    if b"guard_process" in command:
        return "guard"
    return "agent" if b"troy.agent" in command else "other"


def idle_cpu(seconds: float, servers: list[int]) -> tuple[float, dict[str, float]]:
    """(percent of one core used by this process tree and ``servers`` over ``seconds``,
    that by kind); a server (e.g. a redis-server started apart) counts as "server"."""
    pids = descendants(os.getpid()) + servers
    before = {pid: cpu_seconds(pid) for pid in pids}
    started = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - started
    by_kind: dict[str, float] = {}
    for pid in pids:
        used = max(0.0, cpu_seconds(pid) - before[pid])
        kind = "server" if pid in servers else kind_of(pid)
        by_kind[kind] = by_kind.get(kind, 0.0) + 100 * used / elapsed
    return sum(by_kind.values()), by_kind


def start_pilots(
    coordination: str, pilots: int, slots: int, directory: str
) -> tuple[troy.PilotJobService, troy.WorkUnitService]:
    service = troy.PilotJobService(coordination=coordination)
    units = troy.WorkUnitService(coordination=coordination)
    units.add(service)
    created = [
        service.create(
            "fork://localhost",
            {"number_of_processes": slots, "working_directory": os.path.join(directory, str(i))},
        )
        for i in range(pilots)
    ]
    deadline = time.monotonic() + 300
    for pilot in created:
        while pilot.state != State.Running:
            if pilot.state.is_final or time.monotonic() > deadline:
                raise SystemExit(f"pilot did not start: {pilot.state} {pilot.state_detail}")
            time.sleep(0.05)
    return service, units


def one_unit(units: troy.WorkUnitService) -> tuple[float, float]:
    """(seconds from submit() to Running, to Done seen by wait()) of one /bin/true."""
    submitted = time.time()
    unit = units.submit({"executable": "/bin/true"})
    unit.wait(timeout=60)
    done = time.time()
    running = unit.timestamp(State.Running)
    if unit.state != State.Done or running is None:
        raise SystemExit(f"unit {unit.id} {unit.state}: {unit.state_detail}")
    return running - submitted, done - submitted


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pilots", type=int, default=128, help="local pilots (default 128)")
    parser.add_argument("-s", "--slots", type=int, default=4, help="slots per pilot (default 4)")
    parser.add_argument("--coordination", help="coordination URL (default: a fresh directory)")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle measurement")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds before measuring")
    parser.add_argument("--rounds", type=int, default=10, help="units per slot (default 10)")
    parser.add_argument("--duration", type=float, default=1.0, help="seconds each unit sleeps")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--server-pid",
        type=int,
        action="append",
        default=[],
        help="also count this process's idle CPU (e.g. the redis-server's; repeatable)",
    )
    parser.add_argument("--latency-n", type=int, default=5, help="single units per repeat")
    parser.add_argument("--workload", choices=["all", "idle", "latency", "sleep"], default="all")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="troy-many-")
    coordination = args.coordination or "file://" + os.path.join(work, "coordination")
    print(f"troy {troy.__version__} on {platform.node()}: {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.2f}, coordination {coordination}")  # fmt: skip
    n = args.pilots * args.slots * args.rounds
    ideal = args.rounds * args.duration
    idle: list[float] = []
    makespans: list[float] = []
    efficiencies: list[float] = []
    kinds: dict[str, list[float]] = {}
    starts: list[float] = []
    finishes: list[float] = []
    # One set of pilots for all repeats: starting 128 agents on a loaded machine takes
    # minutes, and what is measured is the agents once they run.
    service, units = start_pilots(coordination, args.pilots, args.slots, work)
    try:
        for _ in range(args.repeats):
            time.sleep(args.settle)
            if args.workload in ("all", "idle"):
                percent, by_kind = idle_cpu(args.idle, args.server_pid)
                idle.append(percent)
                for kind, value in by_kind.items():
                    kinds.setdefault(kind, []).append(value)
            if args.workload in ("all", "latency"):
                for _ in range(args.latency_n):
                    time.sleep(0.5)  # idle again: pilots back off where they poll
                    running, done = one_unit(units)
                    starts.append(running)
                    finishes.append(done)
            if args.workload in ("all", "sleep"):
                description = {"executable": "/bin/sleep", "arguments": [f"{args.duration:g}"]}
                started = time.perf_counter()
                submitted = units.submit([description] * n)
                units.wait()
                makespans.append(time.perf_counter() - started)
                efficiencies.append(ideal / makespans[-1])
                bad = [u for u in submitted if u.state != State.Done]
                if bad:
                    raise SystemExit(f"{len(bad)} units not Done: {bad[0].state_detail}")
    finally:
        service.cancel()
        units.close()
        service.close()
    results: dict[str, Any] = {
        "coordination": coordination.split(":")[0],
        "pilots": args.pilots,
        "slots": args.slots,
        "repeats": args.repeats,
    }
    print(f"{args.pilots} pilots x {args.slots} slots")
    if idle:
        show(f"idle CPU over {args.idle:g} s", idle, "% core")
        for kind, values in sorted(kinds.items()):
            show(f"  of which {kind}", values, "% core")
        results["idle_cpu_percent"] = summary(idle)
        results["idle_cpu_percent_by_kind"] = {k: summary(v) for k, v in kinds.items()}
    if starts:
        print(f"latency: one unit at a time to idle pilots ({len(starts)} units)")
        show("submit() to Running", [1000 * v for v in starts], "ms")
        show("submit() to Done seen by wait()", [1000 * v for v in finishes], "ms")
        results["start_latency_ms"] = summary([1000 * v for v in starts])
        results["done_latency_ms"] = summary([1000 * v for v in finishes])
    if makespans:
        print(f"sleep: {n} x sleep {args.duration:g} (ideal {ideal:g} s)")
        show("makespan", makespans, "s")
        show("efficiency (ideal / makespan)", efficiencies, "")
        results |= {
            "units": n,
            "ideal_s": ideal,
            "makespan_s": summary(makespans),
            "efficiency": summary(efficiencies),
        }
    print("RESULT " + json.dumps(results))


if __name__ == "__main__":
    main()
