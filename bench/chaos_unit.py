"""The work unit of bench/chaos.py: log a start line, sleep, log an end line.

    python -I -S chaos_unit.py LOG INDEX SECONDS

Each line is one ``write`` to a file opened with O_APPEND, so lines of
concurrent copies never mix.  The unit's id is its sandbox's name (troy runs
a unit in ``<pilot directory>/<unit id>``).  Only the standard library, so
``-S`` keeps its start fast.
"""

import json
import os
import socket
import sys
import time


def line(log: int, event: str, index: str, start_ticks: str) -> None:
    record = {
        "ev": event,
        "unit": os.path.basename(os.getcwd()),
        "index": int(index),
        "pid": os.getpid(),
        "st": start_ticks,
        "host": socket.gethostname(),
        "pilot": os.environ.get("TROY_PILOT_ID", ""),
        "mono": time.monotonic(),
        "wall": time.time(),
    }
    os.write(log, (json.dumps(record) + "\n").encode())


def main() -> None:
    path, index, seconds = sys.argv[1:4]
    with open("/proc/self/stat") as stat:
        start_ticks = stat.read().rpartition(")")[2].split()[19]
    log = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    line(log, "start", index, start_ticks)
    time.sleep(float(seconds))
    line(log, "end", index, start_ticks)


main()
