"""Placement cost: one submit against the service's size, and placement against pilots.

    python bench/placement.py                  # both parts (about 30 s)
    python bench/placement.py --quick          # smaller sizes, fewer runs (a few seconds)
    python bench/placement.py --part submit --profile

Parts
    submit    The time of one ``WorkUnitService.submit()`` of one unit, in a service
              that already holds 1,000 and 100,000 unfinished units (``--sizes``).
              Each size runs in a child process of its own (so the heap is that
              service's alone), the sizes alternating, ``--repeats`` times.  The units
              stay unfinished because the one pilot's agent is stopped (SIGSTOP) once
              it runs, as in tests/integration/test_placement.py; the heartbeat timeout
              is raised so the stopped agent is not declared lost meanwhile.  Reported:
              per-submit median (and mean) of ``-n`` submits in each child; over the
              children the median and range; and the ratio largest / smallest per
              repeat.  ``--profile`` adds a cProfile of the submits at the largest size.
    place     ``Placement.decide()`` with the ``round_robin`` scheduler for a batch of
              B new units against P live pilots (``--pilots``, ``--batches``): the
              manager's whole decision (offers, requests, the scheduler, checks, queue
              items), writing nothing.  Pilots are small stand-ins fed through a
              ``pilots()`` callable; the coordination (a file URL), scheduler and
              DataLocator are the real ones.  Reported in microseconds per unit, and
              separately ``Placement.offers()`` per call and the scheduler's own
              ``place()`` per unit.

Each figure is the median of ``--repeats`` runs with its range, then one line of
JSON with every figure (prefixed ``RESULT``).  Timings are measured here, never
asserted in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import troy
from troy import State
from troy.core.data_locator import DataLocator
from troy.core.dependencies import DependencyTracker
from troy.core.placement import Placement
from troy.core.transitions import Unwatched
from troy.model import protocol
from troy.model.description import PilotJobDescription, WorkUnitDescription
from troy.plugins import registry

UNIT = {"executable": "/bin/true"}


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def show(label: str, values: list[float], unit: str, digits: int = 1) -> None:
    s = summary(values)
    print(
        f"  {label:<40} {s['median']:10.{digits}f} {unit:<6} "
        f"(range {s['min']:.{digits}f} - {s['max']:.{digits}f})"
    )


# -- part 1: one submit against the service's size ---------------------------------------
def submit_run(size: int, count: int, directory: str, profile: bool) -> dict[str, Any]:
    """In this process: a service with ``size`` unfinished units; ``count`` single submits."""
    os.environ["TROY_HEARTBEAT_TIMEOUT"] = "3600"  # the stopped agent must not count as lost
    coordination = "file://" + os.path.join(directory, "coordination")
    pilots = troy.PilotJobService(coordination=coordination)
    units = troy.WorkUnitService(coordination=coordination)
    units.add(pilots)
    pilot = pilots.create(
        "fork://localhost",
        {"number_of_processes": 1, "working_directory": os.path.join(directory, "pilot")},
    )
    deadline = time.monotonic() + 60
    while pilot.state != State.Running:
        if pilot.state.is_final or time.monotonic() > deadline:
            raise SystemExit(f"pilot did not start: {pilot.state} {pilot.state_detail}")
        time.sleep(0.005)
    assert pilot.handle is not None
    agent = int(pilot.handle["pid"])
    os.kill(agent, signal.SIGSTOP)  # the agent claims nothing, every unit stays Pending
    result: dict[str, Any] = {"size": size}
    try:
        started = time.perf_counter()
        units.submit([UNIT] * size)
        result["prefill_s"] = time.perf_counter() - started
        for _ in range(20):  # warm up
            units.submit(UNIT)
        times = []
        profiler = None
        if profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        for _ in range(count):
            started = time.perf_counter()
            units.submit(UNIT)
            times.append(time.perf_counter() - started)
        if profiler is not None:
            import io
            import pstats

            profiler.disable()
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(22)
            result["profile"] = text.getvalue()
        unfinished = sum(1 for unit in units.list() if not unit.state.is_final)
        result["unfinished"] = unfinished
        result["us"] = [t * 1e6 for t in times]
    finally:
        os.kill(agent, signal.SIGCONT)
        units.close()  # first, so that the pilot's end does not send 100k units back
        pilots.cancel()
        pilots.close()
    return result


SUBMIT_CHILD = """
import json, os, sys
sys.path.insert(0, os.path.dirname(sys.argv[1]))
from placement import submit_run
result = submit_run(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5] == "1")
print(json.dumps(result))
"""


def part_submit(args: argparse.Namespace, work: str) -> dict[str, Any]:
    sizes = args.sizes
    per_size: dict[int, list[float]] = {size: [] for size in sizes}
    means: dict[int, list[float]] = {size: [] for size in sizes}
    ratios: list[float] = []
    profile_text = ""
    for repeat in range(args.repeats):
        order = sizes if repeat % 2 == 0 else list(reversed(sizes))
        medians = {}
        for size in order:
            profile = args.profile and size == max(sizes) and repeat == 0
            directory = tempfile.mkdtemp(prefix=f"submit-{size}-", dir=work)
            child = subprocess.run(
                [sys.executable, "-c", SUBMIT_CHILD, os.path.abspath(__file__), str(size),
                 str(args.n), directory, "1" if profile else "0"],
                capture_output=True, text=True,
            )  # fmt: skip
            if child.returncode != 0:
                raise SystemExit(f"submit child ({size}) failed:\n{child.stderr}")
            figures = json.loads(child.stdout.strip().splitlines()[-1])
            if figures["unfinished"] < size + args.n:
                raise SystemExit(f"only {figures['unfinished']} units unfinished at size {size}")
            medians[size] = statistics.median(figures["us"])
            per_size[size].append(medians[size])
            means[size].append(statistics.fmean(figures["us"]))
            profile_text = figures.get("profile", profile_text)
        ratios.append(medians[max(sizes)] / medians[min(sizes)])
    print(f"submit: one unit per submit(), {args.n} submits per run, agent stopped")
    for size in sizes:
        show(f"{size:,} unfinished: median per submit", per_size[size], "µs")
        show(f"{size:,} unfinished: mean per submit", means[size], "µs")
    show(f"ratio {max(sizes):,} / {min(sizes):,} (medians)", ratios, "", 2)
    if profile_text:
        print(f"  cProfile of {args.n} submits at {max(sizes):,} unfinished (cumulative):")
        print("\n".join("    " + line for line in profile_text.strip().splitlines()))
    return {
        "n": args.n,
        "per_submit_us": {str(size): summary(per_size[size]) for size in sizes},
        "mean_per_submit_us": {str(size): summary(means[size]) for size in sizes},
        "ratio": summary(ratios),
    }


# -- part 2: placement against many pilots ------------------------------------------------
@dataclass(eq=False)
class BenchPilot(Unwatched):
    """A live pilot as troy/core/tracked.py's TrackedPilot describes it, nothing more."""

    id: str
    description: PilotJobDescription
    slots: int | None
    state: State = State.Running
    canceling: bool = False
    service_id: str = "pjs-bench"
    rm: str = "fork://localhost"
    pj_type: str = "local"
    working_directory: str = "/nonexistent"
    context: Any = None
    handle: dict[str, Any] | None = None
    heartbeat_timeout: float = 20.0
    queue: str = ""
    state_detail: str = ""
    history: list[tuple[State, float]] = field(default_factory=list)
    attempt: int = 0


