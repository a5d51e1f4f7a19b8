"""The troy command line, run as a user runs it: a separate process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def troy_cmd(
    *args: str, cwd: Path | None = None, env_home: Path
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, TROY_HOME=str(env_home))
    env.pop("TROY_COORDINATION", None)
    return subprocess.run(
        [sys.executable, "-m", "troy", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd or REPO,
        env=env,
    )


def test_hello_example_runs(troy_home: Path) -> None:
    result = troy_cmd("run", "examples/hello.yaml", env_home=troy_home)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "8 units: 8 Done, 0 Failed, 0 Canceled" in result.stdout
    outputs = sorted((troy_home / "pilots").glob("*/*/stdout.txt"))
    assert len(outputs) == 8
    texts = sorted(path.read_text() for path in outputs)
    assert texts == sorted(f"Hello from unit {i}\n" for i in range(8))


def test_failing_unit_makes_run_exit_non_zero(tmp_path: Path, troy_home: Path) -> None:
    batch = tmp_path / "fail.yaml"
    batch.write_text(
        "pilots:\n  - resource: fork://localhost\n    number_of_processes: 1\n"
        "units:\n  - executable: /bin/true\n    count: 3\n"
        "  - executable: /bin/false\n"
    )
    result = troy_cmd("run", str(batch), env_home=troy_home)
    assert result.returncode == 1
    assert "4 units: 3 Done, 1 Failed, 0 Canceled" in result.stdout
    assert "exit code 1" in result.stdout


def test_bad_batch_file_is_one_line_with_file_line_field(tmp_path: Path, troy_home: Path) -> None:
    batch = tmp_path / "bad.yaml"
    batch.write_text(
        "pilots:\n  - resource: fork://localhost\nunits:\n  - executable: /bin/true\n"
        "    number_of_processes: -1\n"
    )
    result = troy_cmd("run", str(batch), env_home=troy_home)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert f"{batch}:5" in result.stderr
    assert "units[0].number_of_processes" in result.stderr
    assert not (troy_home / "coordination").exists()  # nothing started, nothing recorded


def test_missing_batch_file(tmp_path: Path, troy_home: Path) -> None:
    result = troy_cmd("run", str(tmp_path / "nope.yaml"), env_home=troy_home)
    assert result.returncode == 2
    assert "nope.yaml" in result.stderr and "Traceback" not in result.stderr


def test_plugins_lists_the_built_ins(troy_home: Path) -> None:
    result = troy_cmd("plugins", env_home=troy_home)
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    for group, name in [
        ("troy.backends", "local"),
        ("troy.coordination", "file"),
        ("troy.schedulers", "round_robin"),
        ("troy.stores", "file"),
        ("troy.launchers", "srun"),
    ]:
        start = lines.index(f"{group}:")
        block = []
        for line in lines[start + 1 :]:
            if not line.startswith("  "):
                break
            block.append(line.split())
        assert [name, "HEALTHY", "troy"] in [entry[:3] for entry in block], result.stdout


def test_status_lists_services_and_shows_units(tmp_path: Path, troy_home: Path) -> None:
    run = troy_cmd("run", "examples/hello.yaml", env_home=troy_home)
    assert run.returncode == 0
    listing = troy_cmd("status", env_home=troy_home)
    assert listing.returncode == 0
    assert listing.stdout.splitlines()[0].split() == ["SERVICE", "KIND", "CREATED"]
    service = next(line.split()[0] for line in listing.stdout.splitlines() if "workunit" in line)
    shown = troy_cmd("status", service, "--units", env_home=troy_home)
    assert shown.returncode == 0, shown.stderr
    assert "8 units: 8 Done" in shown.stdout
    assert shown.stdout.count(" Done exit=0 ") == 8
    assert "    UNIT STATE [exit=CODE] pilot=PILOT STATE@TIME..." in shown.stdout.splitlines()
    assert "Canceled" in shown.stdout  # the run's pilot, canceled at the end
    unknown = troy_cmd("status", "wus-unknown", env_home=troy_home)
    assert unknown.returncode == 2 and "wus-unknown" in unknown.stderr


def test_unknown_plugins_are_reported_before_anything_starts(
    tmp_path: Path, troy_home: Path
) -> None:
    for extra, words in [
        ("    pj_type: nosuch\n", "no plugin 'nosuch' in entry-point group 'troy.backends'"),
        ("scheduler: fastest\n", "no plugin 'fastest' in entry-point group 'troy.schedulers'"),
        ("coordination: gopher://x\n", "no coordination plugin serves URL scheme 'gopher'"),
    ]:
        batch = tmp_path / "plugins.yaml"
        pilot = "pilots:\n  - resource: fork://localhost\n"
        if extra.startswith("    "):
            pilot += extra
            extra = ""
        batch.write_text(extra + pilot + "units:\n  - executable: /bin/true\n")
        result = troy_cmd("run", str(batch), env_home=troy_home)
        assert result.returncode == 2, result.stdout
        assert words in result.stderr
        assert "Traceback" not in result.stderr
        assert not (troy_home / "coordination").exists()


def test_relative_coordination_path_is_relative_to_the_batch_file(
    tmp_path: Path, troy_home: Path
) -> None:
    folder = tmp_path / "experiment"
    folder.mkdir()
    (folder / "run.yaml").write_text(
        "coordination: state\npilots:\n  - resource: fork://localhost\n"
        "units:\n  - executable: /bin/true\n"
    )
    result = troy_cmd("run", "experiment/run.yaml", cwd=tmp_path, env_home=troy_home)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (folder / "state" / "records").is_dir()


def test_the_strategy_and_its_options_are_shown_by_run_status_and_report(
    tmp_path: Path, troy_home: Path
) -> None:
    batch = tmp_path / "seeded.yaml"
    batch.write_text(
        "scheduler: {name: round_robin, options: {seed: 7}}\n"
        "pilots:\n  - resource: fork://localhost\n    number_of_processes: 1\n"
        "units:\n  - executable: /bin/true\n    count: 2\n    hints: {runtime: 0.1}\n"
    )
    run = troy_cmd("run", str(batch), env_home=troy_home)
    assert run.returncode == 0, run.stdout + run.stderr
    assert 'scheduler     round_robin {"seed": 7}' in run.stdout
    service = next(line.split()[2] for line in run.stdout.splitlines() if "units service" in line)
    shown = troy_cmd("status", service, env_home=troy_home)
    assert 'scheduler round_robin {"seed": 7}' in shown.stdout, shown.stdout
    report = troy_cmd("report", service, "--output", str(tmp_path), env_home=troy_home)
    assert report.returncode == 0, report.stderr
    assert 'scheduler    round_robin {"seed": 7}' in report.stdout


def test_an_unknown_scheduler_option_stops_the_run_before_anything_starts(
    tmp_path: Path, troy_home: Path
) -> None:
    batch = tmp_path / "bad-option.yaml"
    batch.write_text(
        "scheduler: {name: round_robin, options: {speed: 2}}\n"
        "pilots:\n  - resource: fork://localhost\nunits:\n  - executable: /bin/true\n"
    )
    result = troy_cmd("run", str(batch), env_home=troy_home)
    assert result.returncode == 2
    assert f"{batch}:1: scheduler.options.speed:" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (troy_home / "coordination").exists()
