"""Workload files for `troy simulate`: what they accept, what they expand to, how they fail."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from troy.model.errors import BadBatchFile, BadWorkload
from troy.sim.model import Failure, Network, Overheads, SimInput, SimPilot, SimStore, Workload
from troy.sim.workload import load_workload

REPO = Path(__file__).resolve().parents[2]

ISSUE_EXAMPLE = """\
seed: 7
pilots:
  - {name: A, slots: 1, labels: {machine: m1}, start_delay: 0.0, speed: 1.0}
  - {name: B, slots: 3, labels: {machine: m1}, count: 2}
stores:
  - {name: s1, labels: {machine: m1}}
network: {bandwidth_mb_s: 100, latency_s: 0.001}
failures: [{pilot: B, at: 30.0}]
units:
  - {name: u, runtime: 2.5, count: 10, cores: 1}
  - {generator: lognormal, count: 1000, mean: 1.0, sigma: 0.6,
     inputs: {store: s1, size_mb: [0.05, 0.5]}}
"""

PILOTS = "pilots: [{name: p, slots: 4}]\n"


def write(tmp_path: Path, text: str, name: str = "work.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def load(tmp_path: Path, text: str, name: str = "work.yaml", seed: int | None = None) -> Workload:
    return load_workload(write(tmp_path, text, name), seed=seed)


def units_only(tmp_path: Path, units: str, seed: int = 0) -> Workload:
    """A workload of one 4-slot pilot, a store s, and the given units list (YAML lines)."""
    text = f"seed: {seed}\n{PILOTS}stores: [{{name: s}}]\nunits:\n{textwrap.dedent(units)}"
    return load(tmp_path, text)


def failure(tmp_path: Path, text: str, name: str = "work.yaml") -> BadWorkload:
    path = write(tmp_path, text, name)
    with pytest.raises(BadWorkload) as info:
        load_workload(path)
    return info.value


def check(
    error: BadBatchFile, path: Path, line: int | None, field: str | None, fragment: str
) -> None:
    """The error names file, line and field, in its attributes and in its message."""
    assert (error.path, error.line, error.field) == (str(path), line, field), str(error)
    where = str(path) if line is None else f"{path}:{line}"
    assert str(error).startswith(f"{where}:{f' {field}:' if field else ''} "), str(error)
    assert fragment in str(error)


# -- the format ---------------------------------------------------------------------------


def test_the_issue_example_expands_pilots_failures_and_units(tmp_path: Path) -> None:
    workload = load(tmp_path, ISSUE_EXAMPLE)
    assert workload.path == str(tmp_path / "work.yaml")
    assert workload.seed == 7
    assert [pilot.id for pilot in workload.pilots] == ["A", "B.0", "B.1"]
    assert workload.pilots[1] == SimPilot("B.0", 3, machine="m1")
    assert workload.stores == (SimStore("s1", machine="m1"),)
    assert workload.network == Network(100.0, 0.001)
    assert workload.failures == (Failure("B.0", 30.0), Failure("B.1", 30.0))
    assert len(workload.units) == 1010
    assert [unit.id for unit in workload.units[:2]] == ["u.0", "u.1"]
    first = workload.units[0]
    assert (first.name, first.runtime, first.cores, first.submit) == ("u", 2.5, 1, 0.0)
    generated = workload.units[10]
    assert (generated.id, generated.name) == ("lognormal1.0", "lognormal1")
    (data,) = generated.inputs
    assert (data.url, data.store) == ("sim://s1/lognormal1.0", "s1")
    assert 50_000 <= data.size <= 500_000


def test_defaults(tmp_path: Path) -> None:
    workload = load(tmp_path, PILOTS + "units: [{runtime: 1}]\n")
    assert (workload.seed, workload.stores, workload.failures) == (0, (), ())
    assert workload.network == Network() and workload.overheads == Overheads(0.0, 0.0)
    assert workload.pilots == (SimPilot("p", 4),)
    (unit,) = workload.units
    assert (unit.id, unit.name, unit.cores, unit.submit, unit.after, unit.inputs) == (
        "unit0.0",
        "unit0",
        1,
        0.0,
        (),
        (),
    )
    assert dict(unit.hints) == {} and unit.wall_time_limit is None and unit.retries == 0


def test_overheads(tmp_path: Path) -> None:
    text = PILOTS + "overheads: {pilot_start_s: 0.25}\nunits: [{runtime: 1}]\n"
    assert load(tmp_path, text).overheads == Overheads(0.25, 0.0)


def test_pilot_fields_and_real_run_keys(tmp_path: Path) -> None:
    workload = load(
        tmp_path,
        """\
        pilots:
          - name: big
            slots: 8
            labels: {machine: m2, datacenter: d1}
            start_delay: 12.5
            speed: 2
            wall_time: 600
            hints: {speed: 2.0}
            resource: fork://localhost
            pj_type: local
        units: [{runtime: 1}]
        """,
    )
    (pilot,) = workload.pilots
    assert pilot == SimPilot("big", 8, "d1", "m2", 12.5, 2.0, 600.0)
    assert dict(pilot.hints) == {"speed": 2.0}


def test_explicit_units_take_every_field_and_batch_file_attributes(tmp_path: Path) -> None:
    workload = units_only(
        tmp_path,
        """\
          - name: first
            runtime: 3
            count: 2
            cores: 2
            submit: 5
            labels: {machine: m1, datacenter: d1}
            hints: {runtime: 3.0, kind: [a]}
            wall_time_limit: 1.5
            total_cpu_time: 6
            retries: 2
            executable: /bin/sleep
            arguments: ["3"]
          - {name: second, runtime: 0, number_of_processes: 3, affinity_machine_label: m9,
             after: first}
        """,
    )
    one, two, three = workload.units
    assert (one.id, two.id, three.id) == ("first.0", "first.1", "second.0")
    assert (one.runtime, one.cores, one.submit) == (3.0, 2, 5.0)
    assert (one.machine, one.datacenter) == ("m1", "d1")
    assert dict(one.hints) == {"runtime": 3.0, "kind": ["a"]}
    assert (one.wall_time_limit, one.total_cpu_time, one.retries) == (1.5, 6.0, 2)
    assert (three.cores, three.machine, three.after) == (3, "m9", ("first.0", "first.1"))


def test_after_names_entries_and_means_all_their_units(tmp_path: Path) -> None:
    workload = units_only(
        tmp_path,
        """\
          - {name: last, runtime: 1, after: [a, b]}
          - {name: a, runtime: 1, count: 2}
          - {name: b, generator: fixed, runtime: 1}
        """,
    )
    assert workload.units[0].after == ("a.0", "a.1", "b.0")


def test_inputs_fixed_drawn_and_listed(tmp_path: Path) -> None:
    workload = units_only(
        tmp_path,
        """\
          - {name: one, runtime: 1, inputs: {store: s, size_mb: 2.5}}
          - name: two
            runtime: 1
            count: 50
            inputs: [{store: s, size_mb: [1, 2]}, {store: s, size_mb: 0}]
        """,
    )
    assert workload.units[0].inputs == (SimInput("sim://s/one.0", "s", 2_500_000),)
    urls = [data.url for unit in workload.units for data in unit.inputs]
    assert len(set(urls)) == len(urls) == 101
    assert workload.units[1].inputs[1] == SimInput("sim://s/two.0/1", "s", 0)
    sizes = [unit.inputs[0].size for unit in workload.units[1:]]
    assert all(1_000_000 <= size <= 2_000_000 for size in sizes)
    assert len(set(sizes)) > 40


def test_runtime_hint_adds_each_units_runtime(tmp_path: Path) -> None:
    workload = units_only(
        tmp_path, "  - {generator: uniform, count: 3, low: 1, high: 2, runtime_hint: true}\n"
    )
    for unit in workload.units:
        assert dict(unit.hints) == {"runtime": unit.runtime}


def test_json_workload_files_report_lines_too(tmp_path: Path) -> None:
    document = {"pilots": [{"name": "p", "slots": 1}], "units": [{"runtime": 1, "cores": 2}]}
    path = write(tmp_path, json.dumps(document, indent=1), "work.json")
    with pytest.raises(BadWorkload) as info:
        load_workload(path)
    check(info.value, path, 11, "units[0].cores", "needs 2 cores")
    assert isinstance(info.value, BadBatchFile)


# -- determinism --------------------------------------------------------------------------

MIXED = """\
seed: 3
pilots: [{name: p, slots: 2}]
stores: [{name: s}]
units:
  - {generator: lognormal, count: 50, mean: 2, sigma: 1, inputs: {store: s, size_mb: [0, 9]}}
  - {generator: pareto, count: 50, shape: 1.5, scale: 1}
  - {generator: dag, layers: 4, width: 5, fan_in: 2, distribution: uniform, low: 0, high: 1}
