"""Processes on this host, told apart from a later process that reuses their pid."""

from __future__ import annotations

from pathlib import Path


def start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), or None if it is gone.

    A pid is reused after its process ends; the pair (pid, start time) is not.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None  # exited, not yet reaped by its parent
    return fields[19]


def is_alive(pid: int, started: str | None) -> bool:
    """Whether the process ``pid`` that started at ``started`` still runs."""
    now = start_time(pid)
    return now is not None and (started is None or now == started)
