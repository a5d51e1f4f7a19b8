"""Workflows from batch files: dependencies, sweeps, validation, and resuming a killed run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from troy import BadBatchFile, PilotJobService, State, WorkUnitService
from troy.cli import main
from troy.cli.batchfile import load_batch_file


def write(tmp_path: Path, text: str, name: str = "flow.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


PILOT = """
pilots:
  - resource: fork://localhost
    number_of_processes: 2
    working_directory: pilot
"""


def test_a_batch_file_runs_a_diamond_and_a_sweep(tmp_path: Path) -> None:
    log = tmp_path / "log"
    path = write(
        tmp_path,
        PILOT
        + f"""
units:
  - name: prepare
    executable: /bin/sh
    arguments: ["-c", "echo prepare >> {log}"]
  - name: simulate
    executable: /bin/sh
    arguments: ["-c", "echo simulate-${{it}} >> {log}"]
    iterations: {{start: 1, stop: 4}}
    after: [prepare]
  - name: analyse
    executable: /bin/sh
    arguments: ["-c", "echo analyse >> {log}"]
    after: [simulate]
""",
    )
    assert main(["run", str(path), "--coordination", str(tmp_path / "c")]) == 0
    lines = log.read_text().split()
    assert lines[0] == "prepare" and lines[-1] == "analyse"
    assert sorted(lines[1:4]) == ["simulate-1", "simulate-2", "simulate-3"]


@pytest.mark.parametrize(
    ("units", "marker", "field", "message"),
    [
        (
            """
            units:
              - name: a
                executable: /bin/true
              - executable: /bin/true
                after: [b]
            """,
            "after: [b]",
            "units[1].after",
            "no unit in the file is named 'b'",
        ),
        (
            """
            units:
              - name: a
                executable: /bin/true
                after: [b]
              - name: b
                executable: /bin/true
                after: [a]
            """,
            "after: [b]",
            "units[0].after",
            "cycle: a -> b -> a",
        ),
        (
            """
            units:
              - executable: /bin/true
                iterations: {stop: 3}
                count: 2
            """,
            "count: 2",
            "units[0].count",
            "not both",
        ),
        (
            """
            units:
              - executable: /bin/true
                iterations: {start: 3}
            """,
            "iterations: {start: 3}",
            "units[0].iterations",
            "needs 'stop'",
        ),
    ],
)
def test_bad_workflows_are_refused_with_file_line_and_field(
    tmp_path: Path, units: str, marker: str, field: str, message: str
) -> None:
    path = write(tmp_path, PILOT + textwrap.dedent(units))
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if marker in text)
    with pytest.raises(BadBatchFile) as caught:
        load_batch_file(path)
    error = caught.value
    text = str(error)
    assert str(path) in text and message in text, text
    assert (error.line, error.field) == (line, field), text


def test_a_thousand_value_sweep(
    pilots: PilotJobService, units: WorkUnitService, tmp_path: Path
) -> None:
    units.add(pilots)
    pilots.create(
        "fork://localhost",
        {"number_of_processes": 2, "working_directory": str(tmp_path / "pilot")},
    )
    sweep = units.submit(
        [
            {
                "executable": "/bin/echo",
                "arguments": ["${it}"],
                "output": "value-${it}.txt",
                "iterations": {"stop": 1000},
            }
        ]
    )
    units.wait(timeout=120)
    assert len(sweep) == 1000
    for value, unit in enumerate(sweep):
        assert unit.state == State.Done
        assert Path(unit.sandbox or "", f"value-{value}.txt").read_text() == f"{value}\n"


def test_a_killed_run_resumes_and_runs_every_unit_exactly_once(tmp_path: Path) -> None:
    log = tmp_path / "ran.log"
    path = write(
        tmp_path,
        PILOT
        + f"""
units:
  - name: first
    executable: /bin/sh
    arguments: ["-c", "sleep 0.3; echo first-${{it}} >> {log}"]
    iterations: {{stop: 6}}
  - name: second
    executable: /bin/sh
    arguments: ["-c", "sleep 0.2; echo second-${{it}} >> {log}"]
    iterations: {{stop: 6}}
    after: [first]
  - name: last
    executable: /bin/sh
    arguments: ["-c", "echo last >> {log}"]
    after: [second]
""",
    )
    environment = {**os.environ, "TROY_HOME": str(tmp_path / "home")}
    command = [sys.executable, "-m", "troy", "run", str(path)]
    first = subprocess.Popen(command, env=environment, cwd=tmp_path, stdout=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not log.exists() or len(log.read_text().split()) < 2:
        assert time.monotonic() < deadline, "the first units never ran"
        assert first.poll() is None, "troy run ended before it could be killed"
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)  # no cleanup at all
    first.wait()
    assert len(log.read_text().split()) < 13  # it really was cut off

    resumed = subprocess.run(
        [*command, "--resume"], env=environment, cwd=tmp_path, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "13 units: 13 Done" in resumed.stdout
    ran = log.read_text().split()
    expected = [f"first-{i}" for i in range(6)] + [f"second-{i}" for i in range(6)] + ["last"]
    assert sorted(ran) == sorted(expected)  # every unit, each exactly once
    assert ran[-1] == "last"


def test_resume_without_a_run_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, PILOT + "units:\n  - executable: /bin/true\n")
    assert main(["run", str(path), "--resume"]) == 2
    assert "no earlier run of" in capsys.readouterr().err


EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "workflows"


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_the_workflow_examples_run(name: str, tmp_path: Path) -> None:
    assert main(["run", str(EXAMPLES / name), "--coordination", str(tmp_path / "c")]) == 0
