"""The services an application talks to: PilotJobService and WorkUnitService."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Generic, Self, TypeVar, overload

from troy.api.data_objects import DataUnit, PilotData
from troy.api.objects import PilotJob, WorkUnit
from troy.core.data_manager import DataManager
from troy.core.pilot_manager import PilotManager
from troy.core.unit_manager import UnitManager
from troy.core.unit_rows import unit_rows
from troy.core.views import service_view
from troy.model.description import PilotJobDescription, WorkUnitDescription
from troy.model.errors import BadDescription
from troy.model.states import State


def _overall_state(members: Sequence[PilotJob] | Sequence[WorkUnit]) -> State:
    if any(not member.state.is_final for member in members):
        return State.Running
    return State.Done if members else State.New


Manager = TypeVar(
    "Manager", PilotManager[PilotJob], UnitManager[WorkUnit], DataManager[PilotData, DataUnit]
)


class _Service(Generic[Manager]):
    """What both services share: an id, a coordination URL, closing."""

    _manager: Manager

    @property
    def id(self) -> str:
        return self._manager.service_id

    @property
    def coordination(self) -> str:
        """The coordination URL this service records into, as given (with any password).

        To show or record it, use ``troy.model.secrets.redact_url`` on it.
        """
        return self._manager.coordination_url

    def close(self) -> None:
        """Stop watching in this process; pilots and units keep running."""
        self._manager.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id}>"


class PilotJobService(_Service[PilotManager[PilotJob]]):
    """Creates and manages pilots (the Pilot-Manager of the P* model).

    ``PilotJobService()`` starts a new service; ``PilotJobService(id=...)``
    reconnects to an existing one (also from another process) with the same
    coordination URL.  ``coordination`` defaults to ``$TROY_COORDINATION``,
    else a file store in the troy home.
    """

    def __init__(self, id: str | None = None, coordination: str | None = None) -> None:
        self._manager = PilotManager(id, coordination, PilotJob)

    @property
    def state(self) -> State:
        """New without pilots, Running while any pilot is not final, then Done."""
        return _overall_state(self._manager.pilots())

    def create(
        self,
        rm: str,
        pilotjob_desc: PilotJobDescription | dict[str, Any],
        pj_type: Any = None,
        context: Any = None,
    ) -> PilotJob:
        """Start a pilot on the resource ``rm`` (e.g. ``fork://localhost``).

        ``pj_type`` is a PILOTJOB_TYPE or a backend plugin name; when None, the
        backend is chosen from the scheme of ``rm``.  Raises BadDescription for a
        bad description, NoSuchPlugin for an unknown type or launcher, BackendError if the
        backend cannot launch it.
        """
        return self._manager.create(rm, pilotjob_desc, pj_type, context)

    def list(self) -> list[PilotJob]:
        """Every pilot of this service, with current states."""
        return self._manager.pilots()

    def get_pilot(self, pilot_id: str) -> PilotJob:
        """The pilot with that id; NoSuchObject if it is not in this service."""
        return self._manager.get(pilot_id)

    def cancel(self) -> None:
        """Cancel every pilot of this service (and so the units running on them)."""
        self._manager.cancel_all()

    def wait(self, timeout: float | None = None) -> None:
        """Block until every pilot is final."""
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        for pilot in self._manager.pilots():
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            pilot.wait(remaining)


class WorkUnitService(_Service[UnitManager[WorkUnit]]):
    """Where the application submits work units; places them on pilots with a scheduler.

    ``scheduler`` names the scheduler plugin (default ``round_robin``);
    ``scheduler_options`` are its options (see docs/scheduling.md), plus
    ``seed`` and ``on_error`` ("fail", the default: a scheduler error fails the
    units it was placing; "wait": they keep waiting).  A wrong option is a
    BadDescription naming it, and nothing is recorded.  ``WorkUnitService(id=...)``
    reconnects (also from a new process) with the scheduler and options recorded,
    and sees every unit of the service with its current state.

    One process owns a service and places its units.  A process that reconnects
    while another owns it *follows*: it sees every state, waits, gets callbacks,
    may submit (the owner places those units) and cancel, and takes the service
    over once the owner's lease lapses (the owner closed it, its process is gone,
    or it was silent for ``$TROY_LEASE_TIMEOUT`` s, default 15); with
    ``take_over=False`` it never does.  See docs/reliability.md.
    """

    def __init__(
        self,
        id: str | None = None,
        coordination: str | None = None,
        scheduler: str | None = None,
        scheduler_options: Mapping[str, Any] | None = None,
        take_over: bool = True,
    ) -> None:
        self._manager = UnitManager(
            id, coordination, scheduler, WorkUnit, PilotJob, scheduler_options, take_over
        )

    @property
    def owner(self) -> bool:
        """Whether this process owns the service: only the owner places its units."""
        return self._manager.owns

    @property
    def scheduler(self) -> str:
        """Name of the scheduler plugin that places this service's units."""
        return self._manager.scheduler_name

    @property
    def scheduler_options(self) -> dict[str, Any]:
        """The options its scheduler runs with, as given (seed and on_error included)."""
        return dict(self._manager.scheduler_options)

    @property
    def state(self) -> State:
        """New without units, Running while any unit is not final, then Done."""
        return _overall_state(self._manager.units())

    def add(self, pjs: PilotJobService | Sequence[PilotJobService]) -> None:
        """Let this service place units on the pilots of ``pjs`` (one or a list)."""
        for service in [pjs] if isinstance(pjs, PilotJobService) else pjs:
            self._manager.add(service._manager)

    def remove(self, pjs: PilotJobService | Sequence[PilotJobService]) -> None:
        """Stop placing units on the pilots of ``pjs``; it is not canceled."""
        for service in [pjs] if isinstance(pjs, PilotJobService) else pjs:
            self._manager.remove(service.id)

    def list_pilot_services(self) -> list[str]:
        """Ids of the pilot-job services attached."""
        return [manager.service_id for manager in self._manager.pilot_services()]

    def list_pilots(self) -> list[PilotJob]:
        """Every pilot this service can place units on."""
        return [p for m in self._manager.pilot_services() for p in m.pilots()]

    def records(self) -> list[dict[str, Any]]:
        """One plain dict per unit, in submission order, for pandas: ``pd.DataFrame(records)``.

        The rows `troy report SERVICE --csv FILE` writes, read from what the
        service recorded (troy.core.unit_rows): id, name, pilot, slot, host,
        cores, submit, start, end (epoch seconds), wait, run (seconds), state,
        exit_code, tries, bytes_in, bytes_out, bytes_moved, local; None where a
        value is not known (a unit that has not run has no start).  What each
        column holds: troy.model.unit_columns, docs/operating.md.
        """
        return unit_rows(service_view(self._manager.coordination, self.id))

    @overload
    def submit(self, wud: WorkUnitDescription | dict[str, Any]) -> WorkUnit: ...

    @overload
    def submit(self, wud: Sequence[WorkUnitDescription | dict[str, Any]]) -> list[WorkUnit]: ...

    def submit(self, wud: Any) -> WorkUnit | list[WorkUnit]:
        """Submit one unit description (returns a WorkUnit) or a list (one bulk submit).

        Descriptions are validated first; if any is bad, BadDescription names it
        and nothing at all is recorded.  A description with ``iterations`` (a
        sweep) becomes one unit per value: submit it in a list, which returns
        them all.  The same description object given many times in one list
        (``[d] * 100_000``) is copied once, and those units share the copy as
        their ``description``: read it, do not change it.
        """
        if not isinstance(wud, list | tuple) and WorkUnitDescription(wud).get("iterations"):
            raise BadDescription(
                "iterations",
                "a sweep makes many units: submit it in a list, submit([description]),"
                " which returns them all",
            )
        if isinstance(wud, list | tuple):
            return self._manager.submit(wud)
        return self._manager.submit([wud])[0]

    def list(self) -> list[WorkUnit]:
        """Every unit of this service, with current states."""
        return self._manager.units()

    def get_unit(self, unit_id: str) -> WorkUnit:
        """The unit with that id; NoSuchObject if it is not in this service."""
        return self._manager.get(unit_id)

    def cancel(self) -> None:
        """Cancel every unit that has not finished."""
        self._manager.cancel_all()

    def wait(self, timeout: float | None = None) -> None:
        """Block until every unit submitted so far is final; Timeout if not in time."""
        self._manager.wait(None, timeout)
