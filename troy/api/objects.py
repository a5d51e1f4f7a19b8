"""Pilots and work units as the application sees them.

Their fields are kept current by the manager that owns them (a pilot-job or
work-unit service); methods delegate to it.  Both share the state machinery:
state, state_detail, per-transition timestamps, callbacks and waiting.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from troy.api.callbacks import Callback, CallbackFunction, CallbackRegistry
from troy.core.pilot_manager import PilotManager
from troy.core.unit_manager import UnitManager
from troy.model import protocol
from troy.model.description import PilotJobDescription, WorkUnitDescription
from troy.model.errors import Timeout
from troy.model.states import State


class _Stateful:
    """State, detail, history and callbacks of a pilot or unit."""

    __slots__ = (
        "_callbacks",
        "_settled",
        "attempt",
        "history",
        "id",
        "state",
        "state_detail",
    )

    def __init__(self, object_id: str) -> None:
        self.id = object_id
        self.state: State = State.New
        self.state_detail: str = ""
        #: (state, epoch seconds) for every transition, in order.
        self.history: list[tuple[State, float]] = []
        self.attempt = 0
        self._callbacks: CallbackRegistry | None = None
        #: Set once the final state has been delivered to callbacks (wait() returns then).
        self._settled = False

    def set_callback(self, member: str, cb: Callback | CallbackFunction) -> None:
        """Call ``cb(obj, member, value)`` on each later change of ``member``.

        ``member`` is "state" or "state_detail".  Return exactly False from the
        callback to remove it.
        """
        if self._callbacks is None:
            self._callbacks = CallbackRegistry()
        self._callbacks.add(member, cb)

    def unset_callback(self, member: str) -> None:
        """Remove every callback on ``member``."""
        if self._callbacks is None:
            CallbackRegistry.check_member(member)
            return
        self._callbacks.remove(member)

    # -- called by the managing service (troy.core.tracked.Tracked) -------------------
    def _fire(self, member: str, value: Any) -> None:
        if self._callbacks:
            self._callbacks.fire(self, member, value)

    def _settle(self) -> bool:
        if self._settled:
            return False
        self._settled = True
        return True

    def _unsettle(self) -> None:
        self._settled = False

    def _is_settled(self) -> bool:
        return self._settled

    def timestamp(self, state: State | str) -> float | None:
        """When the object (last) entered ``state``, or None."""
        for entered, when in reversed(self.history):
            if entered == state:
                return when
        return None

    def _wait(self, condition: threading.Condition, timeout: float | None) -> State:
        deadline = None if timeout is None else time.monotonic() + timeout
        with condition:
            while not self._settled:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise Timeout(f"{self.id} still {self.state} after waiting {timeout:g} s")
                condition.wait(remaining if remaining is not None else 0.5)
        return self.state

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} {self.state}>"


class PilotJob(_Stateful):
    """One pilot: a container job whose agent runs work units."""

    __slots__ = (
        "_manager",
        "canceling",
        "context",
        "description",
        "handle",
        "heartbeat_timeout",
        "pj_type",
        "queue",
        "rm",
        "service_id",
        "slots",
        "working_directory",
    )

    def __init__(
        self,
        manager: PilotManager[PilotJob],
        pilot_id: str,
        rm: str,
        description: PilotJobDescription,
        pj_type: str,
        working_directory: str,
    ) -> None:
        super().__init__(pilot_id)
        self._manager = manager
        self.service_id = manager.service_id
        self.rm = rm
        self.description = description
        self.pj_type = pj_type
        self.working_directory = working_directory
        self.context: Any = None
        self.handle: dict[str, Any] | None = None
        #: Slots the agent runs units in (known once it is Running, or from the description).
        self.slots: int | None = description.number_of_processes
        #: True from the moment cancel() starts: no more units are placed on it.
        self.canceling = False
        #: Seconds without a heartbeat after which its agent counts as lost.
        self.heartbeat_timeout = 20.0
        #: The coordination queue its agent claims units from: its own, or (late
        #: binding, e.g. the diane backend) one its pilot-job service's pilots share.
        self.queue = protocol.pilot_key(pilot_id)

    def cancel(self) -> None:
        """Stop the pilot: its running units end Canceled; waits until it has stopped."""
        self._manager.cancel_pilot(self)

    def reinitialize(self, pilotjob_desc: PilotJobDescription | dict[str, Any]) -> None:
        """Restart the pilot with a new description; queued units stay queued on it."""
        self._manager.reinitialize(self, pilotjob_desc)

    def wait(self, timeout: float | None = None) -> State:
        """Block until the pilot is Done, Failed or Canceled; Timeout if it is not in time."""
        return self._wait(self._manager.settled, timeout)


class WorkUnit(_Stateful):
    """One task submitted to a work-unit service."""

    __slots__ = (
        "_manager",
        "_transfers",
        "_tries",
        "description",
        "exit_code",
        "pilot",
        "sandbox",
        "service_id",
    )

    def __init__(
        self, manager: UnitManager[WorkUnit], unit_id: str, description: WorkUnitDescription
    ) -> None:
        super().__init__(unit_id)
        self._manager = manager
        self.service_id = manager.service_id
        self.description = description
        self.exit_code: int | None = None
        #: Id of the pilot it is placed on / ran on.
        self.pilot: str | None = None
        #: Directory it ran in.
        self.sandbox: str | None = None
        # Most units never have either: None until set (read as []) saves two lists a unit.
        self._tries: list[dict[str, Any]] | None = None
        self._transfers: list[dict[str, Any]] | None = None

    @property
    def tries(self) -> list[dict[str, Any]]:
        """Earlier attempts that failed or were lost: {"a", "kind", "why"} each."""
        return [] if self._tries is None else self._tries

    @tries.setter
    def tries(self, value: list[dict[str, Any]]) -> None:
        self._tries = value

    @property
    def transfers(self) -> list[dict[str, Any]]:
        """Its staging of input_data/output_data: {"dir": "in"|"out", "du", "pd", "files",
        "bytes", "seconds", "local"} each (see troy.agent.staging)."""
        return [] if self._transfers is None else self._transfers

    @transfers.setter
    def transfers(self, value: list[dict[str, Any]]) -> None:
        self._transfers = value

    def cancel(self) -> None:
        """Cancel the unit: withdrawn if still queued, its process group killed if running."""
        self._manager.cancel_units([self])

    def wait(self, timeout: float | None = None) -> State:
        """Block until the unit is Done, Failed or Canceled; Timeout if it is not in time."""
        return self._wait(self._manager.settled, timeout)
