"""The guard: a process that ends an agent's units when the agent dies.

Units run in sessions of their own (so that cancel can signal each unit's
process group), which means that nothing takes them along when their agent
dies: killing the agent's process group (the local backend's cancel), the OOM
killer or a crash leaves them running, reparented to init, while the manager
places them again.  Each agent therefore starts one guard (troy.agent.guard):
this module, run by path with ``python -I -S`` so that it starts in
milliseconds and imports nothing but the standard library.  It holds the read
end of a pipe from the agent and sits in a session of its own, out of reach
of whatever ends the agent's process group.  The agent writes one line per
unit that starts (``+ PGID ATTEMPT UNIT``) and one per unit that ends
(``- PGID``); end of file means the agent is gone, however it went, and the
guard SIGKILLs the process groups it was told of and not told had ended.

Why a pipe and not PR_SET_PDEATHSIG: the death signal reaches only a unit's
first process (not what it forks), fires when the *thread* that started it
ends, and needs code run between fork and exec, which takes every start off
subprocess' fast path.  End of file on a pipe is delivered whatever kills the
agent, and costs the agent two writes per unit.  Nor is the agent made a
child subreaper (PR_SET_CHILD_SUBREAPER): that changes only who inherits the
orphaned descendants of a unit, not whether they end, and the agent, which
waits for each unit by pid, would collect zombies it never reaps.

The guard also keeps a small host-local registry file (one per agent, in
``$TROY_HOME/run/<host>``, rewritten at most every `FLUSH_INTERVAL` seconds,
never per unit) naming the process groups that run, each with the start time
of its first process (``/proc/<pid>/stat``).  Another agent on this host that
is about to run a unit again reads it to end the copy a stopped or hung agent
still runs, and an agent sweeps files whose agent and guard are both dead.
The guard writes it, not the agent, so that a unit costs the agent two
writes to a pipe and no file-system round trip.
A group is signalled only while its first process (pid = pgid, a session
leader, which can never leave its group) still exists with the recorded start
time: the kernel does not hand out a number that is still some process'
pgid, so that check rules out a reused pid; a group whose first process has
ended is left alone.  Entries carry the boot id and the pid namespace, and
entries of another boot or namespace are never acted on.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

#: Seconds between rewrites of a guard's registry file while units start and end.
FLUSH_INTERVAL = 0.05
#: Seconds the guard lets lines gather after it read some: short units then cost it
#: nothing but their two lines, at the price of noticing the agent's end this much later.
GATHER = 0.01
#: Seconds the guard waits for the groups it killed to go before it writes its last word.
LAST_WAIT = 5.0
#: Suffix of registry files (one per agent).
SUFFIX = ".units"


@dataclass(frozen=True)
class ProcessInfo:
    """What /proc/<pid>/stat says of a process."""

    state: str
    pgid: int
    #: Clock ticks after boot at which it started: with the pid, names one process.
    start: int

    @property
    def zombie(self) -> bool:
        return self.state in ("Z", "X")


def process_info(pid: int) -> ProcessInfo | None:
    """State, pgid and start time of ``pid``, or None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stream:
            data = stream.read()
    except OSError:  # gone (ENOENT; ESRCH while it is being reaped)
        return None
    fields = data[data.rindex(b")") + 2 :].split()
    return ProcessInfo(fields[0].decode(), int(fields[2]), int(fields[19]))


def start_time(pid: int) -> int | None:
    """The start time of ``pid`` (zombies included), or None if there is no such process."""
    info = process_info(pid)
    return None if info is None else info.start


