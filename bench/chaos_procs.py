"""What bench/chaos.py starts and watches besides troy: /proc, redis-server, a tmpfs.

Everything here acts by PID (or by mount point) on things the campaign itself
started or marked; nothing is found or killed by name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _stat(pid: str) -> tuple[str, str, int] | None:
    """(state letter, start time in clock ticks, parent pid) of a process; None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rpartition(b")")[2].split()
        return fields[0].decode(), fields[19].decode(), int(fields[1])
    except (OSError, IndexError, ValueError):
        return None


def _cmdline(pid: str) -> str | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return None


class ProcScanner:
    """The processes whose environment holds ``NAME=value``, seen by polling /proc.

    Keeps, per process (pid and start time, so a reused pid is another
    process), when it was first and last seen and the first poll that found it
    gone (a zombie counts as gone: it runs nothing).
    """

    def __init__(self, name: str, value: str) -> None:
        self.marker = f"{name}={value}".encode()
        self._known: dict[tuple[str, str], bool] = {}  # (pid, st) -> marked
        #: "pid:st" -> {"first", "last", "gone", "cmd"}
        self.seen: dict[str, dict[str, Any]] = {}
        self.alive: dict[int, str] = {}  # pid -> cmd, as of the last poll
        self.parents: dict[int, int] = {}  # pid -> parent pid, as of the last poll

    def _marked(self, pid: str) -> bool:
        try:
            with open(f"/proc/{pid}/environ", "rb") as environ:
                return self.marker in environ.read().split(b"\0")
        except OSError:
            return False

    def poll(self) -> dict[int, str]:
        """Look once; the marked processes alive now (pid -> command line)."""
        now = time.monotonic()
        alive: dict[int, str] = {}
        parents: dict[int, int] = {}
        present: set[str] = set()
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            stat = _stat(pid)
            if stat is None or stat[0] in ("Z", "X"):
                continue
            key = (pid, stat[1])
            if key not in self._known:
                self._known[key] = self._marked(pid)
            if not self._known[key]:
                continue
            # Read each time: a child forked by an agent shows the agent's command line
            # until it execs its unit.
            cmd = _cmdline(pid)
            if cmd is None:
                continue
            name = f"{pid}:{stat[1]}"
            present.add(name)
            entry = self.seen.setdefault(name, {"first": now, "gone": None})
            entry.update(last=now, gone=None, cmd=cmd)
            alive[int(pid)] = cmd
            parents[int(pid)] = stat[2]
        for name, entry in self.seen.items():
            if name not in present and entry["gone"] is None:
                entry["gone"] = now
        self.alive, self.parents = alive, parents
        return alive

    def agents(self) -> list[int]:
        """The agents alive at the last poll (not their children that have yet to exec)."""
        agents = {pid for pid, cmd in self.alive.items() if "troy.agent" in cmd}
        return sorted(pid for pid in agents if self.parents.get(pid) not in agents)

    def kill_all(self) -> None:
        """SIGCONT then SIGKILL every marked process still alive (by PID)."""
        for _ in range(3):
            alive = self.poll()
            if not alive:
                return
            for pid in alive:
                for sig in (signal.SIGCONT, signal.SIGKILL):
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, sig)
            time.sleep(0.1)


def send(pid: int, sig: signal.Signals) -> bool:
    try:
        os.kill(pid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


class RedisServer:
    """A redis-server on a loopback port with appendonly + appendfsync always, by its PID."""

    def __init__(self, directory: Path, env: dict[str, str]) -> None:
        self.dir = directory
        self.env = env
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 10.0) -> bool:
        """Start it (again: same port and directory); False if it does not answer in time."""
        if self.running:
            return True
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir.parent / "redis.log", "ab") as log:
            self.process = subprocess.Popen(
                [
                    shutil.which("redis-server") or "redis-server",
                    "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.dir),
                    "--appendonly", "yes", "--appendfsync", "always", "--save", "",
                    "--daemonize", "no",
                ],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.running:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        return True
            except OSError:
                pass
            time.sleep(0.02)
        return False

    def kill(self) -> None:
        if self.running and self.process is not None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        """SIGTERM (Redis writes its append-only file), SIGKILL after 5 s."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGCONT)
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


class Tmpfs:
    """A small tmpfs this campaign mounts, fills, frees and unmounts."""

    def __init__(self, path: Path, size: str = "32m") -> None:
        self.path = path
        self.size = size
        self.mounted = False
        self.filler = path / ".chaos-fill"

    @staticmethod
    def why_not(probe: Path) -> str | None:
        """None if a tmpfs can be mounted here, else the reason."""
        probe.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(probe)],
            capture_output=True, text=True, timeout=10,
        )  # fmt: skip
        if done.returncode != 0:
            return (done.stderr or done.stdout).strip() or f"mount exited {done.returncode}"
        subprocess.run(["umount", str(probe)], capture_output=True, timeout=10)
        return None

    def mount(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={self.size}", "tmpfs", str(self.path)],
            check=True, capture_output=True, timeout=10,
        )  # fmt: skip
        self.mounted = True

    def fill(self) -> None:
        """Write until the filesystem is full (ENOSPC)."""
        block = b"\0" * (1 << 20)
        with contextlib.suppress(OSError), open(self.filler, "ab") as out:
            while True:
                out.write(block)
                out.flush()
        with contextlib.suppress(OSError), open(self.filler, "ab") as out:
            while True:  # the last partial megabyte
                out.write(b"\0" * 4096)
                out.flush()

    def free(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.filler.unlink()

    def unmount(self) -> None:
        if not self.mounted:
            return
        for _ in range(20):
            done = subprocess.run(["umount", str(self.path)], capture_output=True, timeout=10)
            if done.returncode == 0:
                self.mounted = False
                return
            time.sleep(0.25)
        subprocess.run(["umount", "-l", str(self.path)], capture_output=True, timeout=10)
        self.mounted = False
