"""The columns of troy's per-unit tables: one name and one meaning each.

Two tables share them.  ``units.csv`` of the research tools (`troy simulate`,
`troy compare`, `troy report`; troy.sim.results) holds `RESEARCH_COLUMNS`,
with times in seconds from the run's start, so simulated and real runs read
alike.  The export of a real run (`troy report --csv/--json`,
`WorkUnitService.records()`; troy.core.unit_rows) holds `EXPORT_COLUMNS`,
with times in epoch seconds.  A column both have means the same in both.
"""

from __future__ import annotations

#: Every column, with what it holds.
COLUMNS: dict[str, str] = {
    "id": "the unit's id (troy compare --real: its workload id)",
    "name": "its description's name, '' without one (troy compare: its workload entry)",
    "scheduler": "the label of the strategy that placed it",
    "mode": "sim or real",
    "repetition": "which repetition of the run (0 first)",
    "pilot": "the pilot of its last run (or where it is placed); none if it never ran",
    "slot": "the lowest slot of its pilot its last run took, as the Gantt chart numbers them",
    "host": "the host its last run's agent ran on",
    "cores": "slots it takes",
    "submit": "when it was submitted",
    "start": "when its last run started (Running, after staging in); none if it never ran",
    "end": "when its last run ended (its final state); none while it runs",
    "wait": "seconds from submit to start",
    "run": "seconds from start to end",
    "state": "its state: Done, Failed or Canceled once final",
    "exit_code": "its process's exit code (none if it did not end by itself)",
    "tries": "runs before its last one (lost or failed and run again)",
    "bytes_in": "bytes its input data staged in (last run)",
    "bytes_out": "bytes its output data staged out (last run)",
    "bytes_moved": "bytes of its input that came from another machine",
    "local": "true if all its input was local to the pilot; none without input",
}

#: units.csv: the research tools' table, one row per unit of each run.
RESEARCH_COLUMNS = (
    *("id", "name", "scheduler", "mode", "repetition", "pilot", "cores"),
    *("submit", "start", "end", "wait", "run", "state", "tries", "bytes_in", "bytes_moved"),
)

#: A real run's export: `troy report --csv/--json`, `WorkUnitService.records()`.
EXPORT_COLUMNS = (
    *("id", "name", "pilot", "slot", "host", "cores", "submit", "start", "end", "wait", "run"),
    *("state", "exit_code", "tries", "bytes_in", "bytes_out", "bytes_moved", "local"),
)
