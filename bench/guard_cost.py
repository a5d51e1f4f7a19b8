"""CPU time per unit that the unit guard adds: the agent's side and the guard's own.

    python bench/guard_cost.py            # 2,000 units, 5 runs each way, alternating
    python bench/guard_cost.py -n 5000 --repeats 3

One loop starts ``/bin/true`` as the agent does (troy.agent.launcher.start) and
waits for it, N times, without and with the guard's calls (troy.agent.guard):
``started`` after the start, ``wait`` instead of ``Popen.wait``.  CPU time, not
wall time, so that other load on the machine matters less.  The guard's CPU is
read from /proc in clock ticks (10 ms), hence N in the thousands.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from troy.agent import guard
from troy.agent.launcher import Prepared, start

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def one_run(count: int, guarded: bool, base: Path) -> tuple[float, float]:
    """(µs of this process' CPU, µs of the guard's CPU) per unit."""
    sandbox = base / "sandbox"
    sandbox.mkdir(exist_ok=True)
    output = str(sandbox / "out")
    prepared = Prepared(["/bin/true"], str(sandbox), None, None, output, output)
    watcher = None
    guard_before = 0.0
    if guarded:
        watcher = guard.Guard(guard.registry_directory(base / "home"), "pilot-bench")
        watcher.start()
        time.sleep(0.2)  # let it start up: its start is not per-unit cost
        assert watcher.pid is not None
        guard_before = cpu_seconds(watcher.pid)
    before = time.process_time()
    for n in range(count):
        process = start(prepared)
        if watcher is not None:
            watcher.started(f"wu-{n}", 0, process.pid)
            watcher.wait(process)
        else:
            process.wait()
    mine = time.process_time() - before
    theirs = 0.0
    if watcher is not None and watcher.pid is not None:
        time.sleep(0.1)  # its last lines
        theirs = cpu_seconds(watcher.pid) - guard_before
        watcher.close(timeout=5)
    return mine / count * 1e6, theirs / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=2000, help="units per run")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    runs: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as directory:
        for _ in range(args.repeats):
            for guarded in (False, True):
                runs[guarded].append(one_run(args.n, guarded, Path(directory)))
    for guarded, label in ((False, "without the guard"), (True, "with the guard")):
        mine = [m for m, _ in runs[guarded]]
        theirs = [t for _, t in runs[guarded]]
        print(
            f"{label:18} this process {statistics.median(mine):6.1f} µs/unit"
            f" ({min(mine):.1f} - {max(mine):.1f}),"
            f" guard {statistics.median(theirs):5.1f} µs/unit"
            f" ({min(theirs):.1f} - {max(theirs):.1f})"
        )


if __name__ == "__main__":
    main()
