"""No unit outlives its agent, and a re-run never overlaps a live copy on the same host (issue 16).

Real local pilots and real processes.  Before the guard (troy.agent.guard),
units ran on in sessions of their own when their agent was killed, and a
unit given up for lost with a stopped agent ran twice at once.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import troy
from troy import State
from troy.agent.guard_process import read_registrations, start_time
from troy.model import processes
from troy.testing.backends import wait_until

pytestmark = pytest.mark.slow


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, not yet reaped, counts as gone)."""
    return processes.start_time(pid) is not None


@contextlib.contextmanager
def services(tmp_path: Path) -> Iterator[tuple[troy.PilotJobService, troy.WorkUnitService]]:
    url = (tmp_path / "coordination").as_uri()
    with (
        troy.PilotJobService(coordination=url) as pilots,
        troy.WorkUnitService(coordination=url) as units,
    ):
        units.add(pilots)
        try:
            yield pilots, units
        finally:
            pilots.cancel()


def one_slot_pilot(pilots: troy.PilotJobService, directory: Path) -> troy.PilotJob:
    return pilots.create(
        "fork://localhost", {"number_of_processes": 1, "working_directory": str(directory)}
    )


def read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text else None


@contextlib.contextmanager
def killed_afterwards(pids: list[int]) -> Iterator[None]:
    """SIGKILL whatever of ``pids`` (still the same processes) runs at the end: no leaks."""
    starts = {pid: start_time(pid) for pid in pids}
    try:
        yield
    finally:
        for pid, start in starts.items():
            if start is not None and start_time(pid) == start:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


#: A unit that forks a grandchild; both sleep, and both pids are written down.
FORKER = 'sleep 60 & echo $! > "$1/grandchild"; echo $$ > "$1/unit"; wait'


def forker_pids(directory: Path) -> list[int]:
    """The pids of a FORKER unit and its grandchild, once it wrote them; both run."""
    files = [directory / "unit", directory / "grandchild"]
    wait_until(lambda: all(read_pid(f) for f in files), 60, "the unit to write its pids")
    pids = [pid for pid in map(read_pid, files) if pid is not None]
    assert len(pids) == 2 and all(alive(pid) for pid in pids), pids
    return pids


def test_a_killed_agents_unit_and_what_it_forked_end(tmp_path: Path) -> None:
    kill_an_agent_and_watch_its_unit_end(tmp_path)
    # The guard removed its registry file once the groups were gone.
    registry = Path(os.environ["TROY_HOME"]) / "run"
    wait_until(
        lambda: not any(read_registrations(d) for d in registry.iterdir()),
        10,
        "the guard to remove its registry file",
    )


