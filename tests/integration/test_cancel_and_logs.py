"""`troy cancel` and `troy logs` from a process that does not own the run, as a user runs them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

#: Two slots: two units sleep, one fails loudly, one prints a URL with a password, one waits.
BATCH = """
pilots:
  - resource: fork://localhost
    number_of_processes: 2
units:
  - executable: /bin/sh
    arguments: ["-c", "echo to stdout; echo boom redis://:hunter2@db.example >&2; exit 3"]
  - executable: /bin/sh
    arguments: ["-c", "echo done fine"]
  - executable: /bin/sleep
    arguments: ["300"]
    count: 3
"""


def running(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie waiting for its parent does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _env(troy_home: Path) -> dict[str, str]:
    env = dict(os.environ, TROY_HOME=str(troy_home))
    env.pop("TROY_COORDINATION", None)
    return env


def troy(*args: str, troy_home: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "troy", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env=_env(troy_home),
    )


@dataclass
class Run:
    """A `troy run` in its own process: its services and pilot, as its banner named them."""

    process: subprocess.Popen[str]
    units: str
    pilot: str
    home: Path

    def unit_states(self) -> dict[str, str]:
        shown = troy("status", self.units, "--units", troy_home=self.home)
        states = {}
        for line in shown.stdout.splitlines():
            words = line.split()
            if words and words[0].startswith(f"{self.units}."):
                states[words[0]] = words[1]
        return states

    def wait_for(self, unit: str, state: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.unit_states().get(unit) != state:
            assert time.monotonic() < deadline, (unit, state, self.unit_states())
            time.sleep(0.3)


@pytest.fixture
def run(tmp_path: Path, troy_home: Path) -> Iterator[Run]:
    batch = tmp_path / "batch.yaml"
    batch.write_text(BATCH)
    process = subprocess.Popen(
        [sys.executable, "-m", "troy", "run", "--quiet", str(batch)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=_env(troy_home),
    )
    assert process.stdout is not None
    banner = ""
    while "pilot " not in banner:
        line = process.stdout.readline()
        assert line, banner
        banner += line
    units = re.search(r"units service (wus-\w+)", banner)
    pilot = re.search(r"pilot\s+(pilot-\w+)", banner)
    assert units and pilot, banner
    started = Run(process, units.group(1), pilot.group(1), troy_home)
    started.wait_for(f"{started.units}.2", "Running")
    yield started
    if process.poll() is None:
        troy("cancel", started.units, troy_home=troy_home)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_cancel_a_unit_then_the_service_from_another_process(run: Run) -> None:
    sleeper = f"{run.units}.2"
    result = troy("cancel", sleeper, troy_home=run.home)
    assert result.returncode == 0, result.stderr
    assert f"{sleeper} (unit): Running -> Canceled" in result.stdout
    assert run.unit_states()[sleeper] == "Canceled"
    assert run.process.poll() is None  # the rest of the run goes on
    done = troy("cancel", f"{run.units}.1", troy_home=run.home)
    assert f"{run.units}.1 (unit): already Done, nothing to cancel" in done.stdout
    whole = troy("cancel", run.units, troy_home=run.home)
    assert whole.returncode == 0, whole.stderr
    assert f"{run.units} (workunit service): canceled 2 of 5 units" in whole.stdout
    assert "the pilots of its run: " in whole.stdout
    assert run.process.wait(timeout=30) == 1  # the owner sees its units end, and stops
    states = run.unit_states()
    assert sorted(states.values()) == ["Canceled"] * 3 + ["Done", "Failed"], states


def test_an_unknown_id_cancels_nothing(run: Run) -> None:
    result = troy("cancel", f"{run.units}.2", "wus-nosuch", f"{run.units}.99", troy_home=run.home)
    assert result.returncode == 2
    assert "nothing canceled" in result.stderr and "'wus-nosuch'" in result.stderr
    assert "Traceback" not in result.stderr
    assert run.unit_states()[f"{run.units}.2"] == "Running"
    unknown_unit = troy("cancel", f"{run.units}.99", troy_home=run.home)
    assert unknown_unit.returncode == 2 and f"{run.units}.99" in unknown_unit.stderr
    assert "nothing canceled" in unknown_unit.stderr


def test_cancel_a_pilot_another_process_launched_ends_its_agent(run: Run) -> None:
    from troy.model.config import default_coordination_url
    from troy.plugins.registry import open_coordination

    os.environ["TROY_HOME"] = str(run.home)
    client = open_coordination(default_coordination_url())
    handle = (client.get_record(f"pilot/{run.pilot}") or {}).get("handle") or {}
    client.close()
    pid = handle["pid"]
    assert running(pid)
    result = troy("cancel", run.pilot, troy_home=run.home)
    assert result.returncode == 0, result.stderr
    assert f"{run.pilot} (pilot): Running -> Canceled" in result.stdout
    deadline = time.monotonic() + 15
    while running(pid):
        assert time.monotonic() < deadline, "the agent still runs"
        time.sleep(0.2)
    assert run.unit_states()[f"{run.units}.2"] == "Canceled"
    assert run.process.wait(timeout=30) == 1  # its run has no pilot left: it ends, not hangs


def test_logs_show_the_agent_log_and_a_failed_units_output_scrubbed(run: Run) -> None:
    exited = f"unit {run.units}.0 (attempt 0) exited with code 3"
    deadline = time.monotonic() + 10
    while True:  # the agent publishes its log at most once a second
        log = troy("logs", run.pilot, troy_home=run.home)
        assert log.returncode == 0, log.stderr
        if exited in log.stdout or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert f"agent of {run.pilot} started" in log.stdout
    assert exited in log.stdout
    assert f"{run.units}.0" in log.stderr  # the units whose output ends are kept
    failed = troy("logs", run.pilot, "--unit", f"{run.units}.0", troy_home=run.home)
    assert failed.returncode == 0, failed.stderr
    assert f"== {run.units}.0 stderr (exit code 3, attempt 0) ==" in failed.stdout
    assert "to stdout" in failed.stdout and "boom" in failed.stdout
    assert "hunter2" not in failed.stdout  # scrubbed before it reached coordination
    fine = troy("logs", run.pilot, "--unit", f"{run.units}.1", troy_home=run.home)
    assert fine.returncode == 0, fine.stderr
    assert "done fine" in fine.stdout and "from " in fine.stdout  # its sandbox, on this host
    short = troy("logs", run.pilot, "--lines", "1", troy_home=run.home)
    assert len(short.stdout.splitlines()) == 1
    unknown = troy("logs", "pilot-nosuch", troy_home=run.home)
    assert unknown.returncode == 2 and "pilot-nosuch" in unknown.stderr


def test_logs_follow_prints_until_the_pilot_is_final(run: Run) -> None:
    follower = subprocess.Popen(
        [sys.executable, "-m", "troy", "logs", run.pilot, "--follow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=_env(run.home),
    )
    assert follower.stdout is not None
    first = follower.stdout.readline()
    assert "started" in first or "exited" in first, first
    time.sleep(1.5)
    assert follower.poll() is None  # still following: the pilot runs
    assert troy("cancel", run.pilot, troy_home=run.home).returncode == 0
    _, err = follower.communicate(timeout=30)
    assert follower.returncode == 0
    assert f"(pilot {run.pilot} is Canceled)" in err


@pytest.mark.redis
def test_logs_and_cancel_through_redis_coordination(tmp_path: Path, troy_home: Path) -> None:
    """Nothing of the pilot's files is read: what `troy logs` shows comes through Redis."""
    from redis_fixtures import running_server

    batch = tmp_path / "batch.yaml"
    batch.write_text(BATCH)
    with running_server() as server:
        url = f"{server.url}?prefix=ops"
        process = subprocess.Popen(
            [sys.executable, "-m", "troy", "run", "--quiet", "--coordination", url, str(batch)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env=_env(troy_home),
        )
        try:
            assert process.stdout is not None
            banner = "".join(process.stdout.readline() for _ in range(5))
            units = re.search(r"units service (wus-\w+)", banner)
            pilot = re.search(r"pilot\s+(pilot-\w+)", banner)
            assert units and pilot, banner
            failed = f"{units.group(1)}.0"
            deadline = time.monotonic() + 30
            while True:
                shown = troy("logs", pilot.group(1), "--unit", failed, "--coordination", url,
                             troy_home=troy_home)  # fmt: skip
                if shown.returncode == 0 or time.monotonic() > deadline:
                    break
                time.sleep(0.3)
            assert shown.returncode == 0, shown.stderr
            assert "boom" in shown.stdout and "hunter2" not in shown.stdout
            assert "(exit code 3, attempt 0)" in shown.stdout  # as recorded, not read from disk
            canceled = troy("cancel", units.group(1), "--coordination", url, troy_home=troy_home)
            assert canceled.returncode == 0, canceled.stderr
            assert "(workunit service): canceled" in canceled.stdout
            assert process.wait(timeout=30) == 1
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
