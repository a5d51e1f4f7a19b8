"""Shared fixtures: every test gets its own troy home and coordination directory.

The tests come in three layers: ``unit/`` (pure logic, no services, no agents or
pilots: fast), ``integration/`` (agents, pilots, real services) and
``conformance/`` (troy's plugins against the suites of `troy.testing`).  Everything
that starts agents or needs a service is marked ``integration``, so
``pytest -m "not integration"`` runs the fast set.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from troy import PilotJobService, WorkUnitService
from troy.testing.backends import BackendFixtures

INTEGRATION = Path(__file__).parent / "integration"

#: Markers that imply ``integration``: the live tiers (each needs a real service) and
#: the long end-to-end runs.
LIVE_MARKERS = ("redis", "ssh", "slurm", "s3", "condor", "irods", "slow")


def starts_agents(item: pytest.Item) -> bool:
    """Whether the test starts real pilots: the backend suite does, and so does a test
    that asks for both services (pilots to run its units on)."""
    cls = getattr(item, "cls", None)
    if cls is not None and issubclass(cls, BackendFixtures):
        return True
    fixtures = getattr(item, "fixturenames", ())
    return "services" in fixtures or ("pilots" in fixtures and "units" in fixtures)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks ``integration`` every test under tests/integration/, and any other test that
    needs a live service or starts agents (the local and DIANE backend suites, say)."""
    for item in items:
        if (
            INTEGRATION in item.path.parents
            or any(item.get_closest_marker(name) for name in LIVE_MARKERS)
            or starts_agents(item)
        ):
            item.add_marker(pytest.mark.integration)


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


@pytest.fixture
def reachable() -> Iterator[Path]:
    """A directory other local users can pass through (pytest's own is 0700)."""
    base = Path(tempfile.mkdtemp(prefix="troy-perms-", dir="/tmp"))
    base.chmod(0o711)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)
