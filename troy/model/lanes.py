"""Rows of a Gantt chart: which slots of a pilot each run of a unit took.

The result files record a unit's pilot and cores, not its slots, so the rows
are assigned afterwards: greedily in order of start, a run of k cores takes the
k lowest rows free over its whole run (a row is free again at the instant its
run ends).  Rows never overlap.  When the recorded runs overlap more than the
pilot's slots, rows are added beyond them rather than drawn over.

Plain values in, plain values out, so the research figures (troy.sim.figure_data)
and a recorded service's timeline (troy.core.timeline, whose rows are the
``slot`` of `troy report`'s export) number slots alike.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

#: A run: (start, end, cores).
Run = tuple[float, float, int]


def assign_rows(runs: Sequence[Run], slots: int = 0) -> tuple[list[tuple[int, ...]], int]:
    """The rows each run takes (in the order of ``runs``, each sorted) and the rows used.

    Runs are placed in order of start; runs starting at the same time keep the
    order they have in ``runs``.  ``slots`` is the pilot's slot count (0 when it
    is unknown); the rows used are at least ``slots``, more when the runs
    overlap more than that.  An end before its start counts as the start; a
    run of fewer than one core takes one row.
    """
    order = sorted(range(len(runs)), key=lambda index: runs[index][0])
    free = list(range(slots))  # a heap: the lowest free row first
    busy: list[tuple[float, int, tuple[int, ...]]] = []  # (end, index, rows) of runs holding rows
    rows = slots
    taken_by: list[tuple[int, ...]] = [()] * len(runs)
    for index in order:
        start, end, cores = runs[index]
        while busy and busy[0][0] <= start:
            for row in heapq.heappop(busy)[2]:
                heapq.heappush(free, row)
        need = max(cores, 1)
        taken = [heapq.heappop(free) for _ in range(min(need, len(free)))]
        while len(taken) < need:  # more overlap than rows: add one
            taken.append(rows)
            rows += 1
        taken_by[index] = tuple(sorted(taken))
        heapq.heappush(busy, (max(end, start), index, taken_by[index]))
    return taken_by, rows
