"""Determinism across processes: the same placement whatever the string-hash seed.

Iterating a set (or a dict built from one) of strings gives another order in
each process, since Python seeds string hashes per process; a scheduler that
does so places differently when a run is replayed.  `scenario` is a fixed
history of calls (labels, inputs, loads that change); it is played here and in
two fresh interpreters with different ``PYTHONHASHSEED``, and must give the
same pilots in the same order each time.
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
from troy.testing.schedulers.base import SchedulerFixtures

#: Runs `main` in a fresh interpreter: argv is the scheduler name and the seed.
COMMAND = "from troy.testing.schedulers.processes import main; main()"


def scenario(scheduler: Scheduler) -> list[list[tuple[str, str | None]]]:
    """Play a fixed history of calls; return each call's (unit id, pilot id) in mapping order."""
    data = DataInput("du://shared", 4096, (Replica("pd-x", "dc-a", "m-1"),))
    offers = [
        PilotOffer(f"pilot-{name}", State.Running, slots=slots, datacenter=dc, machine=machine)
        for name, slots, dc, machine in [
            ("zeta", 4, "dc-a", "m-1"),
            ("alpha", 2, "dc-a", "m-2"),
            ("mu", 8, "dc-b", None),
            ("kappa", None, None, None),
        ]
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
                offer.id,
                offer.state,
                slots=offer.slots,
                datacenter=offer.datacenter,
                machine=offer.machine,
                queued=(round_ + position) % 3,
                running=min(round_, offer.slots or 0),
                busy=min(round_, offer.slots or 0),
            )
            for position, offer in enumerate(offers)
        ]
        calls.append(list(scheduler.place(units, offered).items()))
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


class SchedulerProcessTests(SchedulerFixtures):
    """The same seed gives the same placement in another process (another hash seed)."""

    def test_same_placement_in_processes_with_other_hash_seeds(
        self, scheduler_name: str, scheduler_class: type[Scheduler]
    ) -> None:
        here = json.loads(json.dumps(scenario(scheduler_class(seed=11))))

        first, second = in_fresh_processes(scheduler_name, 11, ("1", "2"))

        assert first == second == here, (
            "the placement (pilots, or their order) differs between processes with other "
            "PYTHONHASHSEED values: does the scheduler iterate a set of strings?"
        )
