"""Resume after any crash, and one owner per service (issue 16).

Each test reproduces a defect found by trying faults as a hostile user would;
each failed before its fix.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from troy import State, WorkUnitService

pytestmark = pytest.mark.integration


def _batch(tmp_path: Path, units: int, seconds: float, pilots: int = 2) -> tuple[Path, Path]:
    """A batch file of ``units`` units that log their start, then sleep; and the log."""
    log = tmp_path / "started.log"
    pilot = "  - resource: fork://localhost\n    number_of_processes: 2\n"
    path = tmp_path / "run.yaml"
    path.write_text(
        "pilots:\n"
        + pilot * pilots
        + textwrap.dedent(
            f"""\
            units:
              - name: work
                executable: /bin/sh
                arguments: ["-c", "echo work-${{it}} >> {log}; sleep {seconds}"]
                iterations: {{stop: {units}}}
            """
        )
    )
    return path, log


def _environment(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "TROY_HOME": str(tmp_path / "home"), "PYTHONUNBUFFERED": "1"}


def _started(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def _wait_for(condition: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _pilot_records(home: Path) -> list[dict[str, Any]]:
    folder = home / "coordination" / "records" / "pilot"
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def _kill_agents(home: Path) -> int:
    killed = 0
    for record in _pilot_records(home):
        handle = record.get("handle") or {}
        if "pid" in handle:
            try:
                os.kill(int(handle["pid"]), signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
    return killed


def _service_id(home: Path) -> str:
    (state,) = (home / "runs").glob("*.json")
    return str(json.loads(state.read_text())["units"])


def test_a_run_whose_manager_and_agents_were_killed_resumes_with_new_pilots(
    tmp_path: Path,
) -> None:
    """Manager and agents SIGKILLed mid-run: resume restarts the pilots from their
    recorded descriptions; units that were running run again as a new try; units
    already Done never run again.  (Before: 30 of 40 units Failed within 0.2 s and
    no pilot restarted, because resume judged pilots before reading their streams.)"""
    path, log = _batch(tmp_path, units=24, seconds=0.4)
    environment = _environment(tmp_path)
    home = tmp_path / "home"
    command = [sys.executable, "-m", "troy", "run", str(path)]
    first = subprocess.Popen(command, env=environment, cwd=tmp_path, stdout=subprocess.DEVNULL)
    try:
        _wait_for(lambda: len(_started(log)) >= 8, "the first units never ran")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert _kill_agents(home) == 2
    assert len(set(_started(log))) < 24  # it really was cut off

    for attempt in (1, 2):  # a second resume of a finished run changes nothing
        resumed = subprocess.run(
            [*command, "--resume"],
            env=environment,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert "24 units: 24 Done" in resumed.stdout, resumed.stdout
        if attempt == 1:
            assert "restarted" in resumed.stdout, resumed.stdout

    runs = Counter(_started(log))
    units = WorkUnitService(id=_service_id(home), coordination=str(home / "coordination"))
    try:
        for unit in units.list():
            assert unit.state == State.Done, (unit.id, unit.state, unit.state_detail)
            name = f"work-{unit.description['arguments'][1].split('work-')[1].split()[0]}"
            lost = [t for t in unit.tries or [] if t.get("kind") == "lost"]
            # At least once; again only as a recorded new try (never after Done).
            assert 1 <= runs[name] <= 1 + len(lost), (name, runs[name], unit.tries)
    finally:
        units.close()


def test_two_resumes_at_once_run_every_unit_once(tmp_path: Path) -> None:
    """Two `troy run --resume` of one run at the same time: one owns it, the other
    follows; no unit runs twice.  (Before: both placed, 21 of 50 units ran twice.)"""
    path, log = _batch(tmp_path, units=30, seconds=0.2)
    environment = _environment(tmp_path)
    command = [sys.executable, "-m", "troy", "run", str(path)]
    first = subprocess.Popen(command, env=environment, cwd=tmp_path, stdout=subprocess.DEVNULL)
    try:
        _wait_for(lambda: len(_started(log)) >= 4, "the first units never ran")
    finally:
        first.send_signal(signal.SIGKILL)  # the agents live on
        first.wait()
    resumes = [
        subprocess.Popen(
            [*command, "--resume"],
            env=environment,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [resume.communicate(timeout=120)[0] for resume in resumes]
    for resume, output in zip(resumes, outputs, strict=True):
        assert resume.returncode == 0, output
        assert "30 units: 30 Done" in output, output
    assert sum("following it to the end" in output for output in outputs) == 1, outputs
    runs = Counter(_started(log))
    assert sorted(runs) == sorted(f"work-{n}" for n in range(30))
    assert set(runs.values()) == {1}, [name for name, count in runs.items() if count > 1]


_SUBMITTER = """
import os, sys, time, troy
units = troy.WorkUnitService(id=sys.argv[1], coordination=sys.argv[2])
assert not units.owner, "the test process owns the service"
open(sys.argv[3] + ".ready." + str(os.getpid()), "w").close()
while not os.path.exists(sys.argv[3]):  # both connected before either submits
    time.sleep(0.01)