def host_identity() -> tuple[str, str]:
    """(boot id, pid namespace) of this process: pids and start times mean something within them."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = ""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return boot, namespace


@dataclass(frozen=True)
class UnitGroup:
    """One unit's process group as recorded: its first process is ``pgid``, started at ``start``."""

    unit: str
    attempt: int
    pgid: int
    start: int

    def is_ours(self) -> bool:
        """True while the group's first process (maybe a zombie) is the one recorded."""
        return start_time(self.pgid) == self.start

    def kill(self) -> bool:
        """SIGKILL the group if it is still the recorded one; return whether it was signalled."""
        if not self.is_ours():
            return False
        try:
            os.killpg(self.pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def gone(self) -> bool:
        """True once no process of the group runs (zombies do not run)."""
        leader = process_info(self.pgid)
        if leader is None or leader.start != self.start:
            return True  # the number is free or reused: the group has no member left
        if not leader.zombie:
            return False
        return not any(info.pgid == self.pgid and not info.zombie for info in _all_processes())


def _all_processes() -> Iterator[ProcessInfo]:
    for name in os.listdir("/proc"):
        if name.isdigit():
            info = process_info(int(name))
            if info is not None:
                yield info


@dataclass(frozen=True)
class Registration:
    """One registry file: an agent, its guard and the unit groups it runs."""

    path: Path
    boot: str
    namespace: str
    pilot: str
    #: (pid, start time) of the agent and of its guard.
    agent: tuple[int, int]
    guard: tuple[int, int]
    groups: tuple[UnitGroup, ...]

    def here(self) -> bool:
        """True if its pids mean what they say in this process (same boot, same pid namespace)."""
        return (self.boot, self.namespace) == host_identity()

    def abandoned(self) -> bool:
        """True if its agent and its guard are both gone: nobody looks after its groups."""
        return all(start_time(pid) != start for pid, start in (self.agent, self.guard))


def registry_path(directory: str | os.PathLike[str], agent_pid: int, agent_start: int) -> Path:
    """The registry file of one agent."""
    return Path(directory) / f"{agent_pid}-{agent_start}{SUFFIX}"


def write_registration(
    path: Path, pilot: str, agent: tuple[int, int], guard: tuple[int, int],
    groups: Iterable[UnitGroup],
) -> None:  # fmt: skip
    """Replace ``path`` atomically with the record of these groups."""
    boot, namespace = host_identity()
    document = {
        "boot": boot,
        "pidns": namespace,
        "pilot": pilot,
        "agent": list(agent),
        "guard": list(guard),
        "units": [[g.unit, g.attempt, g.pgid, g.start] for g in groups],
    }
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(descriptor, json.dumps(document).encode())
    finally:
        os.close(descriptor)
    os.replace(temporary, path)


def read_registrations(directory: str | os.PathLike[str]) -> list[Registration]:
    """Every registry file in ``directory`` (files that cannot be read are skipped)."""
    found = []
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    for name in names:
        if not name.endswith(SUFFIX) or name.startswith("."):
            continue
        path = Path(directory) / name
        try:
            document = json.loads(path.read_bytes())
            found.append(
                Registration(
                    path,
                    document["boot"],
                    document["pidns"],
                    document["pilot"],
                    (int(document["agent"][0]), int(document["agent"][1])),
                    (int(document["guard"][0]), int(document["guard"][1])),
                    tuple(
                        UnitGroup(str(unit), int(attempt), int(pgid), int(start))
                        for unit, attempt, pgid, start in document["units"]
                    ),
                )
            )
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            continue  # removed meanwhile, or not ours to read
    return found


class _Watch:
    """The guard's state: the groups the agent runs, and its registry file."""

    def __init__(self, path: Path | None, pilot: str, agent: tuple[int, int]) -> None:
        self.path = path
        self.pilot = pilot
        self.agent = agent
        self.guard = (os.getpid(), start_time(os.getpid()) or 0)
        #: pgid -> (unit, attempt, start time or None until read).
        self.running: dict[int, tuple[str, int, int | None]] = {}
        self.dirty = True
        self.written = 0.0
        self._partial = b""

    def take(self, data: bytes) -> None:
        """Apply what the agent wrote; then learn the start times of new groups.

        Start times are read only after the whole chunk is applied, so a unit that
        started and ended within it costs nothing.  The agent writes ``-`` before it
        reaps a unit, so a group read here is still the agent's own (or, if the
        agent died meanwhile, its number was not yet handed out again).
        """
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            fields = line.split(b" ", 3)
            try:
                if fields[0] == b"+" and len(fields) == 4:
                    self.running[int(fields[1])] = (fields[3].decode(), int(fields[2]), None)
                elif fields[0] == b"-" and len(fields) == 2:
                    self.running.pop(int(fields[1]), None)
            except ValueError:  # not from an agent: a guard does not die of it
                continue
        for pgid, (unit, attempt, start) in list(self.running.items()):
            if start is None:
                start = start_time(pgid)
                if start is None:  # already gone and reaped: the agent is dying
                    del self.running[pgid]
                else:
                    self.running[pgid] = (unit, attempt, start)
        self.dirty = True

    def groups(self) -> list[UnitGroup]:
        return [
            UnitGroup(unit, attempt, pgid, start)
            for pgid, (unit, attempt, start) in self.running.items()
            if start is not None
        ]

    def flush(self) -> None:
        if self.path is not None and (self.running or self.path.exists()):
            with contextlib.suppress(OSError):  # a full disk must not stop the guard
                write_registration(self.path, self.pilot, self.agent, self.guard, self.groups())
        self.dirty = False
        self.written = time.monotonic()

    def end(self) -> None:
        """The agent is gone: SIGKILL its groups, wait for them, then say what remains."""
        groups = self.groups()
        for group in groups:
            group.kill()
        deadline = time.monotonic() + LAST_WAIT
        while groups and time.monotonic() < deadline:
            groups = [g for g in groups if not g.gone()]
            if groups:
                time.sleep(0.01)
        if groups:  # stuck (e.g. in uninterruptible sleep): leave them for a sweep to find
            self.running = {g.pgid: (g.unit, g.attempt, g.start) for g in groups}
            self.flush()
        elif self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


def serve(descriptor: int, directory: str, agent_pid: int, pilot: str) -> None:
    """Watch the agent through ``descriptor`` until it is gone; then end its units.

    ``directory`` is the host's registry ("": keep no registry file).
    """
    agent_start = start_time(agent_pid) or 0
    path = registry_path(directory, agent_pid, agent_start) if directory else None
    watch = _Watch(path, pilot, (agent_pid, agent_start))
    while True:
        timeout = None
        if watch.dirty:
            timeout = max(0.0, watch.written + FLUSH_INTERVAL - time.monotonic())
        readable, _, _ = select.select([descriptor], [], [], timeout)
        if readable:
            data = os.read(descriptor, 65536)
            if not data:
                break
            watch.take(data)
            time.sleep(GATHER)
        if watch.dirty and time.monotonic() >= watch.written + FLUSH_INTERVAL:
            watch.flush()
    watch.end()


def main(argv: list[str]) -> None:
    """``guard_process.py FD DIRECTORY AGENT_PID PILOT``: run as the agent's guard."""
    # Signals meant for the agent's job (a batch system's SIGTERM before its SIGKILL,
    # a terminal's SIGINT or SIGHUP) must not end the guard before the agent: it ends
    # on its own once the agent is gone.
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    descriptor, directory, agent_pid, pilot = int(argv[0]), argv[1], int(argv[2]), argv[3]
    serve(descriptor, directory, agent_pid, pilot)


if __name__ == "__main__":
    main(sys.argv[1:])
