"""The service lease: who owns a work-unit service, and when another may take it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from troy.core.lease import Lease
from troy.plugins.coordination.file import FileCoordination


@pytest.fixture
def coordination(tmp_path: Path) -> FileCoordination:
    return FileCoordination(str(tmp_path / "c"), serve=True)


def test_the_first_process_takes_a_free_lease_and_a_second_does_not(
    coordination: FileCoordination,
) -> None:
    first, second = Lease(coordination, "wus-1"), Lease(coordination, "wus-1")
    assert first.acquire() and first.held
    assert not second.acquire() and not second.held
    free, holder = second.lapsed()
    assert not free and holder == f"pid {os.getpid()} on {holder.split(' on ')[1]}"


def test_a_released_lease_is_taken_at_once_with_a_new_epoch(
    coordination: FileCoordination,
) -> None:
    first, second = Lease(coordination, "wus-1"), Lease(coordination, "wus-1")
    assert first.acquire()
    first.release()
    assert not first.held
    assert second.acquire() and second.epoch == 1


def test_a_lease_whose_process_on_this_host_is_gone_lapses_at_once(
    coordination: FileCoordination, tmp_path: Path
) -> None:
    script = (
        "import sys; from troy.core.lease import Lease; "
        "from troy.plugins.coordination.file import FileCoordination; "
        "assert Lease(FileCoordination(sys.argv[1], serve=True), 'wus-1').acquire()"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "c")], check=True)
    later = Lease(coordination, "wus-1", timeout=3600)
    free, why = later.lapsed()
    assert free and why.endswith("is gone")
    assert later.acquire() and later.epoch == 1


def test_a_silent_owner_lapses_after_its_timeout_on_the_watchers_clock(
    coordination: FileCoordination,
) -> None:
    owner = Lease(coordination, "wus-1", timeout=0.5)
    assert owner.acquire()  # alive (it is this process) but it never beats again
    watcher = Lease(coordination, "wus-1")
    assert watcher.lapsed()[0] is False  # the first look starts its clock
    time.sleep(0.3)
    assert watcher.lapsed()[0] is False
    time.sleep(0.4)  # silent for 0.7 s > the owner's recorded 0.5 s
    free, why = watcher.lapsed()
    assert free and "silent" in why
    assert watcher.acquire()


def test_an_owner_that_was_superseded_stands_down_at_its_next_beat(
    coordination: FileCoordination,
) -> None:
    owner = Lease(coordination, "wus-1", timeout=0.3)
    assert owner.acquire()
    time.sleep(0.1)
    assert owner.renew()  # still the owner
    taker = Lease(coordination, "wus-1", timeout=0.3)
    taker.lapsed()
    time.sleep(0.5)  # the owner "was stopped": no beat
    assert taker.acquire()
    assert not owner.renew() and not owner.held
    owner.release()  # a superseded owner's release changes nothing
    assert taker.lapsed() == (False, "this process")
