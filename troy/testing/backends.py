"""Conformance suite for backends: what every backend plugin must do.

Subclass `BackendSuite` and override ``backend_rm`` (a resource URL the
backend serves); override ``backend_pj_type`` to select it by name rather than
by scheme, and ``coordination_url`` / ``pilot_description`` where the
resource needs them (e.g. a shared directory for a remote agent).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from troy.api.objects import PilotJob
from troy.api.services import PilotJobService, WorkUnitService
from troy.model import protocol
from troy.model.states import State
from troy.plugins.coordination.base import Coordination
from troy.testing.overrides import fixture_needed

#: Seconds a pilot may take to start in these tests (batch systems are slow).
START_TIMEOUT = 60.0


def process_gone(pid: int) -> bool:
    """True if no live process has this pid (a zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] in "ZX"


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    """Poll ``predicate`` until true; fail the test, naming ``what``, if it is not in time."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def running_local_pilot(
    service: PilotJobService, coordination: Coordination, directory: Path, slots: int
) -> tuple[PilotJob, int]:
    """A ``fork://localhost`` pilot of ``slots`` slots in ``directory``, once it runs,
    and its agent's pid (from the agent's Running report, read through ``coordination``)."""
    pilot = service.create(
        "fork://localhost", {"number_of_processes": slots, "working_directory": str(directory)}
    )
    wait_until(lambda: pilot.state == State.Running, START_TIMEOUT, "the pilot to run")
    events, _ = coordination.read(protocol.pilot_key(pilot.id), None)
    running = [event for event in events if event.get("s") == "Running" and "pid" in event]
    assert running and running[-1]["slots"] == slots, events
    return pilot, int(running[-1]["pid"])


class BackendFixtures:
    """How to reach the backend under test; a subclass must override ``backend_rm``."""

    @pytest.fixture
    def backend_rm(self) -> str:
        """A resource URL the backend serves (pilots are started there); override this."""
        fixture_needed(
            "BackendSuite",
            "backend_rm",
            "a resource URL your backend serves, where the suite may start pilots of 2 "
            "slots (override 'backend_pj_type' too to select the backend by name)",
            '"fork://localhost"',
        )

    @pytest.fixture
    def backend_pj_type(self) -> str | None:
        return None

    @pytest.fixture
    def coordination_url(self, tmp_path: Path) -> str:
        return (tmp_path / "coordination").as_uri()

    @pytest.fixture
    def pilot_description(self, tmp_path: Path) -> dict[str, Any]:
        return {"number_of_processes": 2, "working_directory": str(tmp_path / "pilot")}

    @pytest.fixture
    def pilot_service(self, coordination_url: str) -> Iterator[PilotJobService]:
        service = PilotJobService(coordination=coordination_url)
        yield service
        service.cancel()
        service.close()

    @pytest.fixture
    def unit_service(
        self, coordination_url: str, pilot_service: PilotJobService
    ) -> Iterator[WorkUnitService]:
        service = WorkUnitService(coordination=coordination_url)
        service.add(pilot_service)
        yield service
        service.close()

    @pytest.fixture
    def pilot(
        self,
        pilot_service: PilotJobService,
        backend_rm: str,
        backend_pj_type: str | None,
        pilot_description: dict[str, Any],
    ) -> PilotJob:
        return pilot_service.create(backend_rm, pilot_description, backend_pj_type)


class BackendLifecycleTests:
    """A pilot starts, is seen from a new connection, and cancel ends it."""

    def test_pilot_reaches_running(self, pilot: PilotJob) -> None:
        wait_until(lambda: pilot.state == State.Running, START_TIMEOUT, f"{pilot.id} Running")
        assert pilot.slots == 2
        assert [s for s, _ in pilot.history][-2:] == [State.Pending, State.Running]

    def test_reconnected_service_sees_the_pilot(
        self, pilot: PilotJob, pilot_service: PilotJobService, coordination_url: str
    ) -> None:
        wait_until(lambda: pilot.state == State.Running, START_TIMEOUT, f"{pilot.id} Running")
        with PilotJobService(id=pilot_service.id, coordination=coordination_url) as again:
            seen = again.get_pilot(pilot.id)
            wait_until(lambda: seen.state == State.Running, 10, "reconnected pilot Running")
            assert seen.rm == pilot.rm
            assert seen.pj_type == pilot.pj_type

    def test_cancel_ends_pilot_and_its_unit_processes(
        self, pilot: PilotJob, unit_service: WorkUnitService, tmp_path: Path
    ) -> None:
        pid_file = tmp_path / "unit.pid"
        unit = unit_service.submit(
            {"executable": "/bin/sh", "arguments": ["-c", f"echo $$ > {pid_file}; exec sleep 300"]}
        )
        wait_until(
            lambda: pid_file.exists() and pid_file.read_text().strip(), START_TIMEOUT, "unit start"
        )
        pid = int(pid_file.read_text())
        assert not process_gone(pid)
        pilot.cancel()
        assert pilot.state == State.Canceled
        assert unit.wait(timeout=30) == State.Canceled
        wait_until(lambda: process_gone(pid), 10, f"unit process {pid} to end")


class BackendUnitTests:
    """A pilot runs units: outputs land in sandboxes, exit codes are recorded."""

    def test_unit_runs_with_arguments_and_environment(
        self, pilot: PilotJob, unit_service: WorkUnitService
    ) -> None:
        unit = unit_service.submit(
            {
                "executable": "/bin/echo",
                "arguments": ["hello", "$GREETING"],
                "environment": ["GREETING=world"],
                "output": "stdout.txt",
            }
        )
        assert unit.wait(timeout=START_TIMEOUT) == State.Done, unit.state_detail
        assert unit.exit_code == 0
        assert unit.pilot == pilot.id
        assert unit.sandbox is not None
        assert Path(unit.sandbox, "stdout.txt").read_text() == "hello world\n"

    def test_failing_unit_is_failed_with_its_exit_code(
        self, pilot: PilotJob, unit_service: WorkUnitService
    ) -> None:
        unit = unit_service.submit({"executable": "/bin/sh", "arguments": ["-c", "exit 7"]})
        assert unit.wait(timeout=START_TIMEOUT) == State.Failed
        assert unit.exit_code == 7
        assert "7" in unit.state_detail

    def test_missing_executable_fails_with_reason(
        self, pilot: PilotJob, unit_service: WorkUnitService
    ) -> None:
        unit = unit_service.submit({"executable": "/no/such/program"})
        assert unit.wait(timeout=START_TIMEOUT) == State.Failed
        assert "/no/such/program" in unit.state_detail

    def test_units_use_all_slots(
        self, pilot: PilotJob, unit_service: WorkUnitService, tmp_path: Path
    ) -> None:
        # Two units that each wait for the other prove both slots run at once.
        a, b = tmp_path / "a", tmp_path / "b"
        script = (
            "touch {mine}; for i in $(seq 200); do [ -e {other} ] && exit 0; sleep 0.05; done;"
            " exit 1"
        )
        units = unit_service.submit(
            [
                {"executable": "/bin/sh", "arguments": ["-c", script.format(mine=a, other=b)]},
                {"executable": "/bin/sh", "arguments": ["-c", script.format(mine=b, other=a)]},
            ]
        )
        for unit in units:
            assert unit.wait(timeout=START_TIMEOUT) == State.Done, unit.state_detail
        assert os.path.exists(a) and os.path.exists(b)


class BackendSuite(BackendFixtures, BackendLifecycleTests, BackendUnitTests):
    """Every test a backend must pass."""
