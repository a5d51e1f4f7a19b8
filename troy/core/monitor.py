"""A background thread that polls coordination for a manager, and delivers callbacks."""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from troy.model.errors import TroyError

log = logging.getLogger("troy.monitor")

#: Poll intervals (seconds): fast while events flow, backing off to the slow one when idle.
FAST_POLL = 0.01
SLOW_POLL = 0.2
#: Seconds between repeats of the same warning while a poll keeps failing.
WARN_EVERY = 30.0


class Monitor:
    """Calls ``poll()`` in a daemon thread and runs queued notifications in order.

    ``poll`` returns True when it found something (the next poll comes soon) and
    False when idle (the interval doubles up to SLOW_POLL).  Notifications are
    callables queued by any thread with `notify`; they run in the monitor
    thread, in the order queued, outside any manager lock.
    """

    def __init__(self, name: str, poll: Callable[[], bool]) -> None:
        self._poll = poll
        self._notifications: collections.deque[Callable[[], Any]] = collections.deque()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Start polling (separate from construction, so the owner can store it first)."""
        self._thread.start()

    def notify(self, notification: Callable[[], Any]) -> None:
        """Queue a notification and wake the thread."""
        self._notifications.append(notification)
        self._wake.set()

    def wake(self) -> None:
        """Poll again now instead of after the current interval."""
        self._wake.set()

    def stop(self) -> None:
        """End the thread after the current round (notifications queued so far still run)."""
        self._stopped.set()
        self._wake.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)

    @property
    def in_monitor_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def _deliver(self) -> None:
        while self._notifications:
            notification = self._notifications.popleft()
            try:
                notification()
            except Exception:
                log.exception("notification failed")

    def _run(self) -> None:
        interval = FAST_POLL
        failing: tuple[str, float] | None = None  # the last warning, and when
        while not self._stopped.is_set():
            try:
                busy = self._poll()
                if failing is not None:
                    log.warning("%s: coordination answers again", self._thread.name)
                    failing = None
            except TroyError as exc:
                # Coordination down or a full disk: one line, not a traceback per poll.
                message = str(exc)
                now = time.monotonic()
                if failing is None or failing[0] != message or now - failing[1] > WARN_EVERY:
                    log.warning("%s: %s; retrying", self._thread.name, message)
                    failing = (message, now)
                busy = False
            except Exception:
                log.exception("monitor poll failed; retrying")
                busy = False
            self._deliver()
            interval = FAST_POLL if busy else min(interval * 2, SLOW_POLL)
            self._wake.wait(interval)
            self._wake.clear()
        self._deliver()
