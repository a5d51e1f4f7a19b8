"""End to end on a real local pilot: many units, failures, cancel, callbacks, reconnect."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

import troy
from troy import State
from troy.core import hooks
from troy.testing.backends import process_gone, wait_until


def local_pilot(
    pilots: troy.PilotJobService, tmp_path: Path, slots: int = 2, **extra: object
) -> troy.PilotJob:
    """A pilot on this machine, its sandboxes under tmp_path/pilot-<slots>."""
    directory = tmp_path / f"pilot-{slots}"
    return pilots.create(
        "fork://localhost",
        {"number_of_processes": slots, "working_directory": str(directory), **extra},
    )


def two_slot_pilot(pilots: troy.PilotJobService, tmp_path: Path, **extra: object) -> troy.PilotJob:
    return local_pilot(pilots, tmp_path, 2, **extra)


def test_500_units_on_a_two_slot_pilot(
    pilots: troy.PilotJobService, units: troy.WorkUnitService, tmp_path: Path
) -> None:
    units.add(pilots)
    pilot = two_slot_pilot(pilots, tmp_path)
    submitted = units.submit(
        [
            {
                "executable": "/bin/sh",
                "arguments": ["-c", 'echo "unit $N"; echo "to stderr" >&2'],
                "environment": {"N": str(n)},
                "output": "out.txt",
                "error": "err.txt",
            }
            for n in range(500)
        ]
    )
    units.wait(timeout=120)
    assert [u.state for u in submitted] == [State.Done] * 500
    assert {u.pilot for u in submitted} == {pilot.id}
    assert len({u.sandbox for u in submitted}) == 500
    for n, unit in enumerate(submitted):
        assert unit.exit_code == 0
        assert unit.sandbox is not None
        assert Path(unit.sandbox).parent == tmp_path / "pilot-2"
        assert Path(unit.sandbox, "out.txt").read_text() == f"unit {n}\n"
        assert Path(unit.sandbox, "err.txt").read_text() == "to stderr\n"
        assert [s for s, _ in unit.history] == [State.New, State.Pending, State.Running, State.Done]
        times = [t for _, t in unit.history]
        assert times == sorted(times)


def test_failing_unit_is_failed_with_its_exit_code(
    pilots: troy.PilotJobService, units: troy.WorkUnitService, tmp_path: Path
) -> None:
    units.add(pilots)
    two_slot_pilot(pilots, tmp_path)
    good, bad = units.submit(
        [
            {"executable": "/bin/true"},
            {"executable": "/bin/sh", "arguments": ["-c", "echo oops >&2; exit 3"]},
        ]
    )
    assert bad.wait(timeout=30) == State.Failed
    assert bad.exit_code == 3
    assert bad.state_detail == "exit code 3"
    assert bad.sandbox is not None
    assert Path(bad.sandbox, "stderr").read_text() == "oops\n"
    assert good.wait(timeout=30) == State.Done


def test_canceled_unit_process_is_gone(
    pilots: troy.PilotJobService, units: troy.WorkUnitService, tmp_path: Path
) -> None:
    units.add(pilots)
    two_slot_pilot(pilots, tmp_path)
    pid_file = tmp_path / "pid"
    # The unit's child (a grandchild of the agent) must die too: cancel kills the group.
    unit = units.submit(
        {
            "executable": "/bin/sh",
            "arguments": ["-c", f"sleep 300 & echo $! > {pid_file}; wait"],
        }
    )
    wait_until(lambda: pid_file.exists() and pid_file.read_text().strip(), 30, "unit start")
    child = int(pid_file.read_text())
    wait_until(lambda: unit.state == State.Running, 10, "unit Running")
    unit.cancel()
    assert unit.wait(timeout=30) == State.Canceled
    wait_until(lambda: process_gone(child), 10, "the unit's child process to end")
    other = units.submit({"executable": "/bin/true"})
    assert other.wait(timeout=30) == State.Done  # the slot was given back


def test_cancel_of_a_queued_unit_never_runs_it(
    pilots: troy.PilotJobService, units: troy.WorkUnitService, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    unit = units.submit({"executable": "/bin/touch", "arguments": [str(marker)]})
    assert unit.state == State.New  # no pilot yet
    unit.cancel()
    assert unit.wait(timeout=5) == State.Canceled
    units.add(pilots)
    two_slot_pilot(pilots, tmp_path)
    probe = units.submit({"executable": "/bin/true"})
    assert probe.wait(timeout=30) == State.Done
    assert not marker.exists()


def test_callbacks_fire_once_per_transition_in_order(
    pilots: troy.PilotJobService, units: troy.WorkUnitService, tmp_path: Path
) -> None:
    seen: list[tuple[str, str, object]] = []
    removed: list[object] = []

    class Recorder(troy.Callback):
        def cb(self, obj: object, member: str, value: object) -> bool:
            seen.append((obj.id, member, value))  # type: ignore[attr-defined]
            return True

    def once(obj: object, member: str, value: object) -> bool:
        removed.append(value)
        return False  # removes itself

    unit = units.submit({"executable": "/bin/sleep", "arguments": ["0.2"]})
    unit.set_callback("state", Recorder())
    unit.set_callback("state", once)
    units.add(pilots)  # placement happens only now: every transition is observed
    two_slot_pilot(pilots, tmp_path)
    assert unit.wait(timeout=30) == State.Done
    assert [(m, v) for _, m, v in seen] == [
        ("state", State.Pending),
        ("state", State.Running),
        ("state", State.Done),
    ]
    assert {i for i, _, _ in seen} == {unit.id}
    assert removed == [State.Pending]


def test_pilot_callbacks_and_observer_hooks(
    pilots: troy.PilotJobService, units: troy.WorkUnitService, tmp_path: Path
) -> None:
    class Observer:
        def __init__(self) -> None:
            self.units: list[tuple[str, str]] = []

        @hooks.hookimpl
        def troy_unit_state_changed(
            self, service_id: str, unit_id: str, state: str, detail: str, timestamp: float
        ) -> None:
            if service_id == units.id:
                self.units.append((unit_id, state))

    observer = Observer()
    hooks.register(observer)
    try:
        unit = units.submit({"executable": "/bin/true"})
        units.add(pilots)
        pilot = two_slot_pilot(pilots, tmp_path)
        pilot_states: list[object] = []
        pilot.set_callback("state", lambda obj, member, value: pilot_states.append(value))
        assert unit.wait(timeout=30) == State.Done
        pilot.cancel()
        assert pilot.wait(timeout=10) == State.Canceled
        assert observer.units == [(unit.id, "Pending"), (unit.id, "Running"), (unit.id, "Done")]
        assert pilot_states[-1] == State.Canceled
    finally:
        hooks.unregister(observer)


RECONNECT = """
import json, sys, troy
units = troy.WorkUnitService(id=sys.argv[1], coordination=sys.argv[2])
units.wait(timeout=60)
pilots = units.list_pilots()
print(json.dumps({
    "units": {u.id: [str(u.state), u.exit_code, u.pilot] for u in units.list()},
    "pilots": {p.id: str(p.state) for p in pilots},
}))
"""


def test_second_process_reconnects_and_sees_every_state(
    pilots: troy.PilotJobService,
    units: troy.WorkUnitService,
    tmp_path: Path,
    coordination_url: str,
) -> None:
    units.add(pilots)
    pilot = two_slot_pilot(pilots, tmp_path)
    submitted = units.submit(
        [
            {"executable": "/bin/sh", "arguments": ["-c", f"sleep 0.05; exit {n % 3}"]}
            for n in range(30)
        ]
    )
    # The other process attaches while the units still run and waits for them itself.
    result = subprocess.run(
        [sys.executable, "-c", RECONNECT, units.id, coordination_url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    seen = json.loads(result.stdout)
    units.wait(timeout=30)
    expected = {u.id: [str(u.state), u.exit_code, u.pilot] for u in submitted}
    assert seen["units"] == expected
    assert {state for state, _, _ in expected.values()} == {"Done", "Failed"}
    assert seen["pilots"] == {pilot.id: "Running"}


def test_reconnect_to_unknown_id_is_a_clear_error(coordination_url: str) -> None:
    with pytest.raises(troy.NoSuchObject, match="wus-nothere"):
        troy.WorkUnitService(id="wus-nothere", coordination=coordination_url)
    with pytest.raises(troy.NoSuchObject, match="pjs-nothere"):
        troy.PilotJobService(id="pjs-nothere", coordination=coordination_url)


def test_bad_description_records_nothing(units: troy.WorkUnitService) -> None:
    units.submit({"executable": "/bin/true"})
    before = [u.id for u in units.list()]
    with pytest.raises(troy.BadDescription) as error:
        units.submit(
            [{"executable": "/bin/true"}, {"executable": "/bin/true", "number_of_processes": -2}]
        )
    assert error.value.field == "[1].number_of_processes"
    with pytest.raises(troy.UnknownAttribute, match="did you mean 'executable'"):
        units.submit({"executabel": "/bin/true"})
    with pytest.raises(troy.BadDescription, match="executable"):
        units.submit({"arguments": ["no executable"]})
    assert [u.id for u in units.list()] == before
    again = troy.WorkUnitService(id=units.id, coordination=units.coordination)
    assert [u.id for u in again.list()] == before
    again.close()


def test_unit_larger_than_every_pilot_fails_at_once(
    pilots: troy.PilotJobService, units: troy.WorkUnitService, tmp_path: Path
) -> None:
    units.add(pilots)
    two_slot_pilot(pilots, tmp_path)
    unit = units.submit({"executable": "/bin/true", "number_of_processes": 3})
    assert unit.wait(timeout=5) == State.Failed
    assert "needs 3 slots" in unit.state_detail


def test_multi_slot_units_share_the_pilot(
    pilots: troy.PilotJobService, units: troy.WorkUnitService, tmp_path: Path
) -> None:
    units.add(pilots)
    two_slot_pilot(pilots, tmp_path)
    log = tmp_path / "log"
    script = f"echo start $$ >> {log}; sleep 0.3; echo end $$ >> {log}"
    submitted = units.submit(
        [{"executable": "/bin/sh", "arguments": ["-c", script], "total_cpu_count": 2}] * 2
        + [{"executable": "/bin/sh", "arguments": ["-c", script]}]
    )
    units.wait(timeout=30)
    assert [u.state for u in submitted] == [State.Done] * 3
    events = [line.split()[0] for line in log.read_text().splitlines()]
    # A two-slot unit fills the pilot: nothing else may start until it ends.
    assert events[:2] == ["start", "end"]


def test_wall_time_limit_ends_pilot_and_fails_its_unit(
    pilots: troy.PilotJobService, units: troy.WorkUnitService, tmp_path: Path
) -> None:
    units.add(pilots)
    pilot = two_slot_pilot(pilots, tmp_path, wall_time_limit=0.02)  # 1.2 s
    unit = units.submit({"executable": "/bin/sleep", "arguments": ["60"]})
    assert unit.wait(timeout=30) == State.Failed
    assert "wall_time_limit" in unit.state_detail
    assert pilot.wait(timeout=10) == State.Done
    assert "wall_time_limit" in pilot.state_detail


def test_units_of_a_canceled_pilot_move_to_a_live_one(
    pilots: troy.PilotJobService, units: troy.WorkUnitService, tmp_path: Path
) -> None:
    units.add(pilots)
    first = local_pilot(pilots, tmp_path, slots=1)
    wait_until(lambda: first.state == State.Running, 30, "first pilot Running")
    blocker = units.submit({"executable": "/bin/sleep", "arguments": ["60"]})
    wait_until(lambda: blocker.state == State.Running, 30, "blocker Running")
    queued = units.submit({"executable": "/bin/true"})
    assert queued.pilot == first.id
    second = two_slot_pilot(pilots, tmp_path)
    first.cancel()
    assert blocker.wait(timeout=30) == State.Canceled
    assert queued.wait(timeout=30) == State.Done, queued.state_detail
    assert queued.pilot == second.id


def test_agent_that_dies_fails_the_pilot_with_its_stderr(
    pilots: troy.PilotJobService, tmp_path: Path
) -> None:
    pilot = local_pilot(pilots, tmp_path, slots=1)
    wait_until(lambda: pilot.state == State.Running, 30, "pilot Running")
    assert pilot.handle is not None
    import os
    import signal

    os.kill(pilot.handle["pid"], signal.SIGKILL)
    assert pilot.wait(timeout=10) == State.Failed
    assert "agent" in pilot.state_detail


def test_reinitialize_restarts_the_pilot_with_a_new_description(
    pilots: troy.PilotJobService, units: troy.WorkUnitService, tmp_path: Path
) -> None:
    units.add(pilots)
    pilot = local_pilot(pilots, tmp_path, slots=1)
    wait_until(lambda: pilot.state == State.Running and pilot.slots == 1, 30, "pilot Running")
    pilot.reinitialize({"number_of_processes": 2, "working_directory": str(tmp_path / "pilot-1")})
    wait_until(lambda: pilot.state == State.Running and pilot.slots == 2, 30, "pilot Running again")
    unit = units.submit({"executable": "/bin/true", "number_of_processes": 2})
    assert unit.wait(timeout=30) == State.Done


def test_default_coordination_and_directories_live_in_troy_home(troy_home: Path) -> None:
    with troy.PilotJobService() as pilots:
        pilot = pilots.create("fork://localhost", {"number_of_processes": 1})
        assert pilot.working_directory == str(troy_home / "pilots" / pilot.id)
        assert pilots.coordination == (troy_home / "coordination").as_uri()
        with troy.WorkUnitService() as units:
            units.add(pilots)
            unit = units.submit({"executable": "/bin/true"})
            assert unit.wait(timeout=30) == State.Done
        pilots.cancel()


def test_unknown_backend_names_group_and_installed(pilots: troy.PilotJobService) -> None:
    with pytest.raises(troy.NoSuchPlugin) as error:
        pilots.create("fork://localhost", {}, pj_type="nosuch")
    assert "troy.backends" in str(error.value) and "local" in str(error.value)
    with pytest.raises(troy.NoSuchPlugin, match="gopher"):
        pilots.create("gopher://somewhere", {})
    assert pilots.list() == []


def test_elapsed_time_is_sane(pilots: troy.PilotJobService, tmp_path: Path) -> None:
    started = time.time()
    pilot = two_slot_pilot(pilots, tmp_path)
    wait_until(lambda: pilot.state == State.Running, 30, "pilot Running")
    running_at = pilot.timestamp(State.Running)
    assert running_at is not None and started <= running_at <= time.time()


def test_units_on_a_removed_service_are_still_watched(
    pilots: troy.PilotJobService, units: troy.WorkUnitService, tmp_path: Path
) -> None:
    units.add(pilots)
    pilot = local_pilot(pilots, tmp_path, slots=1)
    blocker = units.submit({"executable": "/bin/sleep", "arguments": ["60"]})
    queued = units.submit({"executable": "/bin/true"})
    wait_until(lambda: blocker.state == State.Running, 30, "blocker Running")
    units.remove(pilots)
    assert units.list_pilot_services() == []
    pilot.cancel()
    assert blocker.wait(timeout=30) == State.Canceled
    assert queued.wait(timeout=30) == State.Canceled
    assert "no other pilot is live" in queued.state_detail


def test_reinitialize_cancels_running_units_with_the_reason(
    pilots: troy.PilotJobService, units: troy.WorkUnitService, tmp_path: Path
) -> None:
    units.add(pilots)
    pilot = local_pilot(pilots, tmp_path, slots=1)
    states: list[object] = []
    pilot.set_callback("state", lambda obj, member, value: states.append(value))
    running = units.submit({"executable": "/bin/sleep", "arguments": ["60"]})
    wait_until(lambda: running.state == State.Running, 30, "unit Running")
    queued = units.submit({"executable": "/bin/true"})  # waits behind it, on this pilot
    pilot.reinitialize({"number_of_processes": 1, "working_directory": str(tmp_path / "pilot-1")})
    assert running.wait(timeout=30) == State.Canceled
    assert running.state_detail == "pilot reinitialized"
    assert queued.wait(timeout=30) == State.Done  # it stayed queued on the pilot
    assert queued.pilot == pilot.id
    wait_until(lambda: pilot.state == State.Running, 30, "pilot Running again")
    assert pilot.attempt == 1
    assert State.Canceled not in states, states
    assert states[-3:] == [State.New, State.Pending, State.Running], states
    after = units.submit({"executable": "/bin/true"})
    assert after.wait(timeout=30) == State.Done


def test_reconnected_pilot_service_delivers_final_states(
    pilots: troy.PilotJobService, tmp_path: Path, coordination_url: str
) -> None:
    pilot = local_pilot(pilots, tmp_path, slots=1)
    wait_until(lambda: pilot.state == State.Running, 30, "pilot Running")
    pilot.cancel()
    for _ in range(5):  # the monitor of a new connection must not race its own start
        with troy.PilotJobService(id=pilots.id, coordination=coordination_url) as again:
            seen = again.get_pilot(pilot.id)
            assert seen.wait(timeout=10) == State.Canceled


def test_pilot_executable_wraps_the_agent(
    pilots: troy.PilotJobService, units: troy.WorkUnitService, tmp_path: Path
) -> None:
    units.add(pilots)
    local_pilot(pilots, tmp_path, executable="nice", arguments=["-n", "7"])
    unit = units.submit({"executable": "/bin/sh", "arguments": ["-c", "nice"], "output": "o"})
    assert unit.wait(timeout=30) == State.Done
    assert unit.sandbox is not None
    assert Path(unit.sandbox, "o").read_text().strip() == "7"


def test_pilot_wrapper_that_cannot_start_is_a_backend_error(
    pilots: troy.PilotJobService, tmp_path: Path
) -> None:
    with pytest.raises(troy.BackendError, match="/no/such/wrapper"):
        local_pilot(pilots, tmp_path, executable="/no/such/wrapper")
    (failed,) = pilots.list()
    assert failed.state == State.Failed and "/no/such/wrapper" in failed.state_detail


def test_unit_cut_off_by_wall_time_runs_again_on_another_pilot(
    pilots: troy.PilotJobService, units: troy.WorkUnitService, tmp_path: Path
) -> None:
    units.add(pilots)
    short = local_pilot(pilots, tmp_path, slots=1, wall_time_limit=0.03)  # 1.8 s
    wait_until(lambda: short.state == State.Running, 30, "short pilot Running")
    unit = units.submit({"executable": "/bin/sleep", "arguments": ["3"]})
    wait_until(lambda: unit.state == State.Running, 30, "unit Running")
    assert unit.pilot == short.id
    long = local_pilot(pilots, tmp_path, slots=2)
    assert unit.wait(timeout=60) == State.Done, unit.state_detail
    assert short.state == State.Done
    assert unit.pilot == long.id
    assert [(t["kind"], "wall_time_limit" in t["why"]) for t in unit.tries] == [("lost", True)]
