"""Make the figures of docs/operating.md ("Plots and exports") from a real small run.

    python scripts/report_figures.py                 # writes docs/images/report-*.png
    python scripts/report_figures.py --out DIR       # elsewhere (the test writes into tmp)

Two work-unit services run the same twelve units (sleeps of 0.2 to 1.2 s,
one that fails, one that fails once and is retried) on two local pilots of
two slots each: the first with ``round_robin``, the second with
``shortest_first``.  Then, as a user would: ``troy report FIRST --csv --json``
(its Gantt chart, utilisation and wait-time CDF) and ``troy report FIRST
SECOND`` (the comparison).  The PNG files are copied to ``--out`` under
stable names; the reports' own files stay in ``--work`` (a temporary
directory unless given).  Prints what ``troy report`` printed, then one
``RESULT {...}`` line naming the services and the files written.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from troy import PilotJobService, WorkUnitService
from troy.cli import main as troy_main

ROOT = Path(__file__).resolve().parents[1]
#: The docs' file names, by the file `troy report` wrote ({label} is the run's label).
FIGURES = {
    "gantt-round_robin-real-0.png": "report-gantt.png",
    "utilisation-round_robin-real-0.png": "report-utilisation.png",
    "wait-cdf.png": "report-wait-cdf.png",
}
COMPARISON = "report-comparison.png"


def units(counter: Path) -> list[dict[str, object]]:
    """Twelve units: ten sleeps, one that fails, one that fails once and then succeeds."""
    sleeps = [0.2, 1.2, 0.4, 0.8, 0.3, 1.0, 0.5, 0.6, 0.2, 0.9]
    described: list[dict[str, object]] = [
        {"executable": "/bin/sleep", "arguments": [str(s)], "name": f"sleep-{s}"} for s in sleeps
    ]
    described.append(
        {"executable": "/bin/sh", "arguments": ["-c", "sleep 0.3; exit 3"], "name": "fails"}
    )
    script = f"echo run >> {counter}; sleep 0.4; [ $(wc -l < {counter}) -ge 2 ] || exit 3"
    described.append(
        {"executable": "/bin/sh", "arguments": ["-c", script], "name": "retried", "retries": 1}
    )
    return described


def run(coordination: str, scheduler: str, pilots: PilotJobService, counter: Path) -> str:
    """Run the units with ``scheduler`` on ``pilots``; the work-unit service's id."""
    with WorkUnitService(coordination=coordination, scheduler=scheduler) as service:
        service.add(pilots)
        service.submit(units(counter))
        service.wait(timeout=120)
        return service.id


def report(args: list[str]) -> str:
    """`troy report ARGS`; what it printed (it must succeed)."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = troy_main(["report", *args])
    if code != 0:
        raise SystemExit(f"troy report {' '.join(args)} failed ({code}):\n{printed.getvalue()}")
    return printed.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "images"), help="where the PNGs go")
    parser.add_argument("--work", help="directory for the run and the reports (default: a temp)")
    args = parser.parse_args(argv)
    work = Path(args.work or tempfile.mkdtemp(prefix="troy-report-figures-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TROY_HOME", str(work / "home"))
    coordination = (work / "coordination").as_uri()
    with PilotJobService(coordination=coordination) as pilots:
        for _ in range(2):
            pilots.create(
                "fork://localhost",
                {"number_of_processes": 2, "working_directory": str(work / "pilots")},
            )
        try:
            first = run(coordination, "round_robin", pilots, work / "first-runs")
            second = run(coordination, "shortest_first", pilots, work / "second-runs")
        finally:
            pilots.cancel()
    one, both = work / "one", work / "both"
    common = ["--coordination", coordination]
    printed = report([first, *common, "--output", str(one), "--csv", str(work / "units.csv"),
                      "--json", str(work / "units.json")])  # fmt: skip
    printed += report([first, second, *common, "--output", str(both)])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, target in FIGURES.items():
        shutil.copyfile(one / name, out / target)
        written.append(str(out / target))
    shutil.copyfile(both / "comparison.png", out / COMPARISON)
    written.append(str(out / COMPARISON))
    print(printed, end="")
    result = {"services": [first, second], "work": str(work), "figures": written}
    print("RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