@dataclass(eq=False)
class BenchUnit(Unwatched):
    """A New unit as TrackedUnit describes it."""

    id: str
    description: WorkUnitDescription
    state: State = State.New
    service_id: str = "wus-bench"
    exit_code: int | None = None
    pilot: str | None = None
    sandbox: str | None = None
    tries: list[dict[str, Any]] = field(default_factory=list)
    transfers: list[dict[str, Any]] = field(default_factory=list)
    state_detail: str = ""
    history: list[tuple[State, float]] = field(default_factory=list)
    attempt: int = 0


def make_placement(pilot_count: int, directory: str) -> Placement:
    description = PilotJobDescription({"number_of_processes": 4})
    pilots = [
        BenchPilot(f"pilot-{n:05d}", description, 4, queue=protocol.pilot_key(f"pilot-{n:05d}"))
        for n in range(pilot_count)
    ]
    coordination = registry.open_coordination("file://" + directory)
    scheduler = registry.load("scheduler", "round_robin")()
    return Placement(
        "wus-bench",
        coordination,
        scheduler,
        {},
        threading.RLock(),
        lambda: list(pilots),  # as a manager does: a fresh list per call
        lambda events: None,
        DependencyTracker(),
        DataLocator(coordination),
    )


def new_units(count: int) -> tuple[list[BenchUnit], list[dict[str, Any]]]:
    units = [BenchUnit(f"wus-bench.{n}", WorkUnitDescription(UNIT)) for n in range(count)]
    return units, [unit.description.as_dict() for unit in units]