mine = units.submit([{"executable": "/bin/true"} for _ in range(5)])
units.wait(timeout=60)  # the owner places them
print(" ".join(unit.id for unit in mine), " ".join(str(unit.state) for unit in mine))
units.close()
"""


def test_processes_submitting_to_one_service_get_distinct_ids(tmp_path: Path) -> None:
    """Two processes reconnected to a service submit at once: every unit gets its own
    id and is recorded, and the owner places them all.  (Before: both allocated ids
    .1-.5, the record kept 6 units of 11, and one process hung to its Timeout.)"""
    from troy import PilotJobService

    coordination = str(tmp_path / "coordination")
    pilots = PilotJobService(coordination=coordination)
    units = WorkUnitService(coordination=coordination)
    try:
        pilots.create("fork://localhost", {"number_of_processes": 2})
        units.add(pilots)
        units.submit({"executable": "/bin/true"})
        go = tmp_path / "go"
        submitters = [
            subprocess.Popen(
                [sys.executable, "-c", _SUBMITTER, units.id, coordination, str(go)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        _wait_for(lambda: len(list(tmp_path.glob("go.ready.*"))) == 2, "submitters never connected")
        go.touch()
        ids = []
        for submitter in submitters:
            out, err = submitter.communicate(timeout=120)
            assert submitter.returncode == 0, err
            given, states = out.strip().split(" ", 5)[:5], out.split()[5:]
            assert set(states) == {"Done"}, out
            ids += given
        assert len(set(ids)) == 10
        units.wait(timeout=60)
        listed = units.list()
        assert len(listed) == 11
        assert {unit.id for unit in listed} >= set(ids)
        assert all(unit.state == State.Done for unit in listed)
    finally:
        pilots.cancel()
        units.close()
        pilots.close()


_OWNER = """
import sys, time, troy
pilots = troy.PilotJobService(coordination=sys.argv[1])
units = troy.WorkUnitService(coordination=sys.argv[1])
pilots.create("fork://localhost", {"number_of_processes": 2})
units.add(pilots)
print(units.id, flush=True)
sys.stdin.readline()  # stopped and continued meanwhile
time.sleep(1.0)  # time for a renewal: it finds the lease taken
print("owner" if units.owner else "follower", flush=True)
sys.stdin.readline()
pilots.cancel()
"""


def test_a_follower_takes_over_from_a_stopped_owner_which_then_stands_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The owner is SIGSTOPped: after its lease lapses a follower owns the service
    and places what it submits; the owner, continued, finds it lost the lease."""
    monkeypatch.setenv("TROY_LEASE_TIMEOUT", "1")
    coordination = str(tmp_path / "coordination")
    owner = subprocess.Popen(
        [sys.executable, "-c", _OWNER, coordination],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "TROY_HOME": str(tmp_path / "home")},
    )  # fmt: skip
    assert owner.stdin is not None and owner.stdout is not None
    follower = None
    try:
        service_id = owner.stdout.readline().strip()
        follower = WorkUnitService(id=service_id, coordination=coordination)
        assert not follower.owner
        owner.send_signal(signal.SIGSTOP)
        units = follower.submit([{"executable": "/bin/true"} for _ in range(3)])
        follower.wait(timeout=60)
        assert follower.owner
        assert [unit.state for unit in units] == [State.Done] * 3
        owner.send_signal(signal.SIGCONT)
        owner.stdin.write("\n")
        owner.stdin.flush()
        assert owner.stdout.readline().strip() == "follower"
        owner.stdin.write("\n")
        owner.stdin.flush()
        assert owner.wait(timeout=60) == 0
    finally:
        owner.send_signal(signal.SIGCONT)
        owner.kill()
        owner.wait()
        if follower is not None:
            follower.close()


