"""`troy compare --real`: the workload run for real on local pilots, next to its simulation.

Each test runs a small workload through the command line (in this process)
on real local pilots, with real file-store Pilot-Data, and checks the real
rows of units.csv against what the workload says: the wrapper's start delay
and speed, the emulated network, a failure that kills a pilot's agent, and
the same ids, pilots and bytes as the simulation where placement is forced.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from troy.cli import main

pytestmark = pytest.mark.slow

# Units pinned by machine label (affinity), so the real run places them as the simulation does.
PINNED = """\
seed: 4
pilots:
  - {name: quick, slots: 2, labels: {machine: m1}, speed: 2.0}
  - {name: late, slots: 1, labels: {machine: m2}, start_delay: 1.5}
stores:
  - {name: s1, labels: {machine: m1}}
network: {bandwidth_mb_s: 1, latency_s: 0.0}
units:
  - {name: fast, runtime: 1.0, count: 2, labels: {machine: m1}}
  - {name: far, runtime: 0.2, labels: {machine: m2}, inputs: {store: s1, size_mb: 0.5}}
  - {name: near, runtime: 0.2, labels: {machine: m1}, inputs: {store: s1, size_mb: 0.5}}
"""


def rows(out: Path) -> dict[tuple[str, str], dict[str, str]]:
    """units.csv by (mode, unit id)."""
    with (out / "units.csv").open() as stream:
        return {(row["mode"], row["id"]): row for row in csv.DictReader(stream)}


def compare(tmp_path: Path, text: str, schedulers: str, *extra: str) -> tuple[int, Path]:
    workload = tmp_path / "workload.yaml"
    workload.write_text(text)
    out = tmp_path / "out"
    args = ["compare", str(workload), "--schedulers", schedulers, "--real", "--out", str(out)]
    return main([*args, "--timeout", "120", *extra]), out


def test_real_rows_follow_the_workload_and_line_up_with_the_simulation(tmp_path: Path) -> None:
    code, out = compare(tmp_path, PINNED, "affinity")

    assert code == 0
    table = rows(out)
    for unit in ("fast.0", "fast.1", "far.0", "near.0"):
        sim, real = table["sim", unit], table["real", unit]
        assert real["state"] == "Done"
        assert real["pilot"] == sim["pilot"]  # the workload's pilot ids, placed alike
        assert real["bytes_in"] == sim["bytes_in"] and real["bytes_moved"] == sim["bytes_moved"]
    # speed 2: a unit of 1 s runs about 0.5 s (a sleep in a shell: a little more, never less)
    for unit in ("fast.0", "fast.1"):
        assert 0.5 <= float(table["real", unit]["run"]) < 0.9
    # start_delay 1.5: the late pilot's unit starts after it, and reads its input over the
    # emulated network (0.5 MB at 1 MB/s), which the staging records as moved
    far = table["real", "far.0"]
    assert float(far["start"]) >= 1.5
    assert int(far["bytes_moved"]) == 500_000 and float(far["run"]) >= 0.2 + 0.5
    near = table["real", "near.0"]
    assert int(near["bytes_in"]) == 500_000 and near["bytes_moved"] == "0"
    assert float(near["run"]) < 0.2 / 2 + 0.4  # local: no transfer; speed 2
    summary = json.loads((out / "summary.json").read_text())
    assert [(row["scheduler"], row["mode"]) for row in summary] == [
        ("affinity", "sim"),
        ("affinity", "real"),
    ]
    real_summary = summary[1]
    assert real_summary["done"] == 4 and real_summary["bytes_moved"] == 500_000
    assert set(real_summary["units_per_pilot"]) == {"quick", "late"}
    run = json.loads((out / "run.json").read_text())
    assert run["mode"] == "sim+real"
    [recorded] = run["real"]["runs"]
    assert recorded["scheduler"] == "affinity" and recorded["service"].startswith("wus-")


FAILING = """\
seed: 1
pilots:
  - {name: doomed, slots: 1}
  - {name: spare, slots: 1, start_delay: 0.5}
failures: [{pilot: doomed, at: 1.0}]
units:
  - {name: long, runtime: 3.0}
  - {name: short, runtime: 0.5}
"""


def test_a_failure_kills_the_pilot_and_its_unit_runs_again_elsewhere(tmp_path: Path) -> None:
    code, out = compare(tmp_path, FAILING, "round_robin")

    assert code == 0
    table = rows(out)
    sim, real = table["sim", "long.0"], table["real", "long.0"]
    assert sim["pilot"] == "spare" and sim["tries"] == "1"
    assert real["state"] == "Done" and real["pilot"] == "spare"
    assert int(real["tries"]) >= 1  # lost with the doomed pilot's agent, then run again
    assert float(real["start"]) >= 1.0


def test_a_pilot_elsewhere_is_refused_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = PINNED.replace("speed: 2.0}", "speed: 2.0, resource: 'ssh://example.org'}")
    code, out = compare(tmp_path, text, "round_robin")

    assert code == 2
    err = capsys.readouterr().err
    assert "pilots.quick.resource" in err and "ssh://example.org" in err
    assert "Traceback" not in err
    assert not out.exists()  # nothing was simulated, run or written


def test_an_entry_with_an_executable_runs_it_for_real(tmp_path: Path) -> None:
    text = """\
pilots:
  - {name: p, slots: 2}
units:
  - {name: modelled, runtime: 0.1}
  - {name: broken, runtime: 0.1, executable: /bin/sh, arguments: [-c, 'exit 3']}
"""
    code, out = compare(tmp_path, text, "round_robin")

    assert code == 1  # a unit did not end Done (in the real run)
    table = rows(out)
    assert table["sim", "broken.0"]["state"] == "Done"  # the simulation models its runtime only
    assert table["real", "broken.0"]["state"] == "Failed"
    assert table["real", "modelled.0"]["state"] == "Done"
