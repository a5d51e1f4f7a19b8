"""The unit guard and the host's registry of running units (troy.agent.guard).

Real processes: each test starts ``sleep`` in a session of its own, as the
agent starts units, and checks who is signalled by looking at them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from troy.agent import guard
from troy.agent.guard_process import (
    UnitGroup,
    process_info,
    read_registrations,
    registry_path,
    start_time,
    write_registration,
)

pytestmark = pytest.mark.skipif(not guard.available(), reason="the guard needs /proc")


@pytest.fixture
def sleepers() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Start sleepers with ``sleepers.append(sleeper())``; all are killed afterwards."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "30"], start_new_session=True)


def group_of(process: subprocess.Popen[bytes], unit: str = "wu-1", attempt: int = 0) -> UnitGroup:
    start = start_time(process.pid)
    assert start is not None
    return UnitGroup(unit, attempt, process.pid, start)


def ended_by_sigkill(process: subprocess.Popen[bytes], timeout: float = 10) -> bool:
    with contextlib.suppress(subprocess.TimeoutExpired):
        return process.wait(timeout) == -signal.SIGKILL
    return False


def still_running(process: subprocess.Popen[bytes]) -> bool:
    time.sleep(0.1)  # time for a stray signal to land
    return process.poll() is None


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_a_group_is_killed_only_while_its_first_process_has_the_recorded_start_time(
    sleepers: list[subprocess.Popen[bytes]],
) -> None:
    sleepers.append(sleeper())
    process = sleepers[0]
    recorded = group_of(process)
    reused = UnitGroup("wu-1", 0, process.pid, recorded.start + 1)  # same pid, another process
    assert not reused.is_ours()
    assert not reused.kill()
    assert reused.gone()  # the recorded process is not there
    assert still_running(process)
    assert recorded.is_ours() and not recorded.gone()
    assert recorded.kill()
    assert ended_by_sigkill(process)
    assert recorded.gone()


def test_the_guard_ends_the_groups_it_was_told_of_when_the_agent_end_closes(
    tmp_path: Path, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    sleepers.extend([sleeper(), sleeper(), sleeper()])
    running, ended, untold = sleepers
    watcher = guard.Guard(tmp_path, "pj-1")
    watcher.start()
    watcher.started("wu-running", 0, running.pid)
    watcher.started("wu-ended", 0, ended.pid)
    ended.kill()
    assert watcher.wait(ended) == -signal.SIGKILL  # tells the guard "ended" before reaping
    wait_for_registry(tmp_path, {("wu-running", running.pid)})
    watcher.close(timeout=10)  # what the agent's death looks like to the guard
    assert ended_by_sigkill(running)
    assert still_running(untold)
    wait_for_registry(tmp_path, set())


def test_a_guard_that_dies_is_replaced_and_told_of_every_unit_that_runs(
    tmp_path: Path, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    sleepers.extend([sleeper(), sleeper()])
    first, second = sleepers
    watcher = guard.Guard(tmp_path, "pj-1")
    watcher.start()
    watcher.started("wu-1", 0, first.pid)
    wait_for_registry(tmp_path, {("wu-1", first.pid)})
    dead = watcher.pid
    assert dead is not None
    os.kill(dead, signal.SIGKILL)
    wait_until_gone(dead)
    watcher.started("wu-2", 0, second.pid)  # the write fails: a new guard, told of both
    assert watcher.pid != dead
    wait_for_registry(tmp_path, {("wu-1", first.pid), ("wu-2", second.pid)})
    watcher.close(timeout=10)
    assert ended_by_sigkill(first) and ended_by_sigkill(second)


def wait_until_gone(pid: int) -> None:
    deadline = time.monotonic() + 10
    while (info := process_info(pid)) is not None and not info.zombie:
        assert time.monotonic() < deadline, f"{pid} still runs"
        time.sleep(0.01)


def wait_for_registry(directory: Path, expected: set[tuple[str, int]]) -> None:
    deadline = time.monotonic() + 10
    while True:
        listed = {(g.unit, g.pgid) for r in read_registrations(directory) for g in r.groups}
        if listed == expected:
            return
        assert time.monotonic() < deadline, f"registry lists {listed}, not {expected}"
        time.sleep(0.02)


def take_pid(pid: int) -> subprocess.Popen[bytes] | None:
    """A new sleeper that gets ``pid`` (through ns_last_pid), or None if that cannot be done."""
    for _ in range(50):
        try:
            Path("/proc/sys/kernel/ns_last_pid").write_text(str(pid - 1))
        except OSError:
            return None
        process = sleeper()
        if process.pid == pid:
            return process
        process.kill()  # another process took it first: try again
        process.wait()
    return None


def test_the_guard_never_kills_a_process_that_got_a_reused_pid(
    tmp_path: Path, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    sleepers.append(sleeper())
    unit = sleepers[0]
    watcher = guard.Guard(tmp_path, "pj-1")
    watcher.start()
    watcher.started("wu-1", 0, unit.pid)
    wait_for_registry(tmp_path, {("wu-1", unit.pid)})  # the guard knows its start time now
    # The unit ends and is reaped, and the guard is not told (the agent died first):
    unit.kill()
    unit.wait()
    stranger = take_pid(unit.pid)
    if stranger is None:
        watcher.close(timeout=10)
        pytest.skip("cannot choose the next pid here (needs a writable ns_last_pid)")
    sleepers.append(stranger)
    assert stranger.pid == unit.pid and os.getpgid(stranger.pid) == unit.pid
    watcher.close(timeout=10)
    wait_for_registry(tmp_path, set())  # the guard has acted and gone
    assert still_running(stranger)


def test_a_rerun_ends_only_live_copies_of_earlier_attempts_of_the_same_unit(
    tmp_path: Path, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    sleepers.extend([sleeper() for _ in range(4)])
    earlier, later, other_unit, reused = sleepers
    groups = [
        group_of(earlier, "wu-1", 0),
        group_of(later, "wu-1", 2),
        group_of(other_unit, "wu-2", 0),
        UnitGroup("wu-1", 0, reused.pid, group_of(reused).start + 1),
    ]
    agent = (dead_pid(), 1)
    write_registration(registry_path(tmp_path, *agent), "pj-1", agent, agent, groups)
    assert guard.end_earlier_copies(tmp_path, "wu-1", 1) == 1
    assert ended_by_sigkill(earlier)
    assert all(still_running(p) for p in (later, other_unit, reused))
    assert guard.end_earlier_copies(tmp_path, "wu-1", 1) == 0  # nothing left to end


def test_a_sweep_ends_only_groups_that_nobody_looks_after(
    tmp_path: Path, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    sleepers.extend([sleeper(), sleeper()])
    abandoned, looked_after = sleepers
    dead = (dead_pid(), 1)
    me = (os.getpid(), start_time(os.getpid()) or 0)
    gone = registry_path(tmp_path, *dead)
    kept = registry_path(tmp_path, *me)
    write_registration(gone, "pj-1", dead, dead, [group_of(abandoned)])
    write_registration(kept, "pj-2", me, dead, [group_of(looked_after)])  # its agent lives
    assert guard.sweep(tmp_path) == 1
    assert ended_by_sigkill(abandoned)
    assert still_running(looked_after)
    assert not gone.exists() and kept.exists()


def test_the_registry_is_private(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "run").mkdir(parents=True, mode=0o755)
    os.chmod(home / "run", 0o755)
    directory = guard.registry_directory(home)
    assert directory.parent == home / "run"
    for path in (directory, directory.parent):
        assert path.stat().st_mode & 0o777 == 0o700
    if os.getuid() != 0:
        return  # only root can hand it to someone else
    os.chown(directory, 65534, 65534)
    with pytest.raises(guard.GuardError, match="owned by uid 0"):
        guard.registry_directory(home)