def test_a_resume_follows_a_stopped_run_then_takes_over_and_restarts_its_pilots(
    tmp_path: Path,
) -> None:
    """The run's process is SIGSTOPped (alive, silent) and its agents killed: a resume
    follows it until its lease lapses, then owns the run, restarts the dead pilots
    before judging anything, and finishes every unit."""
    path, log = _batch(tmp_path, units=16, seconds=0.3)
    environment = {**_environment(tmp_path), "TROY_LEASE_TIMEOUT": "1"}
    home = tmp_path / "home"
    command = [sys.executable, "-m", "troy", "run", str(path)]
    first = subprocess.Popen(command, env=environment, cwd=tmp_path, stdout=subprocess.DEVNULL)
    try:
        _wait_for(lambda: len(_started(log)) >= 4, "the first units never ran")
        first.send_signal(signal.SIGSTOP)
        assert _kill_agents(home) == 2
        resumed = subprocess.run(
            [*command, "--resume"], env=environment, cwd=tmp_path, capture_output=True,
            text=True, timeout=120,
        )  # fmt: skip
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "following it to the end" in resumed.stdout, resumed.stdout
    assert "restarted" in resumed.stdout, resumed.stdout
    assert "16 units: 16 Done" in resumed.stdout, resumed.stdout
    assert sorted(set(_started(log))) == sorted(f"work-{n}" for n in range(16))


def test_units_of_a_dead_pilot_are_judged_again_after_coordination_failed_once(
    tmp_path: Path,
) -> None:
    """Coordination fails (a full disk) just as the manager records what a dead pilot
    left behind: the next poll records it.  (Before: the pilot was marked as dealt
    with first, so its units stayed Pending and `troy run` hung; found by the chaos
    campaign, seed 113.)  The failure is injected into a real file coordination."""
    from troy import PilotJobService
    from troy.model.errors import CoordinationError

    coordination = str(tmp_path / "coordination")
    pilots = PilotJobService(coordination=coordination)
    units = WorkUnitService(coordination=coordination)
    try:
        pilot = pilots.create("fork://localhost", {"number_of_processes": 1})
        units.add(pilots)
        submitted = units.submit([{"executable": "/bin/sleep", "arguments": ["30"]}] * 3)
        _wait_for(lambda: submitted[0].state == State.Running, "the first unit never ran")
        client = units._manager.coordination
        real_append = client.append
        failures = []

        def append_failing_once(stream: str, events: Any) -> None:
            if not failures and any(e.get("ev") == "state" for e in events):
                failures.append(stream)
                raise CoordinationError("cannot append: [Errno 28] No space left on device")
            real_append(stream, events)

        client.append = append_failing_once
        os.kill(int(pilot.handle["pid"]), signal.SIGKILL)  # the units' fate must be recorded
        units.wait(timeout=60)
        assert failures, "the failure was never injected"
        assert all(unit.state.is_final for unit in submitted)
    finally:
        pilots.cancel()
        units.close()
        pilots.close()


