"""The benchmark stays runnable: a tiny run of every workload (its timings are not checked)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parents[2] / "bench" / "throughput.py"


def bench_result(script: str, *arguments: str) -> dict[str, Any]:
    """Run ``bench/<script>`` with ``arguments``; the figures of its ``RESULT`` line."""
    result = subprocess.run(
        [sys.executable, str(BENCH.with_name(script)), *arguments],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULT "))
    figures: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
    return figures


def test_throughput_benchmark_runs_every_workload(tmp_path: Path) -> None:
    figures = bench_result(
        "throughput.py", "-n", "40", "--n-sleep", "4", "--n-scale", "300",
        "--repeats", "1", "--samples", "2", "--idle", "0.05",
        "--coordination", (tmp_path / "coordination").as_uri(),
    )  # fmt: skip
    assert figures["w1"]["n"] == 40 and figures["w1"]["troy_per_s"]["median"] > 0
    assert figures["w1"]["threadpool_per_s"]["median"] > 0
    assert figures["w1"]["machine_per_s"]["median"] > 0 and figures["w1"]["ceiling"] == "c"
    assert figures["latency"]["samples"] == 2 and figures["latency"]["done_to_wait_ms"]["min"] > 0
    assert figures["w2"]["makespan_s"]["median"] >= figures["w2"]["ideal_s"]
    assert figures["startup"]["create_to_running_s"]["median"] > 0
    assert figures["w3"]["n"] == 300 and figures["w3"]["manager_rss_mb"]["median"] > 0


def test_binding_benchmark_runs_both_bindings() -> None:
    figures = bench_result("binding.py", "-n", "24", "--work", "1.2")
    for kind in ("early", "late"):
        assert sum(figures[kind]["units"].values()) == 24
        assert figures[kind]["makespan_s"] > 0
        assert all(0 < share <= 1.0 for share in figures[kind]["utilisation"].values())
    assert figures["early"]["units"] == {"fast": 12, "slow": 12}  # dealt at submit


def test_storage_benchmark_measures_before_and_after_compaction() -> None:
    figures = bench_result("storage.py", "-n", "30")["file"]
    assert figures["n"] == 30
    assert figures["bytes_per_unit_before"] > 0 and figures["bytes_per_unit_after"] > 0


def test_guard_cost_benchmark_runs_both_ways(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH.with_name("guard_cost.py")), "-n", "20", "--repeats", "1"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "TMPDIR": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(" this process")[0].strip() for line in lines] == [
        "without the guard",
        "with the guard",
    ]


def test_launch_cost_benchmark_compares_popen_and_posix_spawn() -> None:
    figures = bench_result("launch_cost.py", "-n", "20", "--rounds", "1")
    for way in ("popen", "spawn"):
        assert figures[way]["own_us"]["median"] > 0 and figures[way]["per_s"]["median"] > 0


def test_many_agents_benchmark_measures_idle_cpu_and_efficiency(tmp_path: Path) -> None:
    figures = bench_result(
        "many_agents.py", "--pilots", "2", "--slots", "2", "--rounds", "1", "--duration", "0.1",
        "--idle", "0.5", "--settle", "0", "--repeats", "1",
        "--coordination", (tmp_path / "coordination").as_uri(),
    )  # fmt: skip
    assert figures["pilots"] == 2 and figures["units"] == 4
    assert figures["idle_cpu_percent"]["median"] >= 0
    assert set(figures["idle_cpu_percent_by_kind"]) >= {"manager", "agent"}
    assert 0 < figures["efficiency"]["median"] <= 1
