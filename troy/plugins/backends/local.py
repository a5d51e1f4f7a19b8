"""The `local` backend: the agent runs as a child process on this host.

Chosen for ``local://`` and ``fork://localhost`` URLs (pj_type "local" or
PILOTJOB_TYPE.LOCAL).  The agent gets a session of its own, so it outlives
the process that created it (a client that dies does not take its pilot
along), and its stdout/stderr go to ``agent.out``/``agent.err`` in the
pilot's working directory.

A pilot description's ``executable`` (with its ``arguments``) is a wrapper the
agent is started through: ``{"executable": "nice", "arguments": ["-n", "10"]}``
runs ``nice -n 10 python -m troy.agent ...`` (likewise ``numactl``,
``ip netns exec NAME``, a container runtime's ``exec``).  The wrapper must exec
the agent (not fork it), so that the process troy watches is the agent.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

from troy.model.errors import BackendError
from troy.model.private import private_mkdir, private_open
from troy.model.processes import start_time
from troy.model.states import State
from troy.plugins.backends.base import Backend, PilotLaunch

_LOCAL_HOSTS = {"", "localhost", "127.0.0.1", "::1"}
#: Seconds cancel waits for the agent to stop its units and report, before SIGKILL.
CANCEL_GRACE = 8.0


def stderr_tail(path: str, limit: int = 2000) -> str:
    """The last ``limit`` characters of a log file, or "" if there is none."""
    try:
        with open(path, "rb") as stream:
            stream.seek(0, os.SEEK_END)
            size = stream.tell()
            stream.seek(max(0, size - limit))
            return stream.read().decode(errors="replace").strip()
    except OSError:
        return ""


#: The agent's logs: appended to by each agent started in the pilot directory.
_LOG_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT


class LocalBackend(Backend):
    """Forks the agent on this host."""

    name: ClassVar[str] = "local"
    schemes: ClassVar[tuple[str, ...]] = ("local", "fork")
    capabilities: ClassVar[frozenset[str]] = frozenset()

    # Agents this process started, so it can reap them and read their exit codes.
    _children: ClassVar[dict[int, subprocess.Popen[bytes]]] = {}
    _children_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, rm: str, context: Any = None) -> None:
        super().__init__(rm, context)
        host = urlsplit(rm).hostname or ""
        if host not in _LOCAL_HOSTS and host != socket.gethostname():
            raise BackendError(
                f"the local backend runs pilots on this host only, not on '{host}' ({rm})"
            )

    def launch(self, launch: PilotLaunch) -> dict[str, Any]:
        directory = Path(launch.working_directory)
        try:
            private_mkdir(directory)
            stdout = os.fdopen(private_open(directory / "agent.out", _LOG_FLAGS), "ab")
            stderr = os.fdopen(private_open(directory / "agent.err", _LOG_FLAGS), "ab")
        except OSError as exc:
            raise BackendError(f"cannot prepare pilot directory {directory}: {exc}") from exc
        environment = dict(os.environ)
        environment.update(launch.environment)
        wrapper = launch.description.executable
        command = launch.agent_command
        if wrapper:
            command = [wrapper, *(launch.description.arguments or ()), *command]
        try:
            process = subprocess.Popen(
                command,
                cwd=directory,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            raise BackendError(f"cannot start agent {command[0]}: {exc}") from exc
        finally:
            stdout.close()
            stderr.close()
        with self._children_lock:
            self._children[process.pid] = process
        return {
            "pid": process.pid,
            "host": socket.gethostname(),
            "started": start_time(process.pid),
            "stderr": str(directory / "agent.err"),
        }

    def _exit_code(self, handle: dict[str, Any]) -> int | None:
        """The agent's exit code if this process started it and it ended, else None."""
        with self._children_lock:
            process = self._children.get(handle["pid"])
        if process is None:
            return None
        return process.poll()

    def _alive(self, handle: dict[str, Any]) -> bool:
        with self._children_lock:
            process = self._children.get(handle["pid"])
        if process is not None:
            return process.poll() is None
        started = start_time(handle["pid"])
        return started is not None and started == handle.get("started")

    @staticmethod
    def _elsewhere(handle: dict[str, Any]) -> bool:
        """True if the agent was started on another host (sharing the coordination store)."""
        here = socket.gethostname()
        return bool(handle.get("host", here) != here)

    def state(self, handle: dict[str, Any]) -> tuple[State, str]:
        if self._elsewhere(handle):
            # Its process cannot be seen from here: the agent's own reports tell its state.
            return State.Unknown, f"agent runs on {handle['host']}"
        if self._alive(handle):
            return State.Running, ""
        code = self._exit_code(handle)
        if code == 0:
            return State.Failed, "agent exited without reporting how the pilot ended"
        reason = stderr_tail(handle.get("stderr", "")) or "no output on stderr"
        what = f"agent exited with code {code}" if code is not None else "agent process is gone"
        return State.Failed, f"{what}: {reason}"

    def cancel(self, handle: dict[str, Any]) -> None:
        pid = handle["pid"]
        if self._elsewhere(handle) or not self._alive(handle):
            return  # an agent on another host stops on the terminate request it reads
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + CANCEL_GRACE
        while time.monotonic() < deadline:
            if not self._alive(handle):
                return
            time.sleep(0.02)
        # Units run in sessions of their own, outside this group: the agent's guard
        # (troy.agent.guard), also in a session of its own, ends them once the agent is gone.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        self._exit_code(handle)  # reap it