"""


def fingerprint(workload: Workload) -> list[tuple[object, ...]]:
    return [(unit.id, unit.runtime, unit.inputs, unit.after) for unit in workload.units]


def test_the_same_file_and_seed_give_the_same_workload(tmp_path: Path) -> None:
    first = load(tmp_path, MIXED)
    assert fingerprint(first) == fingerprint(load(tmp_path, MIXED))
    other = load(tmp_path, MIXED, seed=4)
    assert other.seed == 4
    assert fingerprint(other) != fingerprint(first)
    assert fingerprint(load(tmp_path, MIXED.replace("seed: 3", "seed: 4"))) == fingerprint(other)


def test_the_workload_is_the_same_in_another_process(tmp_path: Path) -> None:
    path = write(tmp_path, MIXED)
    script = (
        "import sys; from troy.sim.workload import load_workload;"
        "w = load_workload(sys.argv[1]);"
        "print(repr([(u.id, u.runtime, u.inputs, u.after) for u in w.units]))"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script, str(path)],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": hash_seed},
        ).stdout
        for hash_seed in ("1", "2")
    }
    assert len(outputs) == 1
    assert outputs.pop() == repr(fingerprint(load_workload(path))) + "\n"


# -- generators ---------------------------------------------------------------------------


def runtimes(tmp_path: Path, entry: str, count: int = 10_000) -> list[float]:
    workload = units_only(tmp_path, f"  - {{count: {count}, {entry}}}\n", seed=11)
    return [unit.runtime for unit in workload.units]


def test_fixed(tmp_path: Path) -> None:
    assert runtimes(tmp_path, "generator: fixed, runtime: 4", 3) == [4.0, 4.0, 4.0]


def test_uniform(tmp_path: Path) -> None:
    values = runtimes(tmp_path, "generator: uniform, low: 2, high: 6")
    assert min(values) >= 2 and max(values) <= 6
    assert statistics.fmean(values) == pytest.approx(4.0, rel=0.02)


def test_lognormal_mean_is_the_arithmetic_mean_and_sigma_that_of_the_log(tmp_path: Path) -> None:
    values = runtimes(tmp_path, "generator: lognormal, mean: 5, sigma: 0.5")
    assert statistics.fmean(values) == pytest.approx(5.0, rel=0.03)
    assert statistics.stdev(math.log(value) for value in values) == pytest.approx(0.5, rel=0.03)
    assert statistics.median(values) == pytest.approx(5.0 * math.exp(-0.125), rel=0.03)


def test_pareto_has_scale_as_its_minimum_and_a_long_tail(tmp_path: Path) -> None:
    values = runtimes(tmp_path, "generator: pareto, shape: 3, scale: 2")
    assert min(values) >= 2.0
    assert statistics.fmean(values) == pytest.approx(3 * 2 / (3 - 1), rel=0.05)
    assert max(values) > 10
    capped = runtimes(tmp_path, "generator: pareto, shape: 1.1, scale: 1, cap: 5")
    assert min(capped) >= 1.0 and max(capped) == 5.0


def test_bag_gives_each_task_its_own_input(tmp_path: Path) -> None:
    workload = units_only(
        tmp_path,
        """\
          - {generator: bag, count: 100, distribution: uniform, low: 1, high: 2,
             inputs: {store: s, size_mb: [5, 10]}}
        """,
    )
    assert len(workload.units) == 100
    assert all(1 <= unit.runtime <= 2 for unit in workload.units)
    urls = [unit.inputs[0].url for unit in workload.units]
    assert urls == [f"sim://s/bag0.{index}" for index in range(100)]
    assert all(5_000_000 <= unit.inputs[0].size <= 10_000_000 for unit in workload.units)


def test_bag_runtimes_default_to_fixed(tmp_path: Path) -> None:
    workload = units_only(
        tmp_path, "  - {generator: bag, count: 2, runtime: 3, inputs: {store: s, size_mb: 1}}\n"
    )
    assert [unit.runtime for unit in workload.units] == [3.0, 3.0]


def test_dag_layers_wait_for_fan_in_units_of_the_layer_before(tmp_path: Path) -> None:
    workload = units_only(
        tmp_path,
        """\
          - {name: start, runtime: 1}
          - {name: d, generator: dag, layers: 3, width: 4, fan_in: 2, runtime: 1, after: start}
          - {name: full, generator: dag, layers: 2, width: 3, fan_in: 3, runtime: 1}
        """,
    )
    dag = [unit for unit in workload.units if unit.name == "d"]
    assert [unit.id for unit in dag] == [f"d.{index}" for index in range(12)]
    for index, unit in enumerate(dag):
        layer = index // 4
        if layer == 0:
            assert unit.after == ("start.0",)
            continue
        assert len(unit.after) == len(set(unit.after)) == 2
        parents = [int(parent.split(".")[1]) for parent in unit.after]
        assert all(parent // 4 == layer - 1 for parent in parents)
    full = [unit.after for unit in workload.units if unit.name == "full"]
    assert full[3:] == [("full.0", "full.1", "full.2")] * 3


# -- traces -------------------------------------------------------------------------------

SWF = """\
; a tiny SWF: job submit wait run alloc cpu mem req_procs req_time req_mem status ...
; MaxProcs: 8
1 100 5 10 2 -1 -1 2 60 -1 1 1 1 1 1 1 -1 -1
2 105 0 -1 2 -1 -1 2 60 -1 5 1 1 1 1 1 -1 -1
3 108 1 4 -1 -1 -1 3 -1 -1 1 1 1 1 1 1 -1 -1

