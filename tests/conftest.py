"""Shared fixtures: every test gets its own troy home and coordination directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from troy import PilotJobService, WorkUnitService


@pytest.fixture(autouse=True)
def troy_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "troy-home"
    monkeypatch.setenv("TROY_HOME", str(home))
    monkeypatch.delenv("TROY_COORDINATION", raising=False)
    return home


@pytest.fixture
def coordination_url(tmp_path: Path) -> str:
    return (tmp_path / "coordination").as_uri()


@pytest.fixture
def pilots(coordination_url: str) -> Iterator[PilotJobService]:
    service = PilotJobService(coordination=coordination_url)
    yield service
    service.cancel()
    service.close()


@pytest.fixture
def units(coordination_url: str) -> Iterator[WorkUnitService]:
    service = WorkUnitService(coordination=coordination_url)
    yield service
    service.close()


@pytest.fixture
def services(
    pilots: PilotJobService, units: WorkUnitService
) -> tuple[PilotJobService, WorkUnitService]:
    """A pilot-job service and a work-unit service that places units on its pilots."""
    units.add(pilots)
    return pilots, units


@pytest.fixture(scope="session", autouse=True)
def no_agent_outlives_the_tests() -> Iterator[None]:
    """Agents run in sessions of their own and outlive their client by design: a test
    that fails before it cancels its pilots would leave them behind.  Stop, by PID, every
    agent this test process started that is still running at the end."""
    yield
    import os
    import signal

    from troy.plugins.backends.local import LocalBackend

    for pid, process in list(LocalBackend._children.items()):
        if process.poll() is None:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
            process.wait()
