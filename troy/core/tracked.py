"""What a manager needs of the pilot and unit objects it keeps current.

The objects themselves are the user-facing `troy.PilotJob` and `troy.WorkUnit`
(troy/api/objects.py).  Core never imports them: a service hands its manager
a factory (the class), and the manager sees the objects through these
Protocols.  The manager writes their public fields (state, history, pilot,
exit code, ...) and calls back into them only through the methods below.
"""

from __future__ import annotations

from typing import Any, Protocol

from troy.model.description import PilotJobDescription, WorkUnitDescription
from troy.model.states import State


class Tracked(Protocol):
    """A pilot or unit: state, detail, history, attempt, and how its changes are delivered."""

    id: str
    state: State
    state_detail: str
    #: (state, epoch seconds) for every transition, in order.
    history: list[tuple[State, float]]
    attempt: int

    def _fire(self, member: str, value: Any) -> None:
        """Run the callbacks set on ``member`` (in the delivering thread)."""

    def _settle(self) -> bool:
        """Mark the final state delivered (wait() returns); False if it already was."""

    def _unsettle(self) -> None:
        """Not final any more (a reinitialized pilot): wait() blocks again."""

    def _is_settled(self) -> bool:
        """True once the final state has been delivered to callbacks."""


class TrackedPilot(Tracked, Protocol):
    """A pilot as its manager keeps it."""

    service_id: str
    rm: str
    description: PilotJobDescription
    pj_type: str
    working_directory: str
    context: Any
    handle: dict[str, Any] | None
    #: Slots the agent runs units in (known once it is Running, or from the description).
    slots: int | None
    #: True from the moment cancel() starts: no more units are placed on it.
    canceling: bool
    heartbeat_timeout: float
    #: The coordination queue its agent claims units from.
    queue: str


class TrackedUnit(Tracked, Protocol):
    """A work unit as its manager keeps it."""

    service_id: str
    description: WorkUnitDescription
    exit_code: int | None
    pilot: str | None
    sandbox: str | None
    tries: list[dict[str, Any]]
    transfers: list[dict[str, Any]]


#: (object, member, value, epoch seconds): one change for callbacks and hooks.
Change = tuple[Tracked, str, Any, float]
