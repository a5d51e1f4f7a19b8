"""How `troy compare --real` turns a workload into pilots and units (troy.cli.real_run).

What the wrapper does at run time is checked on real pilots in
tests/integration/test_compare_real.py; here, what is submitted and when.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from troy.cli.real_run import (
    PILOT_WRAPPER,
    UNIT_SECONDS,
    check_real,
    pilot_description,
    submissions,
    unit_description,
)
from troy.model.description import PilotJobDescription, WorkUnitDescription
from troy.model.errors import BadDescription
from troy.sim.model import Network, SimInput, SimPilot, SimStore, SimUnit, Workload


def workload(*units: SimUnit, **fields: object) -> Workload:
    return Workload("w.yaml", 1, (SimPilot("p", 2),), units, **fields)  # type: ignore[arg-type]


def test_units_are_submitted_at_their_time_and_never_before_what_they_wait_for() -> None:
    units = (
        SimUnit("early", "early", 1.0, submit=0.0, after=("late",)),
        SimUnit("late", "late", 1.0, submit=5.0),
        SimUnit("free", "free", 1.0, submit=0.0),
        SimUnit("child", "child", 1.0, submit=5.0, after=("early", "late")),
        SimUnit("other", "other", 1.0, submit=2.5),
    )

    plan = submissions(workload(*units))

    named = [(at, [units[i].id for i in batch]) for at, batch in plan]
    assert named == [(0.0, ["free"]), (2.5, ["other"]), (5.0, ["late", "early", "child"])]


def test_the_pilot_plays_its_model_through_its_wrapper() -> None:
    pilot = SimPilot("slow", 3, "d1", "m1", start_delay=0.05, speed=0.5, wall_time=60.0)

    description = pilot_description(pilot, Path("/tmp/x"))

    PilotJobDescription(description)  # a valid pilot description
    assert description["number_of_processes"] == 3
    assert description["affinity_machine_label"] == "m1"
    assert description["affinity_datacenter_label"] == "d1"
    assert description["wall_time_limit"] == (0.05 + 60.0) / 60.0
    script = ["/bin/sh", *description["arguments"], "/usr/bin/env"]
    begun = time.monotonic()
    started = subprocess.run(script, capture_output=True, text=True, check=True, timeout=10)
    assert time.monotonic() - begun >= 0.05  # it slept the start delay before the agent
    environment = dict(line.split("=", 1) for line in started.stdout.splitlines() if "=" in line)
    assert environment["TROY_SIM_SPEED"] == "0.5"
    assert (environment["TROY_SIM_MACHINE"], environment["TROY_SIM_DATACENTER"]) == ("m1", "d1")
    assert description["arguments"][1] == PILOT_WRAPPER


@pytest.mark.parametrize(
    ("machine", "datacenter", "seconds"),
    [
        ("m1", "", 2.0 / 0.5),  # the input is local: runtime / speed
        ("m2", "", 2.0 / 0.5 + 0.5 + 1.0),  # not local: + latency + 1 MB at 1 MB/s
        ("", "d1", 2.0 / 0.5 + 1.5),  # a machine label on one side only: not local
    ],
)
def test_the_unit_sleeps_its_runtime_over_speed_plus_transfers_not_local(
    machine: str, datacenter: str, seconds: float
) -> None:
    store = SimStore("s", None, "m1")
    unit = SimUnit("u.0", "u", 2.0, inputs=(SimInput("sim://s/u.0", "s", 1_000_000),))
    work = workload(unit, stores=(store,), network=Network(1.0, 0.5))

    description = unit_description(unit, work, {"sim://s/u.0": "du://x"})

    WorkUnitDescription(description)
    assert description["input_data"] == ["du://x"] and description["name"] == "u.0"
    program, *arguments = description["arguments"][3:]
    assert program == UNIT_SECONDS
    environment = {
        "TROY_SIM_SPEED": "0.5",
        "TROY_SIM_MACHINE": machine,
        "TROY_SIM_DATACENTER": datacenter,
        "PATH": "/usr/bin:/bin",
    }
    computed = subprocess.run(
        ["awk", program, *arguments], env=environment, capture_output=True, text=True, check=True
    )
    assert float(computed.stdout) == pytest.approx(seconds)


def test_an_entry_with_an_executable_keeps_it() -> None:
    unit = SimUnit("u.0", "u", 2.0, command={"executable": "/bin/date", "arguments": ["-u"]})

    description = unit_description(unit, workload(unit), {})

    assert (description["executable"], description["arguments"]) == ("/bin/date", ["-u"])


@pytest.mark.parametrize(
    ("pilot", "field"),
    [
        (SimPilot("a", 1, resource="ssh://example.org"), "pilots.a.resource"),
        (SimPilot("a", 1, resource="slurm://localhost"), "pilots.a.resource"),
        (SimPilot("a", 1, pj_type="saga"), "pilots.a.pj_type"),
    ],
)
def test_pilots_elsewhere_are_refused(pilot: SimPilot, field: str) -> None:
    work = Workload("w.yaml", 1, (pilot,), (SimUnit("u.0", "u", 1.0),))

    with pytest.raises(BadDescription) as info:
        check_real(work)

    assert info.value.field == field


def test_local_pilots_are_accepted() -> None:
    pilots = (
        SimPilot("a", 1, resource="fork://localhost"),
        SimPilot("b", 1, resource="local://"),
        SimPilot("c", 1, pj_type="local"),
    )
    check_real(Workload("w.yaml", 1, pilots, (SimUnit("u.0", "u", 1.0),)))
