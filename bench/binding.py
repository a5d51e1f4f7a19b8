"""Early versus late binding: the same heterogeneous workload on a fast and a slow pilot.

    python bench/binding.py                  # 400 units, about 40 core-seconds (~1 minute)
    python bench/binding.py -n 200 --work 20 # smaller

Two pilots of two slots each; on the second every unit sleeps ``--slowdown``
times as long (its pilot environment sets SLOW). Unit durations are drawn
from a long-tailed (log-normal) distribution with a fixed seed and scaled so
that they sum to ``--work`` core-seconds at full speed.

* early binding: the ``local`` backend and the ``round_robin`` scheduler
  deal the units to the pilots at submit, half each, whatever their speed;
* late binding: the ``diane`` backend; its workers pull a unit whenever a
  slot is free, so the slow pilot simply takes fewer.

For each: the makespan (submit to the last unit's end) and each pilot's
utilisation (busy slot-seconds over makespan x slots), then one
``RESULT {...}`` JSON line.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import troy
from troy import State

#: The unit: sleep $D seconds times the pilot's $SLOW factor.
UNIT = ["-c", 'sleep "$(awk "BEGIN { print $D * ${SLOW:-1} }")"']


def durations(count: int, work: float, seed: int) -> list[float]:
    """``count`` log-normal durations (sigma 1: a long tail) summing to ``work`` seconds."""
    draw = random.Random(seed)
    raw = [draw.lognormvariate(0.0, 1.0) for _ in range(count)]
    scale = work / sum(raw)
    return [round(value * scale, 4) for value in raw]


def run(kind: str, args: argparse.Namespace, directory: Path) -> dict[str, Any]:
    """Run the workload with early ("early") or late ("late") binding; its figures."""
    coordination = (directory / f"coordination-{kind}").as_uri()
    pilots = troy.PilotJobService(coordination=coordination)
    units = troy.WorkUnitService(coordination=coordination, scheduler="round_robin")
    units.add(pilots)
    pj_type = "local" if kind == "early" else "diane"
    speeds = {"fast": 1.0, "slow": args.slowdown}
    made = {}
    try:
        for name, factor in speeds.items():
            pilot = pilots.create(
                "fork://localhost",
                {
                    "number_of_processes": args.slots,
                    "working_directory": str(directory / f"{kind}-{name}"),
                    "environment": {"SLOW": f"{factor:g}"},
                },
                pj_type,
            )
            made[pilot.id] = name
        deadline = time.monotonic() + 60
        while any(p.state != State.Running for p in pilots.list()):
            if time.monotonic() > deadline:
                raise SystemExit(f"{kind}: pilots did not start: {pilots.list()}")
            time.sleep(0.05)
        descriptions = [
            {"executable": "/bin/sh", "arguments": UNIT, "environment": {"D": f"{d}"}}
            for d in durations(args.n, args.work, args.seed)
        ]
        started = time.time()
        submitted = units.submit(descriptions)
        units.wait()
        failed = [u for u in submitted if u.state != State.Done]
        if failed:
            raise SystemExit(f"{kind}: {len(failed)} units not Done: {failed[0].state_detail}")
        ended = max(u.history[-1][1] for u in submitted)
        makespan = ended - started
        busy = dict.fromkeys(made.values(), 0.0)
        count = dict.fromkeys(made.values(), 0)
        for unit in submitted:
            run_from = unit.timestamp(State.Running)
            assert run_from is not None and unit.pilot is not None
            name = made[unit.pilot]
            busy[name] += unit.history[-1][1] - run_from
            count[name] += 1
        return {
            "makespan_s": makespan,
            "utilisation": {n: busy[n] / (makespan * args.slots) for n in busy},
            "units": count,
        }
    finally:
        pilots.cancel()
        units.close()
        pilots.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=400, help="units (default 400)")
    parser.add_argument("--work", type=float, default=40.0, help="core-seconds at full speed")
    parser.add_argument("--slots", type=int, default=2, help="slots per pilot (default 2)")
    parser.add_argument("--slowdown", type=float, default=2.0, help="slow pilot's factor")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    results: dict[str, Any] = {"n": args.n, "work_s": args.work, "slowdown": args.slowdown}
    ideal = args.work / (args.slots * (1 + 1 / args.slowdown))
    print(
        f"{args.n} units, {args.work:g} core-s, 2 pilots x {args.slots} slots, one "
        f"{args.slowdown:g}x slower (ideal makespan {ideal:.1f} s)"
    )
    with tempfile.TemporaryDirectory(prefix="troy-binding-") as work:
        for kind, label in (("early", "early binding (local + round_robin)"),
                            ("late", "late binding (diane)")):  # fmt: skip
            figures = run(kind, args, Path(work))
            results[kind] = figures
            shares = ", ".join(
                f"{name} {figures['units'][name]} units {share:.0%} busy"
                for name, share in figures["utilisation"].items()
            )
            print(f"  {label:38s} makespan {figures['makespan_s']:6.2f} s   {shares}")
    print("RESULT " + json.dumps(results))


if __name__ == "__main__":
    main()