def test_closing_a_finished_service_compacts_it_and_a_reconnect_sees_the_same(
    tmp_path: Path,
) -> None:
    """The owner compacts a service whose units are all final when it closes it: the
    stream is then one summary, and a reconnect shows the same units and states."""
    from troy import PilotJobService
    from troy.plugins.coordination.file_format import MARKER, SUMMARY

    coordination = str(tmp_path / "coordination")
    with PilotJobService(coordination=coordination) as pilots:
        units = WorkUnitService(coordination=coordination)
        pilots.create("fork://localhost", {"number_of_processes": 2})
        units.add(pilots)
        units.submit([{"executable": "/bin/sh", "arguments": ["-c", f"exit {n % 2}"]}
                      for n in range(6)])  # fmt: skip
        units.wait(timeout=60)
        before = {u.id: (u.state, u.exit_code, u.pilot) for u in units.list()}
        units.close()
        pilots.cancel()
    folder = tmp_path / "coordination" / "streams" / "service" / units.id
    assert [p.name for p in folder.iterdir() if p.name.startswith(SUMMARY)], list(folder.iterdir())
    assert not [p for p in folder.iterdir() if not p.name.startswith((SUMMARY, MARKER))]
    again = WorkUnitService(id=units.id, coordination=coordination)
    try:
        assert {u.id: (u.state, u.exit_code, u.pilot) for u in again.list()} == before
    finally:
        again.close()


_CRASH_AT = """
import os, sys
import troy.api.services, troy.core.pilot_manager
from troy.cli import main
where = sys.argv[2]
if where == "submit":  # the run and its pilots are recorded, its units not yet
    troy.api.services.WorkUnitService.submit = lambda *args: os._exit(9)
else:  # the first pilot is recorded New, and its agent not yet launched
    troy.core.pilot_manager.PilotManager._launch = lambda *args: os._exit(9)
sys.exit(main(["run", sys.argv[1]]))
"""


