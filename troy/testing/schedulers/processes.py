"""Determinism across processes: the same placement whatever the string-hash seed.

Iterating a set (or a dict built from one) of strings gives another order in
each process, since Python seeds string hashes per process; a scheduler that
does so places differently when a run is replayed.  `scenario` is a fixed
history of calls (labels, inputs, loads that change, and pilots that are twins:
equal in size, labels and load, so that a strategy must break ties); it is
played here and in two fresh interpreters with different ``PYTHONHASHSEED``,
and must give the same pilots in the same order each time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from troy.model.states import State
from troy.plugins import registry
from troy.plugins.schedulers.base import DataInput, PilotOffer, Replica, Scheduler, UnitRequest
from troy.testing.schedulers.base import SchedulerFixtures, name_of, placement_of

#: Runs `main` in a fresh interpreter: argv is the scheduler name and the seed.
COMMAND = "from troy.testing.schedulers.processes import main; main()"


def scenario(scheduler: Scheduler) -> list[list[tuple[str, str | None]]]:
    """Play a fixed history of calls; return each call's (unit id, pilot id) in mapping order."""
    data = DataInput("du://shared", 4096, (Replica("pd-x", "dc-a", "m-1"),))
    # (name, slots, datacenter, machine, twins: pilots of one number are alike in every call)
    pilots = [
        ("zeta", 4, "dc-a", "m-1", 0),
        ("alpha", 2, "dc-a", "m-2", 1),
        ("mu", 8, "dc-b", None, 2),
        ("nu", 8, "dc-b", None, 2),
        ("kappa", None, None, None, 3),
        ("lambda", 6, None, None, 4),
        ("sigma", 6, None, None, 4),
        ("chi", 6, None, None, 4),
    ]
    names = ["omega", "beta", "gamma", "delta", "eps", "iota", "tau", "rho", "sigma", "phi"]
    calls = []
    for round_ in range(4):
        units = [
            UnitRequest(
                f"unit-{name}-{round_}",
                cores=1 + (index + round_) % 3,
                datacenter="dc-a" if index % 4 == 0 else None,
                input_data=(data.url,) if index % 3 == 0 else (),
                inputs=(data,) if index % 3 == 0 else (),
                hints={"runtime": float((index * 7) % 5)},
                order=round_ * len(names) + index,
            )
            for index, name in enumerate(names)
        ]
        # The loads change between calls, as units start and end.
        offered = [
            PilotOffer(
                f"pilot-{name}",
                State.Running,
                slots=slots,
                datacenter=dc,
                machine=machine,
                queued=(round_ + twins) % 3,
                running=min(round_, slots or 0),
                busy=min(round_, slots or 0),
            )
            for name, slots, dc, machine, twins in pilots
        ]
        calls.append(list(placement_of(scheduler, units, offered).items()))
    return calls


def main() -> None:
    """Print the scenario's placements, as JSON, for the scheduler and seed in argv."""
    name, seed = sys.argv[1], int(sys.argv[2])
    plugin: type[Scheduler] = registry.load("scheduler", name)
    print(json.dumps(scenario(plugin(seed=seed))))


def in_fresh_processes(name: str, seed: int, hash_seeds: tuple[str, ...]) -> list[Any]:
    """`main`'s output from one fresh interpreter per hash seed, run side by side."""
    running = [
        subprocess.Popen(
            [sys.executable, "-c", COMMAND, name, str(seed)],
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for hash_seed in hash_seeds
    ]
    results = []
    for process in running:
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, f"the scenario failed in a fresh process:\n{err}"
        results.append(json.loads(out))
    return results


def first_difference(runs: dict[str, list[Any]]) -> str:
    """Where the scenario's placements of two runs (named by their keys) first differ."""
    (one, first), (other, second) = list(runs.items())[:2]
    for call, (mine, theirs) in enumerate(zip(first, second, strict=True)):
        if mine == theirs:
            continue
        chosen, elsewhere = dict(map(tuple, mine)), dict(map(tuple, theirs))
        for unit_id, pilot_id in chosen.items():
            if elsewhere.get(unit_id) != pilot_id:
                return (
                    f"in call {call}, unit {unit_id!r} went to {pilot_id!r} ({one}) "
                    f"but to {elsewhere.get(unit_id)!r} ({other})"
                )
        return (
            f"in call {call}, the same pilots but in another order: "
            f"{[u for u, _ in mine]} ({one}) against {[u for u, _ in theirs]} ({other})"
        )
    return "nowhere"


class SchedulerProcessTests(SchedulerFixtures):
    """The same seed gives the same placement in another process (another hash seed)."""

    def test_same_placement_in_processes_with_other_hash_seeds(
        self, scheduler_name: str, scheduler_class: type[Scheduler]
    ) -> None:
        here = json.loads(json.dumps(scenario(scheduler_class(seed=11))))

        first, second = in_fresh_processes(scheduler_name, 11, ("1", "2"))

        runs = {"PYTHONHASHSEED=1": first, "PYTHONHASHSEED=2": second, "this process": here}
        pairs = [("PYTHONHASHSEED=1", "PYTHONHASHSEED=2"), ("PYTHONHASHSEED=1", "this process")]
        for pair in pairs:
            left, right = (runs[key] for key in pair)
            assert left == right, (
                f"scheduler {name_of(scheduler_class)!r} placed differently in processes "
                "with other string-hash seeds, with the same seed and inputs: "
                f"{first_difference({key: runs[key] for key in pair})}. Iterating a set (or a "
                "dict made from one) of strings gives another order in each process: break "
                "ties by something stable, such as the order of the offers or sorted ids"
            )
