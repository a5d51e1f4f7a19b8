"""Does the simulation predict real runs? Simulated against real makespan, per scheduler.

    python bench/validate_sim.py                        # the 3 reference workloads, every
                                                        # built-in scheduler, 3 real runs each
    python bench/validate_sim.py --workloads bag --schedulers round_robin --real-runs 1

For each reference workload of examples/workloads/ (bag of short tasks;
long-tail with data; a DAG) and each built-in scheduler (affinity and
data_aware also with ``binding: late``), the workload is simulated (the
simulation is deterministic) and run for real ``--real-runs`` times on local
pilots, exactly as ``troy compare --real`` runs it (troy.cli.real_run), with
the same workload and seed each time.  The error is
(median real makespan - simulated makespan) / median real makespan; the
target is within 5 %.

It is simulated twice: as the workload file says (no overheads), and with
troy's own overheads (`troy.sim.model.Overheads`: the agent's start-up, and
the time from a slot freeing to the next unit running) measured first, on
this machine, by a separate calibration run (`measure_overheads`: a bag of
equal short units on two pilots), not fitted to the workloads validated.
Prints one table row per pair (both errors, the real runs' range), then one
``RESULT {...}`` JSON line per pair.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from troy.cli.real_run import run_real
from troy.sim.engine import run as simulate
from troy.sim.model import Overheads, SimPilot, SimUnit, Workload
from troy.sim.workload import load_workload

WORKLOADS = Path(__file__).resolve().parent.parent / "examples" / "workloads"
REFERENCE = ("bag", "longtail", "dag")
#: Every built-in scheduler with its default options, and the late-binding variants.
SCHEDULERS: dict[str, tuple[str, dict[str, Any]]] = {
    "round_robin": ("round_robin", {}),
    "random": ("random", {}),
    "least_loaded": ("least_loaded", {}),
    "shortest_first": ("shortest_first", {}),
    "backfill": ("backfill", {}),
    "affinity": ("affinity", {}),
    "affinity/late": ("affinity", {"binding": "late"}),
    "data_aware": ("data_aware", {}),
    "data_aware/late": ("data_aware", {"binding": "late"}),
}


#: The calibration: 2 pilots x 2 slots, 48 units of 0.2 s dealt round robin (12 per slot).
CALIBRATION_UNITS, CALIBRATION_RUNTIME, CALIBRATION_SLOTS = 48, 0.2, 2


def measure_overheads(directory: Path, runs: int = 3) -> Overheads:
    """troy's own overheads on this machine, from real runs of a bag of equal short units.

    ``pilot_start_s``: the median over pilots of its first unit's start (the
    agent's start-up: the pilots start at once); ``unit_start_s``: per slot,
    (span of its units) / (units on it) - runtime, the median over pilots.
    """
    pilots = tuple(SimPilot(f"p{k}", CALIBRATION_SLOTS) for k in range(2))
    units = tuple(SimUnit(f"u.{n}", "u", CALIBRATION_RUNTIME) for n in range(CALIBRATION_UNITS))
    workload = Workload("calibration", 0, pilots, units)
    starts: list[float] = []
    per_unit: list[float] = []
    for index in range(runs):
        where = directory / "calibration" / str(index)
        played = run_real(workload, "round_robin", {}, where, (where / "coordination").as_uri())
        for pilot in pilots:
            mine = [r for r in played.result.records if r.pilot == pilot.id]
            first = min(r.start for r in mine if r.start is not None)
            last = max(r.end for r in mine if r.end is not None)
            starts.append(first)
            per_slot = len(mine) / CALIBRATION_SLOTS
            per_unit.append((last - first) / per_slot - CALIBRATION_RUNTIME)
    return Overheads(round(statistics.median(starts), 3), round(statistics.median(per_unit), 4))


def validate(
    workload_name: str, label: str, runs: int, directory: Path, overheads: Overheads
) -> dict[str, Any]:
    """One workload and scheduler: the simulated makespans and ``runs`` real ones."""
    workload = load_workload(WORKLOADS / f"{workload_name}.yaml")
    scheduler, options = SCHEDULERS[label]
    simulated = simulate(workload, scheduler, options)
    modelled = simulate(replace(workload, overheads=overheads), scheduler, options)
    real: list[float] = []
    moved: list[int] = []
    for index in range(runs):
        where = directory / workload_name / label.replace("/", "-") / str(index)
        played = run_real(
            workload,
            scheduler,
            {**options, "seed": workload.seed},
            where,
            (directory / "coordination").as_uri(),
            timeout=600,
        )
        records = played.result.records
        if played.timed_out or any(record.state != "Done" for record in records):
            raise SystemExit(f"{workload_name} {label}: a real run did not end with all Done")
        ends = [record.end for record in records if record.end is not None]
        real.append(max(ends) - min(record.submit for record in records))
        moved.append(sum(record.bytes_moved for record in records))
    median = statistics.median(real)
    return {
        "workload": workload_name,
        "scheduler": label,
        "sim_makespan": round(simulated.makespan, 3),
        "real_median": round(median, 3),
        "real_min": round(min(real), 3),
        "real_max": round(max(real), 3),
        "error": round((median - simulated.makespan) / median, 4),
        "sim_overheads_makespan": round(modelled.makespan, 3),
        "error_overheads": round((median - modelled.makespan) / median, 4),
        "sim_bytes_moved": sum(record.bytes_moved for record in simulated.records),
        "real_bytes_moved": moved,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default=",".join(REFERENCE))
    parser.add_argument("--schedulers", default=",".join(SCHEDULERS))
    parser.add_argument("--real-runs", type=int, default=3, help="real runs per pair")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="troy-validate-") as scratch:
        overheads = measure_overheads(Path(scratch))
        print(
            f"troy's overheads here: pilot_start_s {overheads.pilot_start_s},"
            f" unit_start_s {overheads.unit_start_s}",
            flush=True,
        )
        print(
            f"{'workload':<9} {'scheduler':<16} {'sim s':>7} {'+ovh s':>7}"
            f" {'real s (min-max)':>22} {'error':>7} {'+ovh':>7}"
        )
        for workload_name in args.workloads.split(","):
            for label in args.schedulers.split(","):
                started = time.time()
                row = validate(workload_name, label, args.real_runs, Path(scratch), overheads)
                rows.append(row)
                spread = f"{row['real_median']:.2f} ({row['real_min']:.2f}-{row['real_max']:.2f})"
                print(
                    f"{workload_name:<9} {label:<16} {row['sim_makespan']:>7.2f}"
                    f" {row['sim_overheads_makespan']:>7.2f} {spread:>22}"
                    f" {100 * row['error']:>6.1f}% {100 * row['error_overheads']:>6.1f}%"
                    f"   ({time.time() - started:.0f} s)",
                    flush=True,
                )
    for key, what in (("error", "as written"), ("error_overheads", "with troy's overheads")):
        worst = max(abs(row[key]) for row in rows)
        print(f"worst error {what}: {100 * worst:.1f} % over {len(rows)} pairs")
    for row in rows:
        print("RESULT " + json.dumps(row, sort_keys=True))


if __name__ == "__main__":
    main()
