"""What an agent publishes for `troy logs`: its log's last lines, and failed units' output ends.

Both go into coordination records (troy.model.protocol), so `troy logs` reads
them wherever the pilot runs, through the same coordination:

- ``pilot/<id>/log``: the last `AGENT_LINES` lines the agent logged and how
  many it logged in all (``n``: a reader that follows prints the lines past
  the ``n`` it saw), rewritten by a thread at most every `PUBLISH_INTERVAL` s
  while the agent logs, and once more as it ends;
- ``pilot/<id>/tail/<unit id>``: the last `UNIT_TAIL_CHARS` characters of the
  stdout and stderr of a unit that exited non-zero (the last attempt's).

Bounded and scrubbed: every line and tail goes through
troy.model.secrets.scrub first (the secrets the agent was given, and any
URL's password), so no secret reaches coordination this way.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import socket
import threading
import time

from troy.agent.launcher import Prepared
from troy.agent.slots import Job
from troy.model import protocol
from troy.model.errors import CoordinationError
from troy.model.secrets import scrub
from troy.plugins.coordination.base import Coordination

log = logging.getLogger("troy.agent")

#: Lines of the agent's log its record keeps.
AGENT_LINES = 200
#: Characters of a failed unit's stdout and of its stderr kept.
UNIT_TAIL_CHARS = 4000
#: Shortest time between two writes of the agent's log record.
PUBLISH_INTERVAL = 1.0


class LogTail(logging.Handler):
    """A logging handler that keeps the agent's last lines and publishes them now and then."""

    def __init__(
        self,
        coordination: Coordination,
        pilot_id: str,
        lines: int = AGENT_LINES,
        interval: float = PUBLISH_INTERVAL,
    ) -> None:
        super().__init__(logging.INFO)
        self.coordination = coordination
        self.key = protocol.agent_log_key(pilot_id)
        self.interval = interval
        self.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        self._lines: collections.deque[str] = collections.deque(maxlen=lines)
        self._count = 0
        self._published = -1
        self._guard = threading.Lock()
        self._changed = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._publish_loop, name="troy-log-tail", daemon=True
        )

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = scrub(self.format(record))
        except Exception:  # a log line must never break the agent
            self.handleError(record)
            return
        with self._guard:
            for line in text.splitlines() or [""]:
                self._lines.append(line)
                self._count += 1
        self._changed.set()

    def start(self) -> LogTail:
        """Publish from now on (an empty record first: `troy logs` sees the agent started)."""
        self.publish()
        self._thread.start()
        return self

    def publish(self) -> None:
        """Write the record if lines came since the last write; a coordination error waits."""
        with self._guard:
            if self._count == self._published:
                return
            count = self._count
            record = {"n": count, "lines": list(self._lines), "ts": time.time()}
        try:
            self.coordination.put_record(self.key, record)
        except CoordinationError:
            return  # the next line, or the last publish, tries again
        self._published = count

    def _publish_loop(self) -> None:
        while not self._stopping.is_set():
            self._changed.wait()
            self._changed.clear()
            self.publish()
            self._stopping.wait(self.interval)

    def close(self) -> None:
        """Stop the thread and publish what is left."""
        self._stopping.set()
        self._changed.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.publish()
        logging.getLogger().removeHandler(self)
        super().close()


def start(coordination: Coordination, pilot_id: str) -> LogTail:
    """Publish the agent's log (every logger's INFO lines and above) for `troy logs`."""
    handler = LogTail(coordination, pilot_id)
    logging.getLogger().addHandler(handler)
    handler.start()
    log.info("agent of %s started on %s, pid %s", pilot_id, socket.gethostname(), os.getpid())
    return handler


def tail_of(path: str, limit: int = UNIT_TAIL_CHARS) -> str:
    """The last ``limit`` characters of a file, scrubbed; "" if it cannot be read."""
    if not path:
        return ""
    try:
        with open(path, "rb") as file:
            size = file.seek(0, os.SEEK_END)
            file.seek(max(0, size - limit))
            data = file.read(limit)
    except OSError:
        return ""
    return scrub(data.decode(errors="replace"))


def publish_unit_tail(
    coordination: Coordination, pilot_id: str, job: Job, returncode: int, prepared: Prepared
) -> None:
    """Record the ends of the stdout and stderr of a unit that exited ``returncode`` (not 0)."""
    log.info("unit %s (attempt %s) exited with code %s", job.id, job.attempt, returncode)
    stdout, stderr = prepared.stdout, prepared.stderr
    record = {
        "id": job.id,
        "a": job.attempt,
        "exit": returncode,
        "stdout": tail_of(stdout),
        "stderr": tail_of(stderr) if stderr != stdout else "",
        "ts": time.time(),
    }
    with contextlib.suppress(CoordinationError):  # a tail is a courtesy: never fail a unit
        coordination.put_record(protocol.unit_tail_key(pilot_id, job.id), record)
