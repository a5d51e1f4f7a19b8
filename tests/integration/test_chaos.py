"""The fault-injection campaign (bench/chaos.py), short and with a fixed seed: no violation.

Six trials, two per coordination (file, redis, zmq), whose schedules together
inject every kind of fault: agents killed and stopped, the `troy run` process
(and with it the zmq broker) killed, alone or with every agent, and stopped,
and resumed; a second `troy run --resume` beside the first; redis-server
killed and stopped; the troy home's disk full.  The long version is
``python bench/chaos.py --trials 200``; docs/reliability.md has its results.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from redis_fixtures import require_redis_server

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import chaos  # noqa: E402

SEED = 1325
TRIALS = 6
UNITS = 12


def test_the_fixed_seed_schedule_covers_every_kind_of_fault() -> None:
    planned = {
        fault.kind
        for number in range(TRIALS)
        for fault in chaos.plan(SEED + number, list(chaos.COORDINATIONS), UNITS, True).faults
    }
    assert planned == {
        "agent_kill", "agent_stop", "manager_kill", "manager_stop", "all_kill",
        "manager_twice", "redis_kill", "redis_outage", "disk_full",
    }  # fmt: skip


@pytest.mark.redis
@pytest.mark.timeout(400)
def test_a_short_campaign_finds_no_violation(tmp_path: Path) -> None:
    require_redis_server()
    result = subprocess.run(
        [
            sys.executable, str(BENCH / "chaos.py"), "--trials", str(TRIALS),
            "--seed", str(SEED), "--units", str(UNITS), "--workdir", str(tmp_path),
            "--trial-timeout", "60",
        ],
        capture_output=True, text=True, timeout=380,
    )  # fmt: skip
    report = result.stdout + result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("SUMMARY "))
    summary = json.loads(line.removeprefix("SUMMARY "))
    assert summary["trials"] == TRIALS, report
    assert sum(summary["faults"].values()) >= TRIALS, report  # every trial injected a fault
    assert summary["violations"] == {}, report
    assert result.returncode == 0, report
    assert "cannot mount a tmpfs" in report or summary["faults"].get("disk_full"), report
