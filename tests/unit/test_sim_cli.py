"""`troy simulate` and `troy compare`, run as the command line runs them (in this process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from troy.cli import main

ANALYTIC = """\
seed: 1
pilots:
  - {name: A, slots: 1}
  - {name: B, slots: 1}
units:
  - {name: one, runtime: 1}
  - {name: two, runtime: 2}
  - {name: three, runtime: 3}
  - {name: four, runtime: 4}
"""


@pytest.fixture
def workload(tmp_path: Path) -> Path:
    path = tmp_path / "analytic.yaml"
    path.write_text(ANALYTIC)
    return path


def test_simulate_gives_the_analytic_makespan_and_the_same_bytes_twice(
    workload: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for out in ("a", "b"):
        code = main(["simulate", str(workload), "--out", str(tmp_path / out)])
        assert code == 0
    assert "makespan 6.000 s" in capsys.readouterr().out
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert [row["makespan"] for row in summary] == [6.0]
    assert summary[0]["units_per_pilot"] == {"A": 2, "B": 2}
    for name in ("units.csv", "summary.csv", "summary.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_compare_runs_each_scheduler_for_each_repetition(workload: Path, tmp_path: Path) -> None:
    code = main(
        [
            "compare", str(workload), "--schedulers", "round_robin,random",
            "--option", "random.seed=5", "--repeat", "2", "--out", str(tmp_path / "c"),
        ]
    )  # fmt: skip

    assert code == 0
    rows = json.loads((tmp_path / "c" / "summary.json").read_text())
    assert [(row["scheduler"], row["repetition"]) for row in rows] == [
        ("round_robin", 0), ("random", 0), ("round_robin", 1), ("random", 1),
    ]  # fmt: skip
    run = json.loads((tmp_path / "c" / "run.json").read_text())
    assert run["seeds"] == [1, 2]
    assert run["schedulers"] == {"round_robin": {}, "random": {"seed": 5}}
    units = (tmp_path / "c" / "units.csv").read_text().splitlines()
    assert len(units) == 1 + 4 * 4


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--scheduler", "fastest"], "no plugin 'fastest'"),
        (["--scheduler", "round_robin", "--option", "speed=2"], "scheduler_options.speed"),
        (["--option", "seed"], "expected KEY=VALUE"),
    ],
)
def test_a_bad_scheduler_or_option_stops_before_anything_runs(
    workload: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    arguments: list[str],
    message: str,
) -> None:
    code = main(["simulate", str(workload), *arguments, "--out", str(tmp_path / "x")])

    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_a_bad_workload_names_its_file_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(ANALYTIC.replace("{name: two, runtime: 2}", "{name: two, runtime: -2}"))

    assert main(["simulate", str(path), "--out", str(tmp_path / "x")]) == 2
    assert f"{path}:7: units[1].runtime" in capsys.readouterr().err


def test_labels_compare_one_plugin_with_itself_under_other_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "slow.yaml"
    path.write_text(
        "pilots:\n  - {name: fast, slots: 1}\n  - {name: slow, slots: 1, speed: 0.25}\n"
        "units:\n  - {name: u, runtime: 1, count: 4}\n"
    )
    code = main(
        [
            "compare", str(path), "--schedulers", "early=affinity, late=affinity",
            "--option", "late.binding=late", "--out", str(tmp_path / "c"), "--no-figures",
        ]
    )  # fmt: skip

    assert code == 0
    rows = json.loads((tmp_path / "c" / "summary.json").read_text())
    # early: two units each (the slow pilot: 4 + 4 s); late: the fast pilot takes 3
    # (1 + 1 + 1 s) while the slow one runs one (4 s)
    assert [(row["scheduler"], row["makespan"]) for row in rows] == [("early", 8.0), ("late", 4.0)]
    assert [row["units_per_pilot"] for row in rows] == [
        {"fast": 2, "slow": 2},
        {"fast": 3, "slow": 1},
    ]
    run = json.loads((tmp_path / "c" / "run.json").read_text())
    assert run["plugins"] == {"early": "affinity", "late": "affinity"}
    assert run["schedulers"] == {"early": {}, "late": {"binding": "late"}}
    assert "late             sim  rep 0: makespan 4.000 s" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("schedulers", "message"),
    [
        ("affinity,affinity", "'affinity' is given twice; give it a label"),
        ("a=", "expected NAME or LABEL=NAME, got 'a='"),
        ("x.y=affinity", "expected NAME or LABEL=NAME"),
        (" , ", "expected scheduler names"),
        ("a=nosuch", "no plugin 'nosuch'"),
    ],
)
def test_bad_labels_stop_before_anything_runs(
    workload: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    schedulers: str,
    message: str,
) -> None:
    out = tmp_path / "x"
    code = main(["compare", str(workload), "--schedulers", schedulers, "--out", str(out)])

    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_run_json_keeps_the_workload_file_itself(workload: Path, tmp_path: Path) -> None:
    assert main(["simulate", str(workload), "--out", str(tmp_path / "s"), "--no-figures"]) == 0
    run = json.loads((tmp_path / "s" / "run.json").read_text())
    assert run["workload"] == str(workload)
    assert run["workload_text"] == ANALYTIC
    assert run["troy"] and run["machine"]["cpus"] >= 1
