"""How `troy run` shows its progress: live on a terminal, a plain line now and then elsewhere.

On a terminal the display is drawn by rich (``pip install 'troy[progress]'``)
when it is installed, else by a one-line bar of troy's own; both show the
units per state, the rate (final units per second) and the ETA.  Without a
terminal (a CI log, a pipe) one plain line is written every
``$TROY_PROGRESS_INTERVAL`` seconds (default 5) while the counts change, so
a log shows a run's progress before it ends::

    troy run: 12/100 final (Done 10, Failed 2, Running 4, Pending 84); 0.9 units/s, ETA 98 s

``quiet`` turns every kind off.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, TextIO

from troy.model.states import State

FINAL_ORDER = (State.Done, State.Failed, State.Canceled)
#: Seconds between plain lines unless ``$TROY_PROGRESS_INTERVAL`` says otherwise.
DEFAULT_INTERVAL = 5.0


def plain_interval() -> float:
    """``$TROY_PROGRESS_INTERVAL`` (seconds, at least 0.1), default 5."""
    try:
        return max(0.1, float(os.environ.get("TROY_PROGRESS_INTERVAL") or DEFAULT_INTERVAL))
    except ValueError:
        return DEFAULT_INTERVAL


def finished(counts: dict[State, int]) -> int:
    """How many units are final."""
    return sum(counts.get(state, 0) for state in FINAL_ORDER)


def describe_counts(counts: dict[State, int]) -> str:
    """``Done 10, Failed 2, Running 4``: the states that have units, final ones first."""
    order = [*FINAL_ORDER, *(s for s in State if s not in FINAL_ORDER)]
    return ", ".join(f"{state} {counts[state]}" for state in order if counts.get(state))


def rate_and_eta(done: int, total: int, elapsed: float) -> str:
    """``0.9 units/s, ETA 98 s`` (``ETA ?`` before the first unit is final)."""
    rate = done / elapsed if elapsed > 0 else 0.0
    if done >= total:
        eta = "done"
    elif rate > 0:
        eta = f"ETA {_duration((total - done) / rate)}"
    else:
        eta = "ETA ?"
    return f"{rate:.2f} units/s, {eta}"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class Progress:
    """Shows a run's counts per state as they change (see the module docstring)."""

    def __init__(
        self,
        total: int,
        stream: TextIO,
        quiet: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.stream = stream
        self.clock = clock
        self.started = clock()
        self.mode = "off" if quiet else ("live" if _isatty(stream) else "plain")
        self.interval = plain_interval()
        self._last_line = ""
        self._last_written = -float("inf")
        self._rich: Any = None
        if self.mode == "live":
            self._rich = _rich_display(stream, total)

    def summary(self, counts: dict[State, int]) -> str:
        """The counts, rate and ETA as one plain line."""
        done = finished(counts)
        elapsed = self.clock() - self.started
        return (
            f"troy run: {done}/{self.total} final ({describe_counts(counts) or 'no units'});"
            f" {rate_and_eta(done, self.total, elapsed)}"
        )

    def show(self, counts: dict[State, int]) -> None:
        """Show ``counts`` now (a plain line only if the interval has passed and they changed)."""
        if self.mode == "off":
            return
        if self.mode == "plain":
            self._plain(counts)
        elif self._rich is not None:
            self._rich.show(counts, self.total, self.clock() - self.started)
        else:
            self._bar(counts)

    def _plain(self, counts: dict[State, int], force: bool = False) -> None:
        now = self.clock()
        key = describe_counts(counts)
        if not force and (now - self._last_written < self.interval or key == self._last_line):
            return
        if force and key == self._last_line:
            return
        self.stream.write(self.summary(counts) + "\n")
        self.stream.flush()
        self._last_line = key
        self._last_written = now

    def _bar(self, counts: dict[State, int]) -> None:
        done = finished(counts)
        width = 30
        filled = width * done // max(self.total, 1)
        tail = rate_and_eta(done, self.total, self.clock() - self.started)
        line = (
            f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total}"
            f"  {describe_counts(counts)}  {tail}"
        )
        if line != self._last_line:
            self.stream.write(line.ljust(len(self._last_line)))
            self.stream.flush()
            self._last_line = line

    def close(self, counts: dict[State, int] | None = None) -> None:
        """Show the last counts and end the display."""
        if self.mode == "plain" and counts is not None:
            self._plain(counts, force=True)
        elif self.mode == "live":
            if counts is not None:
                self.show(counts)
            if self._rich is not None:
                self._rich.close()
            elif self._last_line:
                self.stream.write("\n")
                self.stream.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class _RichDisplay:
    """A rich progress bar with the counts per state, rate and ETA."""

    def __init__(self, progress: Any, task: Any) -> None:
        self.progress = progress
        self.task = task

    def show(self, counts: dict[State, int], total: int, elapsed: float) -> None:
        done = finished(counts)
        self.progress.update(
            self.task,
            completed=done,
            states=describe_counts(counts),
            rate=rate_and_eta(done, total, elapsed),
        )

    def close(self) -> None:
        self.progress.stop()


def _rich_display(stream: TextIO, total: int) -> _RichDisplay | None:
    """A started rich display on ``stream``, or None if rich is not installed."""
    try:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn
        from rich.progress import Progress as RichProgress
    except ImportError:
        return None
    progress = RichProgress(
        TextColumn("troy run"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[states]}"),
        TextColumn("{task.fields[rate]}"),
        console=Console(file=stream),
        refresh_per_second=4,
        redirect_stdout=False,  # stdout is the run's summary, for scripts: never the display's
    )
    task = progress.add_task("units", total=total, states="", rate="")
    progress.start()
    return _RichDisplay(progress, task)
