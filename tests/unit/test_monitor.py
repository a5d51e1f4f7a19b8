"""The monitor thread: a failing coordination is one warning, not a traceback per poll."""

from __future__ import annotations

import logging
import threading

import pytest

from troy.core.monitor import Monitor
from troy.model.errors import CoordinationError


def test_a_coordination_outage_is_one_warning_then_one_recovery_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Before: every failed poll logged a full traceback (a disk-full run printed dozens)."""
    calls = 0
    recovered = threading.Event()

    def poll() -> bool:
        nonlocal calls
        calls += 1
        if calls <= 20:
            raise CoordinationError("cannot write /x/records/a.json: No space left on device")
        recovered.set()
        return False

    caplog.set_level(logging.WARNING, logger="troy.monitor")
    monitor = Monitor("troy-test", poll)
    monitor.start()
    try:
        for _ in range(40):  # polls back off to 0.2 s: wake it to run them all quickly
            monitor.wake()
            if recovered.wait(0.05):
                break
        assert recovered.is_set()
    finally:
        monitor.stop()
    records = [r for r in caplog.records if r.name == "troy.monitor"]
    assert [r.getMessage() for r in records] == [
        "troy-test: cannot write /x/records/a.json: No space left on device; retrying",
        "troy-test: coordination answers again",
    ]
    assert all(r.exc_info is None for r in records)
