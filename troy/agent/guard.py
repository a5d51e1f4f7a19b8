"""No unit outlives its agent, and no re-run overlaps a live copy on the same host.

The agent's side of its guard process (troy.agent.guard_process, whose
docstring says why a guard and how it avoids killing a reused pid): `Guard`
starts the guard, tells it of each unit that starts and ends (one short write
to a pipe each, no file-system round trip), and, before a unit runs again
(attempt > 0), ends any copy of an earlier attempt that still runs on this
host, in whatever agent, and waits until it is gone.  A stopped or hung agent
given up for lost still runs its units, and its guard still lists them in the
host's registry, which is how the next agent to run one finds it.

The registry is ``$TROY_HOME/run/<host>``: per user (other users' processes
cannot be signalled anyway), shared by every agent of this user on this host
whatever its pilot, and named by host so that a ``$TROY_HOME`` on a shared
filesystem still gives each host its own.  It is made 0700 and refused if
another user owns it, since whoever writes it chooses what agents kill.  An
agent that cannot use it (refused, or a read-only home) says so on stderr and
runs without it: its guard still ends its units if it dies, but re-runs on
this host are not checked for earlier copies.

Without /proc (not Linux) there is no guard: units are then not ended when
their agent dies, as before.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

from troy.agent import guard_process
from troy.agent.guard_process import Registration, UnitGroup, read_registrations
from troy.model.config import troy_home
from troy.model.errors import TroyError
from troy.model.private import private_mkdir

log = logging.getLogger("troy.agent")

#: Seconds a re-run waits for an earlier copy it SIGKILLed to end before it gives up.
END_TIMEOUT = 30.0
#: Bytes the pipe to the guard holds (Linux's default for unprivileged processes' maximum),
#: some 15,000 units' lines: a guard slowed by a slow disk does not hold up the agent.
PIPE_SIZE = 1 << 20
#: Guards started again after one died, at most, before the agent goes on without.
MAX_RESTARTS = 3
#: Runs the guard module by path: no troy import, no site packages, a fast start.
_BOOT = "import runpy, sys; del sys.argv[0]; runpy.run_path(sys.argv[0], run_name='__main__')"


class GuardError(TroyError):
    """The host's unit registry cannot be used safely, or a unit's earlier copy would not end."""


def registry_directory(home: Path | None = None) -> Path:
    """This host's registry of running units (made, 0700, if missing).

    Raises GuardError if it is not a directory this user owns.
    """
    run = (home or troy_home()) / "run"
    directory = run / socket.gethostname()
    for path in (run, directory):
        try:
            private_mkdir(path)  # and TROY_HOME, if the agent is the first to need it
            status = path.lstat()
        except OSError as exc:
            raise GuardError(f"cannot make the unit registry {path}: {exc}") from exc
        if not stat.S_ISDIR(status.st_mode) or status.st_uid != os.getuid():
            raise GuardError(
                f"unit registry {path} is not a directory owned by uid {os.getuid()}: "
                "whoever can write it chooses what troy's agents kill"
            )
        if stat.S_IMODE(status.st_mode) & 0o077:
            os.chmod(path, 0o700)
    return directory


def available() -> bool:
    """True where a guard can work (it needs /proc)."""
    return os.path.exists(f"/proc/{os.getpid()}/stat")


def earlier_copies(
    registrations: list[Registration], unit: str, attempt: int
) -> list[UnitGroup]:  # fmt: skip
    """The recorded groups of earlier attempts of ``unit`` that still run here."""
    return [
        group
        for registration in registrations
        if registration.here()
        for group in registration.groups
        if group.unit == unit and group.attempt < attempt and group.is_ours()
    ]


def end_earlier_copies(directory: Path, unit: str, attempt: int) -> int:
    """SIGKILL every copy of an earlier attempt of ``unit`` on this host; wait until gone.

    Returns how many were ended.  Raises GuardError if one is still there after
    END_TIMEOUT seconds (e.g. stuck in uninterruptible sleep).
    """
    copies = earlier_copies(read_registrations(directory), unit, attempt)
    for copy in copies:
        copy.kill()
    deadline = time.monotonic() + END_TIMEOUT
    left = copies
    while left:
        left = [copy for copy in left if not copy.gone()]
        if not left:
            break
        if time.monotonic() > deadline:
            stuck = left[0]
            raise GuardError(
                f"an earlier copy of {unit} (attempt {stuck.attempt}, process group "
                f"{stuck.pgid}) still runs on {socket.gethostname()} {END_TIMEOUT:g} s"
                " after SIGKILL"
            )
        time.sleep(0.01)
    for copy in copies:
        log.warning(
            "ended attempt %d of %s (process group %d), left running on this host by an agent"
            " given up for lost, before running attempt %d",
            copy.attempt, unit, copy.pgid, attempt,
        )  # fmt: skip
    return len(copies)


def sweep(directory: Path) -> int:
    """End the groups of registry files nobody looks after (agent and guard dead); remove them.

    Returns how many groups were signalled.
    """
    ended = 0
    for registration in read_registrations(directory):
        if not registration.here():
            continue
        if registration.abandoned():
            ended += sum(group.kill() for group in registration.groups)
            with contextlib.suppress(FileNotFoundError):
                registration.path.unlink()
    return ended


class Guard:
    """The agent's end of its guard process.

    `started` and `wait` are called from the agent's slot threads.  A guard that
    dies is started again (at the next unit that starts or ends) and told of every
    unit that runs.
    """

    def __init__(self, directory: Path | None, pilot_id: str) -> None:
        #: The host's registry of running units (None: the guard keeps no file in one).
        self.directory = directory
        self.pilot_id = pilot_id
        #: pid -> (unit, attempt) of the units that run.
        self._units: dict[int, tuple[str, int]] = {}
        self._lock = threading.Lock()
        self._descriptor: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._restarts = 0

    def start(self) -> None:
        """Start the guard process.  Raises GuardError if it cannot be started."""
        read, write = os.pipe()  # both ends close-on-exec: units never hold them
        with contextlib.suppress(OSError, AttributeError):  # room for bursts while it writes
            fcntl.fcntl(write, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        try:
            command = [sys.executable, "-I", "-S", "-c", _BOOT, guard_process.__file__]
            command += [str(read), str(self.directory or ""), str(os.getpid()), self.pilot_id]
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                pass_fds=(read,),
                start_new_session=True,  # out of reach of whatever ends the agent's group
            )
        except OSError as exc:
            os.close(write)
            raise GuardError(f"cannot start the unit guard: {exc}") from exc
        finally:
            os.close(read)
        self._descriptor = write

    def started(self, unit: str, attempt: int, pid: int) -> None:
        """Tell the guard that ``unit`` runs as process group ``pid``."""
        with self._lock:
            self._units[pid] = (unit, attempt)
            self._send(b"+ %d %d %s\n" % (pid, attempt, unit.encode()))

    def wait(self, process: subprocess.Popen[bytes]) -> int:
        """Wait for a unit's process to end and tell the guard before reaping it.

        Telling first means the guard never holds a pid the kernel may hand out again.
        """
        with contextlib.suppress(ChildProcessError, InterruptedError):
            os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
        with self._lock:
            if self._units.pop(process.pid, None) is not None:
                self._send(b"- %d\n" % process.pid)
        return process.wait()

    def _send(self, line: bytes) -> None:
        """Write one line (atomic: shorter than PIPE_BUF); start a new guard if it died."""
        if self._descriptor is None:
            return
        try:
            os.write(self._descriptor, line)
        except BrokenPipeError:
            log.error("the unit guard (pid %s) died: starting another", self.pid)
            self._restart()

    def _close_pipe(self) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None

    @property
    def pid(self) -> int | None:
        """The guard process' pid (None before it starts)."""
        return self._process.pid if self._process is not None else None

    def _restart(self) -> None:
        self._close_pipe()
        if self._process is not None:
            self._process.poll()  # reap it
        self._restarts += 1
        if self._restarts > MAX_RESTARTS:
            log.error("the unit guard keeps dying: units are not ended if this agent dies")
            return
        try:
            self.start()
        except GuardError as exc:
            log.error("%s: units are not ended if this agent dies", exc)
            return
        for pid, (unit, attempt) in self._units.items():
            self._send(b"+ %d %d %s\n" % (pid, attempt, unit.encode()))

    def close(self, timeout: float = 0) -> None:
        """Let the guard go: it ends whatever still runs and removes its registry file.

        Waits up to ``timeout`` seconds for it to be done.
        """
        with self._lock:  # a slot thread may still be writing
            self._close_pipe()
        if timeout and self._process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout)
