"""Simulation speed: one workload of N units on P pilots, played with every built-in scheduler.

    python bench/simulate.py                   # 1,000,000 units on 1,000 pilots, 1 run each
    python bench/simulate.py --quick           # 20,000 units on 100 pilots, 3 runs each
    python bench/simulate.py --schedulers shortest_first backfill --repeat 5
    python bench/simulate.py --units 100000 --profile shortest_first

The workload is built directly as `troy.sim.model` values (no YAML to parse):
``--pilots`` pilots of ``--slots`` slots each (default 4), all starting at 0,
and ``--units`` one-core units submitted at 0 whose runtimes are log-normal
(arithmetic mean ``--mean`` seconds, sigma 1 of their logarithm: a long tail),
drawn with a fixed seed; each unit carries its runtime as ``hints.runtime``,
so ``shortest_first`` and ``backfill`` place by exact estimates. Every unit
waits at 0, so an early-binding scheduler places them all in its first call
and a just-in-time one is called again each time slots free.

Each scheduler runs with its default options, and ``affinity`` and
``data_aware`` also with ``binding: late`` (named ``affinity:late`` ...). Each
run is one `troy.sim.engine.run` in this process, timed with
``time.perf_counter`` from the call to the result (building the workload is
not included; it is timed once and reported). Reported per scheduler: wall
seconds (median of ``--repeat`` runs, with the range), microseconds per unit,
the calls of ``place()``, the events and the makespan; then one line of JSON
with every figure (prefixed ``RESULT``). A run is also a check: every unit must
end Done, and repeated runs must give the same makespan, calls and events.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import random
import statistics
import sys
import time
from typing import Any

import troy
from troy.sim.engine import SimResult, run
from troy.sim.model import SimPilot, SimUnit, Workload

#: The built-in schedulers as NAME or NAME:late (``binding: late``).
SCHEDULERS = (
    "round_robin",
    "random",
    "least_loaded",
    "affinity",
    "affinity:late",
    "data_aware",
    "data_aware:late",
    "shortest_first",
    "backfill",
)


def build(units: int, pilots: int, slots: int, mean: float, seed: int) -> Workload:
    """The workload: ``pilots`` pilots of ``slots`` slots, ``units`` log-normal units."""
    draw = random.Random(seed)
    sigma = 1.0
    mu = math.log(mean) - sigma * sigma / 2
    made = []
    for n in range(units):
        runtime = draw.lognormvariate(mu, sigma)
        made.append(SimUnit(f"u{n}", "u", runtime, hints={"runtime": runtime}))
    farm = tuple(SimPilot(f"p{k}", slots) for k in range(pilots))
    return Workload("bench", seed, farm, tuple(made))


def play(workload: Workload, name: str) -> tuple[float, SimResult]:
    """Seconds to simulate ``workload`` with scheduler ``name`` (NAME or NAME:late)."""
    scheduler, _, binding = name.partition(":")
    options = {"binding": binding} if binding else None
    gc.collect()
    started = time.perf_counter()
    result = run(workload, scheduler, options)
    seconds = time.perf_counter() - started
    undone = sum(1 for record in result.records if record.state != "Done")
    if undone:
        raise SystemExit(f"{name}: {undone} units did not end Done")
    return seconds, result


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def profile(workload: Workload, name: str) -> None:
    """cProfile of one run (cumulative, top 25)."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    play(workload, name)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--units", type=int, default=1_000_000, help="units (1,000,000)")
    parser.add_argument("--pilots", type=int, default=1_000, help="pilots (1,000)")
    parser.add_argument("--slots", type=int, default=4, help="slots per pilot (4)")
    parser.add_argument("--mean", type=float, default=10.0, help="mean runtime, seconds (10)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--schedulers", nargs="+", default=list(SCHEDULERS), metavar="NAME")
    parser.add_argument("--repeat", type=int, default=1, help="runs per scheduler (1)")
    parser.add_argument("--quick", action="store_true", help="20,000 units on 100 pilots, 3 runs")
    parser.add_argument("--profile", metavar="NAME", help="only a cProfile of one scheduler")
    args = parser.parse_args()
    if args.quick:
        args.units, args.pilots, args.repeat = 20_000, 100, 3
    started = time.perf_counter()
    workload = build(args.units, args.pilots, args.slots, args.mean, args.seed)
    built = time.perf_counter() - started
    print(
        f"troy {troy.__version__} on {platform.node()}: {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; {args.units:,} units on {args.pilots:,} pilots "
        f"x {args.slots} slots (built in {built:.1f} s)"
    )
    if args.profile:
        profile(workload, args.profile)
        return
    print(
        f"  {'scheduler':<16} {'seconds (range)':>24} {'µs/unit':>8} {'place() calls':>14} "
        f"{'events':>10} {'makespan':>10}"
    )
    results: dict[str, Any] = {
        "units": args.units,
        "pilots": args.pilots,
        "slots": args.slots,
        "repeat": args.repeat,
        "build_s": built,
        "schedulers": {},
    }
    for name in args.schedulers:
        times: list[float] = []
        seen: set[tuple[float, int, int]] = set()
        for _ in range(args.repeat):
            seconds, result = play(workload, name)
            times.append(seconds)
            seen.add((result.makespan, result.calls, result.events))
        if len(seen) != 1:
            raise SystemExit(f"{name}: runs differ: {sorted(seen)}")
        s = summary(times)
        per_unit = s["median"] / args.units * 1e6
        spread = f"({s['min']:.1f} - {s['max']:.1f})" if args.repeat > 1 else ""
        print(
            f"  {name:<16} {s['median']:9.1f} {spread:>14} {per_unit:8.1f} "
            f"{result.calls:14,} {result.events:10,} {result.makespan:10.1f}",
            flush=True,
        )
        results["schedulers"][name] = {
            "seconds": s,
            "us_per_unit": per_unit,
            "calls": result.calls,
            "events": result.events,
            "makespan": result.makespan,
        }
        del result
    print("RESULT " + json.dumps(results))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