def test_without_a_usable_registry_the_guard_still_ends_a_killed_agents_units(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("TROY_HOME", str(tmp_path / "a-file" / "home"))  # cannot be made
    kill_an_agent_and_watch_its_unit_end(tmp_path)
    errors = (tmp_path / "pilot" / "agent.err").read_text()
    assert "cannot make the unit registry" in errors, errors


def kill_an_agent_and_watch_its_unit_end(tmp_path: Path) -> None:
    with services(tmp_path) as (pilots, units):
        pilot = one_slot_pilot(pilots, tmp_path / "pilot")
        units.submit({"executable": "/bin/sh", "arguments": ["-c", FORKER, "sh", str(tmp_path)]})
        pids = forker_pids(tmp_path)
        with killed_afterwards(pids):
            assert pilot.handle is not None
            os.kill(pilot.handle["pid"], signal.SIGKILL)
            wait_until(
                lambda: not any(alive(pid) for pid in pids),
                10,
                "the killed agent's unit and its grandchild to end",
            )


def test_a_stopped_agents_unit_ends_when_its_pilot_is_canceled(tmp_path: Path) -> None:
    # The local backend SIGKILLs a stopped agent's process group after its grace
    # period; the units, in sessions of their own, are out of that group.
    with services(tmp_path) as (pilots, units):
        pilot = one_slot_pilot(pilots, tmp_path / "pilot")
        units.submit({"executable": "/bin/sh", "arguments": ["-c", FORKER, "sh", str(tmp_path)]})
        pids = forker_pids(tmp_path)
        assert pilot.handle is not None
        agent = pilot.handle["pid"]
        with killed_afterwards(pids):
            os.kill(agent, signal.SIGSTOP)
            try:
                pilot.cancel()  # SIGTERM waits while it is stopped: SIGKILL after the grace
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(agent, signal.SIGCONT)
            wait_until(
                lambda: not any(alive(pid) for pid in pids),
                10,
                "the stopped agent's unit and its grandchild to end",
            )


#: A unit that notes, in a file it shares with its other copies, when it runs.
TICKER = """
import os, sys, time
path, seconds = sys.argv[1], float(sys.argv[2])
def say(what):
    with open(path, "a") as stream:
        stream.write(f"{os.getpid()} {what} {time.time():.6f}\\n")
say("start")
end = time.monotonic() + seconds
while time.monotonic() < end:
    say("tick")
    time.sleep(0.05)
say("end")
"""


def intervals(path: Path) -> dict[int, tuple[float, float, bool]]:
    """Per copy (pid): first and last time it said something, and whether it ended."""
    seen: dict[int, list[float]] = {}
    ended: set[int] = set()
    for line in path.read_text().splitlines():
        pid, what, when = line.split()
        seen.setdefault(int(pid), []).append(float(when))
        if what == "end":
            ended.add(int(pid))
    return {pid: (min(times), max(times), pid in ended) for pid, times in seen.items()}


def test_a_unit_given_up_for_lost_never_runs_alongside_its_rerun_on_this_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TROY_HEARTBEAT_TIMEOUT", "2")
    side_effects = tmp_path / "side-effects"
    with services(tmp_path) as (pilots, units):
        stopped = one_slot_pilot(pilots, tmp_path / "stopped")
        (unit,) = units.submit(
            [{"executable": sys.executable, "arguments": ["-c", TICKER, str(side_effects), "10"]}]
        )
        wait_until(side_effects.exists, 60, "the first copy to start")
        other = one_slot_pilot(pilots, tmp_path / "other")
        wait_until(lambda: other.state == State.Running, 60, "the second pilot to run")
        assert stopped.handle is not None
        agent = stopped.handle["pid"]
        os.kill(agent, signal.SIGSTOP)  # alive to its backend: only the heartbeat tells
        try:
            unit.wait(timeout=90)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(agent, signal.SIGCONT)
        assert unit.state == State.Done, unit.state_detail
        assert unit.pilot == other.id
        assert [t["kind"] for t in unit.tries] == ["lost"], unit.tries
        copies = sorted(intervals(side_effects).values())
        assert len(copies) == 2, copies
        (_, first_last, first_ended), (second_start, _, second_ended) = copies
        assert not first_ended and second_ended, copies
        assert first_last < second_start, (
            f"the copies overlapped by {first_last - second_start:.2f} s: {copies}"
        )


def test_a_stopped_agent_that_wakes_up_starts_no_unit_that_runs_again_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The stopped agent had claimed a second unit that waited for its one slot;
    # both are placed again while it is stopped.  When it wakes up, its slot is
    # free at once (its running copy was ended by the re-run), and the waiting
    # unit must not start there while its re-run runs here.  Whether its slot
    # thread gets there before its main thread reads that it was given up is a
    # race; tests/unit/test_out_of_touch.py checks the hold on starts itself.
    monkeypatch.setenv("TROY_HEARTBEAT_TIMEOUT", "2")
    running, waiting = tmp_path / "running", tmp_path / "waiting"
    with services(tmp_path) as (pilots, units):
        stopped = one_slot_pilot(pilots, tmp_path / "stopped")
        submitted = units.submit(
            [
                {"executable": sys.executable, "arguments": ["-c", TICKER, str(path), seconds]}
                for path, seconds in ((running, "8"), (waiting, "6"))
            ]
        )
        wait_until(running.exists, 60, "the first unit to start")
        other = pilots.create(
            "fork://localhost",
            {"number_of_processes": 2, "working_directory": str(tmp_path / "other")},
        )
        wait_until(lambda: other.state == State.Running, 60, "the second pilot to run")
        assert stopped.handle is not None
        agent = stopped.handle["pid"]
        os.kill(agent, signal.SIGSTOP)
        try:
            wait_until(waiting.exists, 60, "the waiting unit to start on the other pilot")
        finally:
            os.kill(agent, signal.SIGCONT)
        units.wait(timeout=90)
        assert [u.state for u in submitted] == [State.Done, State.Done]
        assert all(u.pilot == other.id for u in submitted)
        for path in (running, waiting):
            copies = sorted(intervals(path).values())
            for (_, last, _), (start, _, _) in itertools.pairwise(copies):
                assert last < start, f"copies of one unit overlapped: {copies}"
        assert len(intervals(waiting)) == 1, "the woken agent started a unit run elsewhere"