@pytest.mark.parametrize("where", ["submit", "launch"])
def test_a_run_killed_while_it_starts_resumes_to_the_end(tmp_path: Path, where: str) -> None:
    """`troy run` dies (like SIGKILL: no clean-up) right before it submits its units, or
    while it launches a pilot.  (Before: the resume of the first ended "0 units" with
    exit 0; of the second, the pilot stayed New, counted as live, and the units
    waited for ever.  Found by the chaos campaign, seeds 16 and 111.)"""
    path, log = _batch(tmp_path, units=6, seconds=0.05)
    environment = _environment(tmp_path)
    crashed = subprocess.run(
        [sys.executable, "-c", _CRASH_AT, str(path), where], env=environment, cwd=tmp_path,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert crashed.returncode == 9, crashed.stdout + crashed.stderr
    assert not _started(log)
    resumed = subprocess.run(
        [sys.executable, "-m", "troy", "run", str(path), "--resume"], env=environment,
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "6 units: 6 Done" in resumed.stdout, resumed.stdout
    assert sorted(_started(log)) == sorted(f"work-{n}" for n in range(6))


def test_an_agent_that_starts_on_a_full_disk_waits_for_coordination(tmp_path: Path) -> None:
    """The file store is full as the agent writes its first report: it keeps the
    report and tries again, as in any outage.  (Before: it exited at once, its
    pilot failed before it started, and its units failed with it; found by the
    chaos campaign, seeds 11, 22, 29 and more.)  A real full disk: a small tmpfs."""
    from troy import PilotJobService

    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {made.stderr.decode().strip()}")
    pilots = units = None
    try:
        coordination = str(mount / "coordination")
        pilots = PilotJobService(coordination=coordination)
        units = WorkUnitService(coordination=coordination)
        pilot = pilots.create(
            "fork://localhost", {"number_of_processes": 2, "working_directory": str(tmp_path)}
        )
        agent = int(pilot.handle["pid"])
        os.kill(agent, signal.SIGSTOP)  # still importing: it has written nothing yet
        units.add(pilots)
        submitted = units.submit([{"executable": "/bin/true"}] * 4)
        filler = mount / "filler"
        with open(filler, "wb") as fill:
            try:
                while True:
                    fill.write(b"\0" * 65536)
            except OSError:
                pass  # the disk is full
        os.kill(agent, signal.SIGCONT)
        time.sleep(1.5)  # its first report fails
        assert pilot.state != State.Failed, pilot.state_detail
        filler.unlink()
        units.wait(timeout=60)
        assert [u.state for u in submitted] == [State.Done] * 4
        assert pilot.state == State.Running
    finally:
        if pilots is not None:
            pilots.cancel()
            pilots.close()
        if units is not None:
            units.close()
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_unit_queued_twice_for_one_attempt_runs_once(tmp_path: Path) -> None:
    """A commit retried after an unknown outcome (a full disk mid-commit) can queue one
    attempt of a unit twice: the agent runs it once.  (Before: two copies ran at
    once on one pilot; found by the chaos campaign, seed 122.)"""
    from troy import PilotJobService
    from troy.model import protocol

    coordination = str(tmp_path / "coordination")
    log = tmp_path / "started.log"
    with PilotJobService(coordination=coordination) as pilots:
        units = WorkUnitService(coordination=coordination)
        pilot = pilots.create("fork://localhost", {"number_of_processes": 2})
        _wait_for(lambda: pilot.state == State.Running, "the pilot never ran")
        description = {"executable": "/bin/sh", "arguments": ["-c", f"echo x >> {log}; sleep 1"]}
        units.add(pilots)
        (unit,) = units.submit([description])
        client = units._manager.coordination
        item = {"id": unit.id, "service": units.id, "d": unit.description.as_dict(), "a": 0}
        client.enqueue(protocol.pilot_key(pilot.id), [item])  # the same attempt again
        units.wait(timeout=60)
        time.sleep(0.5)  # a second copy, if any, would have started by now
        assert unit.state == State.Done
        assert log.read_text().split() == ["x"]
        units.close()
        pilots.cancel()


def test_units_whose_placement_failed_once_are_placed_at_the_next_poll(tmp_path: Path) -> None:
    """Coordination fails (a full disk) as the monitor places a unit whose dependency
    just ended: it tries again at the next poll.  (Before: the unit stayed New for
    ever and the run hung; found by the chaos campaign, seed 122.)  The failure is
    injected into a real file coordination."""
    from troy import PilotJobService
    from troy.model.errors import CoordinationError

    coordination = str(tmp_path / "coordination")
    with PilotJobService(coordination=coordination) as pilots:
        units = WorkUnitService(coordination=coordination)
        pilot = pilots.create("fork://localhost", {"number_of_processes": 2})
        _wait_for(lambda: pilot.state == State.Running, "the pilot never ran")
        units.add(pilots)
        first, second = units.submit(
            [
                {"name": "first", "executable": "/bin/sleep", "arguments": ["0.3"]},
                {"executable": "/bin/true", "after": ["first"]},
            ]
        )
        client = units._manager.coordination
        real_commit = client.commit
        failures: list[str] = []

        def commit_failing_once(stream: str, events: Any, queues: Any) -> None:
            if queues and not failures:  # the placement of `second`, once `first` ended
                failures.append(stream)
                raise CoordinationError("cannot write: [Errno 28] No space left on device")
            real_commit(stream, events, queues)

        client.commit = commit_failing_once
        units.wait(timeout=30)
        assert failures, "the failure was never injected"
        assert [first.state, second.state] == [State.Done, State.Done]
        units.close()
        pilots.cancel()
