"""Does the simulation predict real runs? Simulated against real makespan, per scheduler.

    python bench/validate_sim.py                        # the 3 reference workloads, every
                                                        # built-in scheduler, 3 real runs each
    python bench/validate_sim.py --workloads bag --schedulers round_robin --real-runs 1

For each reference workload of examples/workloads/ (bag of short tasks;
long-tail with data; a DAG) and each built-in scheduler (affinity and
data_aware also with ``binding: late``), the workload is simulated once (the
simulation is deterministic) and run for real ``--real-runs`` times on local
pilots, exactly as ``troy compare --real`` runs it (troy.cli.real_run), with
the same workload and seed each time.  The error is
(median real makespan - simulated makespan) / median real makespan; the
target is within 5 %.  Prints one table row per pair, the real runs' range,
and the bytes each moved, then one ``RESULT {...}`` JSON line per pair.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from troy.cli.real_run import run_real
from troy.sim.engine import run as simulate
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


def validate(workload_name: str, label: str, runs: int, directory: Path) -> dict[str, Any]:
    """One workload and scheduler: the simulated makespan and ``runs`` real ones."""
    workload = load_workload(WORKLOADS / f"{workload_name}.yaml")
    scheduler, options = SCHEDULERS[label]
    simulated = simulate(workload, scheduler, options)
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
    print(f"{'workload':<9} {'scheduler':<16} {'sim s':>7} {'real s (min-max)':>22} {'error':>7}")
    with tempfile.TemporaryDirectory(prefix="troy-validate-") as scratch:
        for workload_name in args.workloads.split(","):
            for label in args.schedulers.split(","):
                started = time.time()
                row = validate(workload_name, label, args.real_runs, Path(scratch))
                rows.append(row)
                spread = f"{row['real_median']:.2f} ({row['real_min']:.2f}-{row['real_max']:.2f})"
                print(
                    f"{workload_name:<9} {label:<16} {row['sim_makespan']:>7.2f} {spread:>22}"
                    f" {100 * row['error']:>6.1f}%   ({time.time() - started:.0f} s)",
                    flush=True,
                )
    worst = max(abs(row["error"]) for row in rows)
    print(f"worst error {100 * worst:.1f} % over {len(rows)} pairs")
    for row in rows:
        print("RESULT " + json.dumps(row, sort_keys=True))


if __name__ == "__main__":
    main()
