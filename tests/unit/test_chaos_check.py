"""The fault-injection campaign's checker (bench/chaos_check.py) catches every kind of
violation, each in a synthetic history, and passes a clean one."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import chaos_check
from chaos_check import check, count


def line(ev: str, unit: str, index: int, pid: int, mono: float, host: str = "h1") -> str:
    return json.dumps(
        {"ev": ev, "unit": unit, "index": index, "pid": pid, "st": "7", "host": host,
         "mono": mono, "wall": 1000 + mono}
    )  # fmt: skip


def unit(uid: str, index: int, state: str = "Done", **extra: Any) -> dict[str, Any]:
    history = [["New", 1.0], ["Pending", 1.1], ["Running", 1.2]]
    if state in chaos_check.FINAL:
        history.append([state, 1.5])
    return {"id": uid, "index": index, "state": state, "attempt": 0, "tries": [],
            "history": history, **extra}  # fmt: skip


def events(uid: str, *states: tuple[str, int, float]) -> list[dict[str, Any]]:
    return [{"id": uid, "s": s, "a": a, "ts": ts} for s, a, ts in states]


def clean() -> dict[str, Any]:
    """Two units, each run once to its end and Done once."""
    return {
        "expected": [0, 1],
        "units": [unit("w.0", 0), unit("w.1", 1)],
        "events": events("w.0", ("Pending", 0, 1.1), ("Running", 0, 1.2), ("Done", 0, 1.5))
        + events("w.1", ("Pending", 0, 1.1), ("Done", 0, 1.5)),
        "log": [
            line("start", "w.0", 0, 100, 10.0),
            line("start", "w.1", 1, 101, 10.0),
            line("end", "w.0", 0, 100, 10.3),
            line("end", "w.1", 1, 101, 10.4),
        ],
        "procs": {"100:7": {"first": 10.0, "last": 10.3, "gone": 10.32}},
        "leftovers": [],
        "stuck": None,
    }


def kinds(history: dict[str, Any]) -> dict[str, int]:
    return count(check(history))


def test_a_clean_history_has_no_violation() -> None:
    assert check(clean()) == []


def test_a_unit_of_the_batch_file_without_a_record_is_missing() -> None:
    history = clean()
    history["expected"] = [0, 1, 2]
    assert kinds(history) == {"missing": 1}


def test_one_batch_entry_recorded_twice_is_a_duplicate() -> None:
    history = clean()
    history["units"].append(unit("w.2", 1))
    history["log"] += [line("start", "w.2", 1, 102, 11.0), line("end", "w.2", 1, 102, 11.2)]
    assert kinds(history) == {"duplicate": 1}


def test_a_unit_left_running_is_not_final() -> None:
    history = clean()
    history["units"][1] = unit("w.1", 1, state="Running")
    assert kinds(history) == {"not_final": 1}


def test_a_failed_unit_is_a_violation_unless_it_was_lost_max_losses_times() -> None:
    history = clean()
    history["units"][1] = unit("w.1", 1, state="Failed", tries=[{"a": 0, "kind": "lost"}])
    assert kinds(history) == {"not_done": 1}
    lost = [{"a": a, "kind": "lost", "why": "agent gone"} for a in range(chaos_check.MAX_LOSSES)]
    history["units"][1] = unit("w.1", 1, state="Failed", tries=lost)
    assert kinds(history) == {}


def test_a_canceled_unit_is_not_done() -> None:
    history = clean()
    history["units"][0] = unit("w.0", 0, state="Canceled")
    assert kinds(history) == {"not_done": 1}


def test_two_final_states_in_a_units_history_are_caught() -> None:
    history = clean()
    history["units"][0]["history"].append(["Failed", 2.0])
    assert kinds(history) == {"final_twice": 1}


def test_done_recorded_then_the_unit_placed_again_and_done_again_is_done_twice() -> None:
    history = clean()
    history["events"] += events("w.0", ("New", 1, 1.6), ("Running", 1, 1.7), ("Done", 1, 2.0))
    assert kinds(history) == {"done_twice": 1}


def test_a_late_report_of_an_old_attempt_is_stale_and_no_violation() -> None:
    """The agent was given up (New, attempt 1) before it reported attempt 0 Done."""
    history = clean()
    history["events"] = events(
        "w.0", ("Running", 0, 1.2), ("New", 1, 1.4), ("Done", 0, 1.5), ("Done", 1, 2.0)
    ) + events("w.1", ("Done", 0, 1.5))
    assert kinds(history) == {}


def test_failed_then_done_for_another_attempt_is_final_twice() -> None:
    history = clean()
    history["events"] = [e for e in history["events"] if e["id"] != "w.1"]
    history["events"] += events("w.1", ("Failed", 0, 1.4), ("New", 1, 1.6), ("Done", 1, 2.0))
    assert kinds(history) == {"final_twice": 1}


def test_done_without_any_copy_that_ran_to_its_end_is_caught() -> None:
    history = clean()
    history["log"] = [
        entry for entry in history["log"] if '"end"' not in entry or "w.1" not in entry
    ]
    assert kinds(history) == {"done_without_run": 1}


def test_two_copies_with_overlapping_start_and_end_lines_overlap() -> None:
    history = clean()
    history["log"] += [line("start", "w.0", 0, 200, 10.2), line("end", "w.0", 0, 200, 10.5)]
    assert kinds(history) == {"overlap": 1}


def test_copies_one_after_the_other_or_on_other_hosts_do_not_overlap() -> None:
    history = clean()
    history["log"] += [
        line("start", "w.0", 0, 200, 10.31), line("end", "w.0", 0, 200, 10.5),
        line("start", "w.0", 0, 201, 10.1, host="h2"), line("end", "w.0", 0, 201, 10.2, host="h2"),
    ]  # fmt: skip
    assert kinds(history) == {}


def test_a_killed_copy_runs_until_its_process_was_seen_gone() -> None:
    """Copy 300 has no end line; it was last seen at 10.6 and found gone at 10.62."""
    history = clean()
    history["log"].insert(0, line("start", "w.1", 1, 300, 9.0))
    history["procs"]["300:7"] = {"first": 9.0, "last": 10.6, "gone": 10.62}
    assert kinds(history) == {"overlap": 1}
    history["procs"]["300:7"] = {"first": 9.0, "last": 9.5, "gone": 9.52}
    assert kinds(history) == {}


def test_a_copy_that_never_went_away_overlaps_every_later_copy() -> None:
    history = clean()
    history["log"].insert(0, line("start", "w.1", 1, 300, 1.0))
    history["procs"]["300:7"] = {"first": 1.0, "last": 20.0, "gone": None}
    assert kinds(history) == {"overlap": 1}


def test_copies_of_two_records_of_one_batch_entry_overlap_too() -> None:
    history = clean()
    history["units"].append(unit("w.9", 1))
    history["log"] += [line("start", "w.9", 1, 400, 10.1), line("end", "w.9", 1, 400, 10.2)]
    assert kinds(history) == {"duplicate": 1, "overlap": 1}


def test_a_process_left_after_the_run_is_a_leftover() -> None:
    history = clean()
    history["leftovers"] = [{"pid": 4242, "cmd": "python -m troy.agent"}]
    assert kinds(history) == {"leftover": 1}


def test_a_run_that_did_not_end_is_stuck() -> None:
    history = clean()
    history["stuck"] = "the run did not end within 120 s"
    assert kinds(history) == {"stuck": 1}


def test_torn_lines_in_the_log_are_skipped() -> None:
    history = clean()
    history["log"].insert(2, '{"ev": "start", "unit": "w.0", "ind')
    assert kinds(history) == {}


@pytest.mark.parametrize("kind", chaos_check.KINDS)
def test_every_kind_of_violation_is_shown_caught_above(kind: str) -> None:
    """Each kind the checker reports has a test here that makes it appear."""
    source = Path(__file__).read_text()
    assert f'{{"{kind}": 1' in source or f'"{kind}": 1}}' in source, kind


def test_the_checker_does_not_change_the_history() -> None:
    history = clean()
    history["log"].insert(0, line("start", "w.1", 1, 300, 9.0))
    before = copy.deepcopy(history)
    check(history)
    assert history == before


def test_a_run_that_could_not_be_read_back_is_stuck_and_nothing_else() -> None:
    history = clean()
    history["units"] = None
    history["stuck"] = "cannot read the run back: Redis did not answer"
    assert kinds(history) == {"stuck": 1}


def test_a_trial_is_drawn_from_its_seed_alone() -> None:
    """`--trials 1 --seed S` repeats trial S of any longer campaign."""
    import chaos

    coordinations = list(chaos.COORDINATIONS)
    assert chaos.plan(41, coordinations, 16, True) == chaos.plan(41, coordinations, 16, True)
    assert chaos.plan(41, coordinations, 16, True) != chaos.plan(42, coordinations, 16, True)


def test_no_trial_plans_an_agent_fault_it_could_not_survive_or_a_fault_it_cannot_make() -> None:
    """A single pilot is never killed or stopped (the run would have none left), and
    without a tmpfs or Redis there are no disk or Redis faults."""
    import chaos

    for seed in range(300):
        trial = chaos.plan(seed, ["file", "zmq"], 10, False)
        kinds = {fault.kind for fault in trial.faults}
        assert not kinds & {"disk_full", "redis_kill", "redis_outage"}, seed
        if trial.pilots == 1:
            assert not kinds & {"agent_kill", "agent_stop"}, seed
        assert 1 <= len(trial.faults) <= 3 and len(trial.durations) == 10
