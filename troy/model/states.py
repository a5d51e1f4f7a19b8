"""States of pilots and work units, and the TROY pilot-job type constants."""

from __future__ import annotations

import enum


class State(enum.StrEnum):
    """Life-cycle state of a pilot or a work unit; BigJob's strings.

    ``State.Done == "Done"`` and ``str(State.Done) == "Done"``.
    """

    Unknown = "Unknown"
    New = "New"
    Pending = "Pending"
    Running = "Running"
    Done = "Done"
    Failed = "Failed"
    Canceled = "Canceled"

    @property
    def is_final(self) -> bool:
        """True for Done, Failed and Canceled: nothing follows them."""
        return self in FINAL_STATES


FINAL_STATES = frozenset({State.Done, State.Failed, State.Canceled})

#: Order in which states may follow one another within one attempt.
STATE_RANK: dict[State, int] = {
    State.Unknown: -1,
    State.New: 0,
    State.Pending: 1,
    State.Running: 2,
    State.Done: 3,
    State.Failed: 3,
    State.Canceled: 3,
}


class PILOTJOB_TYPE(enum.IntEnum):
    """The TROY pilot-job types; ``pj_type`` may also be a backend plugin name."""

    UNKNOWN = 0
    BIGJOB = 1
    DIANE = 2
    CONDOR = 3
    LOCAL = 4


#: Backend plugin that implements each TROY type (UNKNOWN: choose by URL scheme).
PILOTJOB_TYPE_PLUGIN: dict[PILOTJOB_TYPE, str | None] = {
    PILOTJOB_TYPE.UNKNOWN: None,
    PILOTJOB_TYPE.BIGJOB: "saga",
    PILOTJOB_TYPE.DIANE: "diane",
    PILOTJOB_TYPE.CONDOR: "condor",
    PILOTJOB_TYPE.LOCAL: "local",
}