def timed(call: Any, calls: int) -> float:
    """Seconds per call of ``call()``, over ``calls`` calls."""
    started = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - started) / calls


def part_place(args: argparse.Namespace, work: str) -> dict[str, Any]:
    results: dict[str, Any] = {}
    print("place: round_robin, Placement.decide() for B new units against P pilots")
    for pilot_count in args.pilots:
        placement = make_placement(pilot_count, tempfile.mkdtemp(prefix="coord-", dir=work))
        offers_us: list[float] = []
        row: dict[str, Any] = {}
        for batch in args.batches:
            units, plain = new_units(batch)
            decide = partial(placement.decide, units, plain)
            calls = max(1, int(0.2 / max(timed(decide, 1), 1e-6)))  # ~0.2 s per run
            decide_us, place_us = [], []
            for _ in range(args.repeats):
                per_call = timed(decide, calls)
                decide_us.append(per_call / batch * 1e6)
                offers = placement.offers()
                requests = [placement._request(unit, {}) for unit in units]
                per_call = timed(partial(placement.scheduler.place, requests, offers), calls)
                place_us.append(per_call / batch * 1e6)
                offers_us.append(timed(placement.offers, max(1, calls // 4)) * 1e6)
            show(f"P={pilot_count:,} B={batch:,}: decide per unit", decide_us, "µs")
            show(f"P={pilot_count:,} B={batch:,}: scheduler place() per unit", place_us, "µs")
            row[str(batch)] = {"decide_us": summary(decide_us), "place_us": summary(place_us)}
        show(f"P={pilot_count:,}: offers() per call", offers_us, "µs")
        results[str(pilot_count)] = row | {"offers_us": summary(offers_us)}
        placement.coordination.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--part", choices=["all", "submit", "place"], default="all")
    parser.add_argument("--quick", action="store_true", help="small sizes, 3 runs")
    parser.add_argument("-n", type=int, default=300, help="single submits per run (300)")
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[1_000, 100_000], help="unfinished units"
    )
    parser.add_argument("--pilots", type=int, nargs="+", default=[10, 1_000, 10_000])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 100, 10_000])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each figure (5)")
    parser.add_argument("--profile", action="store_true", help="cProfile the largest size")
    args = parser.parse_args()
    if args.quick:
        args.n, args.sizes, args.repeats = 100, [1_000, 10_000], 3
        args.pilots, args.batches = [10, 1_000], [1, 100]
    work = tempfile.mkdtemp(prefix="troy-bench-placement-")
    print(f"troy {troy.__version__} on {platform.node()}: {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, file coordination in {work}")  # fmt: skip
    results: dict[str, Any] = {}
    if args.part in ("all", "submit"):
        results["submit"] = part_submit(args, work)
    if args.part in ("all", "place"):
        results["place"] = part_place(args, work)
    print("RESULT " + json.dumps(results))


if __name__ == "__main__":
    main()