4 110 1 7.5 0 -1 -1 -1 -1 -1 1 1 1 1 1 1 -1 -1
5 120 1 0 1 -1 -1 1 30 -1 1 1 1 1 1 1 -1 -1
"""


def test_swf_trace_replays_submit_runtime_and_processors(tmp_path: Path) -> None:
    (tmp_path / "traces").mkdir()
    (tmp_path / "traces" / "jobs.swf").write_text(SWF)
    workload = units_only(tmp_path, "  - {trace: traces/jobs.swf, submit: 2}\n")
    rows = [(u.id, u.submit, u.runtime, u.cores, u.wall_time_limit) for u in workload.units]
    assert rows == [
        ("jobs.0", 2.0, 10.0, 2, 1.0),
        ("jobs.1", 10.0, 4.0, 3, None),  # allocated -1: the requested processors
        ("jobs.2", 22.0, 0.0, 1, 0.5),  # jobs 2 (run time -1) and 4 (0 processors) skipped
    ]
    limited = units_only(tmp_path, "  - {trace: traces/jobs.swf, name: t, limit: 1}\n")
    assert [unit.id for unit in limited.units] == ["t.0"]


CSV = """\
id,name,scheduler,mode,repetition,pilot,cores,submit,start,end,wait,run,state,tries,bytes_in,bytes_moved
u.0,u,round_robin,sim,0,p,1,10,10,12.5,0,2.5,Done,0,0,0
u.1,u,round_robin,sim,0,,2,11,,,,,Failed,0,0,0
u.2,u,round_robin,sim,0,p,2,12,13,14,1,1,Done,0,0,0
u.0,u,random,sim,0,p,1,10,10,11,0,1,Done,0,0,0
"""


def test_csv_trace_replays_one_run_of_troys_units_csv(tmp_path: Path) -> None:
    (tmp_path / "units.csv").write_text(CSV)
    workload = units_only(tmp_path, "  - {trace: units.csv}\n")
    rows = [(u.id, u.name, u.submit, u.runtime, u.cores) for u in workload.units]
    assert rows == [("units.0", "units", 0.0, 2.5, 1), ("units.1", "units", 2.0, 1.0, 2)]
    chosen = units_only(tmp_path, "  - {trace: units.csv, run: {scheduler: random}}\n")
    assert [unit.runtime for unit in chosen.units] == [1.0]


def test_a_trace_with_another_extension_needs_a_format(tmp_path: Path) -> None:
    (tmp_path / "jobs.txt").write_text(SWF)
    workload = units_only(tmp_path, "  - {trace: jobs.txt, format: swf}\n")
    assert len(workload.units) == 3
    path = tmp_path / "work.yaml"
    error = failure(tmp_path, f"{PILOTS}units:\n  - {{trace: jobs.txt}}\n")
    check(error, path, 3, "units[0].trace", "give 'format: swf' or 'csv'")


# -- errors -------------------------------------------------------------------------------

ERRORS = [
    (
        PILOTS + "overheads: {unit_start_s: -0.1}\nunits: [{runtime: 1}]\n",
        2,
        "overheads.unit_start_s",
        ">= 0",
    ),
    (
        PILOTS + "overheads: {pilot_start: 1}\nunits: [{runtime: 1}]\n",
        2,
        "overheads.pilot_start",
        "did you mean 'pilot_start_s'?",
    ),
    (PILOTS + "overheads: 0.3\nunits: [{runtime: 1}]\n", 2, "overheads", "expected a mapping"),
    ("units: [{runtime: 1}]\npilotz: []\n", 2, "pilotz", "did you mean 'pilots'?"),
    ("units: [{runtime: 1}]\n", 1, "pilots", "missing 'pilots'"),
    ("pilots: []\nunits: [{runtime: 1}]\n", 1, "pilots", "got an empty list"),
    ("seed: x\n" + PILOTS + "units: [{runtime: 1}]\n", 1, "seed", "expected an integer"),
    ("pilots:\n  - {name: p}\nunits: [{runtime: 1}]\n", 2, "pilots[0].slots", "missing 'slots'"),
    ("pilots:\n  - {name: p, slots: 0}\nunits: [{runtime: 1}]\n", 2, "pilots[0].slots", ">= 1"),
    (
        "pilots:\n  - {name: p, slots: 1, sped: 2}\nunits: [{runtime: 1}]\n",
        2,
        "pilots[0].sped",
        "did you mean 'speed'?",
    ),
    (
        "pilots:\n  - {name: p, slots: 1, speed: 0}\nunits: [{runtime: 1}]\n",
        2,
        "pilots[0].speed",
        "expected a number > 0",
    ),
    (
        "pilots:\n  - {name: p, slots: 1}\n  - {name: p, slots: 2}\nunits: [{runtime: 1}]\n",
        3,
        "pilots[1].name",
        "another pilot entry is named 'p'",
    ),
    (
        "pilots:\n  - {name: p, slots: 1, count: 2}\n  - {name: p.1, slots: 2}\n"
        "units: [{runtime: 1}]\n",
        3,
        "pilots[1].name",
        "pilot id 'p.1' is also one of pilots[0]",
    ),
    (
        "pilots:\n  - {name: p, slots: 1, count: 10000001}\nunits: [{runtime: 1}]\n",
        2,
        "pilots[0].count",
        "at most 10,000,000 allowed",
    ),
    (
        "pilots:\n  - {name: p, slots: 1, labels: {machine: m, rack: r}}\nunits: [{runtime: 1}]\n",
        2,
        "pilots[0].labels.rack",
        "unknown key 'rack'",
    ),
    (
        PILOTS + "stores:\n  - {name: s, labels: 3}\nunits: [{runtime: 1}]\n",
        3,
        "stores[0].labels",
        "",
    ),
    (
        PILOTS + "network: {bandwidth_mb_s: 0}\nunits: [{runtime: 1}]\n",
        2,
        "network.bandwidth_mb_s",
        "> 0",
    ),
    (
        PILOTS + "failures:\n  - {pilot: q, at: 1}\nunits: [{runtime: 1}]\n",
        3,
        "failures[0].pilot",
        "no pilot named 'q'",
    ),
    (
        PILOTS + "failures:\n  - {pilot: p}\nunits: [{runtime: 1}]\n",
        3,
        "failures[0].at",
        "missing 'at'",
    ),
    (PILOTS + "units: []\n", 2, "units", "got an empty list"),
    (PILOTS + "units:\n  - {count: 2}\n", 3, "units[0].runtime", "missing 'runtime'"),
    (
        PILOTS + "units:\n  - {runtime: fast}\n",
        3,
        "units[0].runtime",
        "expected a number, got a string",
    ),
    (PILOTS + "units:\n  - {runtime: -1}\n", 3, "units[0].runtime", "expected a number >= 0"),
    (
        PILOTS + "units:\n  - {runtime: 1, runtim: 2}\n",
        3,
        "units[0].runtim",
        "did you mean 'runtime'?",
    ),
    (
        PILOTS + "units:\n  - {runtime: 1, arguments: 3}\n",
        3,
        "units[0].arguments",
        "expected a list",
    ),
    (PILOTS + "units:\n  - {runtime: 1, iterations: {x: 2}}\n", 3, "units[0].iterations", "sweeps"),
    (
        PILOTS + "units:\n  - {runtime: 1, cores: 5}\n",
        3,
        "units[0].cores",
        "needs 5 cores; no pilot has more than 4",
    ),
    (PILOTS + "units:\n  - {runtime: 1, number_of_processes: 5}\n", 3, "units[0]", "needs 5 cores"),
    (
        PILOTS + "units:\n  - {runtime: 1, count: 10000001}\n",
        3,
        "units[0].count",
        "at most 10,000,000",
    ),
    (
        PILOTS + "units:\n  - {runtime: 1, count: 6000000}\n  - {runtime: 1, count: 6000000}\n",
        4,
        "units[1]",
        "more than 10,000,000 units in all",
    ),
    (PILOTS + "units:\n  - {runtime: 1, hints: {a: .nan}}\n", 3, "units[0].hints.a", "finite"),
    (
        PILOTS + "units:\n  - {runtime: 1, labels: {machine: m}, affinity_machine_label: m}\n",
        3,
        "units[0].affinity_machine_label",
        "not both",
    ),
    (
        PILOTS + "units:\n  - {name: a, runtime: 1}\n  - {name: a, runtime: 1}\n",
        4,
        "units[1].name",
        "another unit entry is named 'a' (units[0])",
    ),
    (
        PILOTS + "units:\n  - {name: a, runtime: 1, after: [b]}\n",
        3,
        "units[0].after[0]",
        "no unit entry named 'b'",
    ),
    (
        PILOTS + "units:\n  - {name: a, runtime: 1, after: a}\n",
        3,
        "units[0].after",
        "'a' waits for itself",
    ),
    (
        PILOTS
        + "units:\n  - {name: b, runtime: 1, after: [a]}\n  - {name: a, runtime: 1, after: [c]}\n"
        + "  - {name: c, runtime: 1,\n     after: [x, b]}\n  - {name: x, runtime: 1}\n",
        6,
        "units[2].after[1]",
        "a cycle: b -> a -> c -> b",
    ),
    (
        PILOTS + "units:\n  - {runtime: 1,\n     inputs: {store: t, size_mb: 1}}\n",
        4,
        "units[0].inputs.store",
        "no store named 't'",
    ),
    (
        PILOTS
        + "stores: [{name: s}]\nunits:\n  - {runtime: 1, inputs: {store: s, size_mb: [2, 1]}}\n",
        4,
        "units[0].inputs.size_mb[1]",
        ">= 2",
    ),
    (
        PILOTS
        + "stores: [{name: s}]\nunits:\n  - {runtime: 1, inputs: {store: s, size_mb: 2000000}}\n",
        4,
        "units[0].inputs.size_mb",
        "<= 1e+06",
    ),
    (
        PILOTS + "units:\n  - {generator: lognormall}\n",
        3,
        "units[0].generator",
        "did you mean 'lognormal'?",
    ),
    (
        PILOTS + "units:\n  - {generator: lognormal, count: 5,\n     mean: 1, sigma: -0.6}\n",
        4,
        "units[0].sigma",
        "expected a number >= 0",
    ),
    (
        PILOTS + "units:\n  - {generator: lognormal, mean: 1}\n",
        3,
        "units[0].sigma",
        "missing 'sigma'",
    ),
    (
        PILOTS + "units:\n  - {generator: uniform, low: 1, high: 2, runtime: 1}\n",
        3,
        "units[0].runtime",
        "unknown key 'runtime' for generator 'uniform'",
    ),
    (PILOTS + "units:\n  - {generator: uniform, low: 3, high: 2}\n", 3, "units[0].high", ">= 3"),
    (
        PILOTS + "units:\n  - {generator: pareto, shape: 1, scale: 2, cap: 1}\n",
        3,
        "units[0].cap",
        ">= 2",
    ),
    (PILOTS + "units:\n  - {generator: pareto, shape: 0, scale: 1}\n", 3, "units[0].shape", "> 0"),
    (
        PILOTS + "units:\n  - {generator: bag, runtime: 1}\n",
        3,
        "units[0].inputs",
        "missing 'inputs'",
    ),
    (
        PILOTS + "units:\n  - {generator: bag, distribution: normal}\n",
        3,
        "units[0].distribution",
        "expected one of fixed, uniform, lognormal, pareto",
    ),
    (
        PILOTS + "units:\n  - {generator: dag, layers: 2, width: 2, fan_in: 3, runtime: 1}\n",
        3,
        "units[0].fan_in",
        "more than the width 2",
    ),
    (
        PILOTS
        + "units:\n  - {generator: dag, layers: 2, width: 2, fan_in: 1, runtime: 1, count: 4}\n",
        3,
        "units[0].count",
        "unknown key 'count' for generator 'dag'",
    ),
    (
        PILOTS + "units:\n  - {generator: dag, layers: 4000, width: 4000, fan_in: 1, runtime: 1}\n",
        3,
        "units[0].layers",
        "at most 10,000,000 allowed",
    ),
    (PILOTS + "units:\n  - {trace: missing.swf}\n", 3, "units[0].trace", "no such trace file"),
    (PILOTS + "units:\n  - {runtime: 1}\nunits: []\n", 4, "units", "repeats the one on line 2"),
]


@pytest.mark.parametrize(("text", "line", "field", "fragment"), ERRORS)
def test_every_problem_names_file_line_and_field(
    tmp_path: Path, text: str, line: int, field: str, fragment: str
) -> None:
    check(failure(tmp_path, text), tmp_path / "work.yaml", line, field, fragment)


def test_a_seed_given_by_the_caller_still_checks_the_files(tmp_path: Path) -> None:
    path = write(tmp_path, "seed: 1.5\n" + PILOTS + "units: [{runtime: 1}]\n")
    with pytest.raises(BadWorkload) as info:
        load_workload(path, seed=3)
    check(info.value, path, 1, "seed", "expected an integer, got a number (1.5)")


def test_an_empty_file_and_a_missing_file(tmp_path: Path) -> None:
    check(failure(tmp_path, ""), tmp_path / "work.yaml", None, None, "the file is empty")
    with pytest.raises(BadWorkload) as info:
        load_workload(tmp_path / "nothing.yaml")
    check(info.value, tmp_path / "nothing.yaml", None, None, "no such file")


TRACE_ERRORS = [
    (
        "swf",
        "; c\n1 0 0 10 2 -1 -1 2 60 -1 1 1 1 1 1 1 -1\n",
        2,
        None,
        "expected 18 whitespace-separated fields, got 17",
    ),
    (
        "swf",
        "\n\n1 0 0 ten 2 -1 -1 2 60 -1 1 1 1 1 1 1 -1 -1\n",
        3,
        "field 4 (run time)",
        "got 'ten'",
    ),
    (
        "swf",
        "1 0 0 10 2.5 -1 -1 2 60 -1 1 1 1 1 1 1 -1 -1\n",
        1,
        "field 5 (allocated processors)",
        "whole number",
    ),
    (
        "swf",
        "1 0 0 10 2 -1 -1 2 60 -1 1 1 1 1 1 1 -1 -1\n1 0 0 10 64 -1 -1 2 60 -1 1 1 1 1 1 1 -1 -1\n",
        2,
        None,
        "a job of 64 processors; no pilot has more than 4 slots",
    ),
    ("csv", "id,name,cores,submit,start\n", 1, None, "missing column(s) end"),
    (
        "csv",
        "id,name,cores,submit,start,end\nu.0,u,1,0,0,x\n",
        2,
        "end",
        "expected a number, got 'x'",
    ),
    (
        "csv",
        "id,name,cores,submit,start,end\nu.0,u,1,0,0,1\nu.1,u,0,0,0,1\n",
        3,
        "cores",
        "positive whole number",
    ),
    ("csv", "id,name,cores,submit,start,end\nu.0,u,1,0,5,1\n", 2, "end", "end 1 is before start 5"),
    ("csv", "id,name,cores,submit,start,end\nu.0,u,1,0\n", 2, None, "expected 6 columns"),
]


@pytest.mark.parametrize(("form", "content", "line", "field", "fragment"), TRACE_ERRORS)
def test_a_bad_trace_line_names_the_trace_and_its_line(
    tmp_path: Path, form: str, content: str, line: int, field: str | None, fragment: str
) -> None:
    trace = tmp_path / f"jobs.{form}"
    trace.write_text(content)
    error = failure(tmp_path, f"{PILOTS}units:\n  - {{trace: jobs.{form}}}\n")
    check(error, trace, line, field, fragment)
    assert f"(the trace of {tmp_path / 'work.yaml'} units[0])" in str(error)


def test_a_trace_with_nothing_to_replay(tmp_path: Path) -> None:
    (tmp_path / "jobs.swf").write_text("; only\n1 0 0 -1 2 -1 -1 2 60 -1 0 1 1 1 1 1 -1 -1\n")
    error = failure(tmp_path, f"{PILOTS}units:\n  - {{trace: jobs.swf}}\n")
    check(error, tmp_path / "work.yaml", 3, "units[0].trace", "no jobs to replay (1 skipped")


# -- the examples ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["bag.yaml", "longtail.yaml", "dag.yaml", "slowpilot.yaml", "replay.yaml"]
)
def test_the_example_workloads_load(name: str) -> None:
    workload = load_workload(REPO / "examples" / "workloads" / name)
    assert workload.units and workload.pilots
