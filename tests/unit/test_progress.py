"""How `troy run` shows progress: plain lines in a log, a bar on a terminal without rich."""

from __future__ import annotations

import io
import sys

import pytest

from troy.cli.progress import Progress, rate_and_eta
from troy.model.states import State


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_come_every_interval_while_the_counts_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TROY_PROGRESS_INTERVAL", "5")
    clock, log = Clock(), io.StringIO()
    progress = Progress(4, log, clock=clock)
    assert progress.mode == "plain"
    progress.show({State.Pending: 4})
    clock.now += 1
    progress.show({State.Running: 2, State.Pending: 2})  # within the interval: not yet
    clock.now += 5
    progress.show({State.Running: 2, State.Pending: 2})
    clock.now += 5
    progress.show({State.Running: 2, State.Pending: 2})  # unchanged: nothing new to say
    clock.now += 4
    progress.close({State.Done: 3, State.Failed: 1})  # the end is always shown
    assert log.getvalue().splitlines() == [
        "troy run: 0/4 final (Pending 4); 0.00 units/s, ETA ?",
        "troy run: 0/4 final (Pending 2, Running 2); 0.00 units/s, ETA ?",
        "troy run: 4/4 final (Done 3, Failed 1); 0.27 units/s, done",
    ]


def test_quiet_shows_nothing() -> None:
    for stream in (io.StringIO(), Terminal()):
        progress = Progress(2, stream, quiet=True)
        progress.show({State.Running: 2})
        progress.close({State.Done: 2})
        assert stream.getvalue() == ""


def test_on_a_terminal_without_rich_a_bar_shows_counts_rate_and_eta(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "rich", None)  # as if not installed
    clock, terminal = Clock(), Terminal()
    progress = Progress(4, terminal, clock=clock)
    assert progress.mode == "live" and progress._rich is None
    clock.now += 2
    progress.show({State.Done: 1, State.Running: 2, State.Pending: 1})
    progress.close({State.Done: 4})
    shown = terminal.getvalue()
    assert "\r[#######.......................] 1/4  Done 1, Pending 1, Running 2" in shown
    assert "0.50 units/s, ETA 6 s" in shown
    assert shown.endswith("\n")


def test_rate_and_eta() -> None:
    assert rate_and_eta(0, 10, 3.0) == "0.00 units/s, ETA ?"
    assert rate_and_eta(5, 10, 10.0) == "0.50 units/s, ETA 10 s"
    assert rate_and_eta(10, 1000, 10.0) == "1.00 units/s, ETA 16 min"
    assert rate_and_eta(10, 100_000, 10.0) == "1.00 units/s, ETA 27.8 h"
    assert rate_and_eta(3, 3, 1.0) == "3.00 units/s, done"
