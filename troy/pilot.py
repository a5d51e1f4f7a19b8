"""BigJob's Pilot-API names over troy's machinery: ``from troy.pilot import ...``.

A BigJob program runs with its import line changed from ``from pilot import``
to ``from troy.pilot import``::

    pilot_compute_service = PilotComputeService(COORDINATION_URL)
    pilot_compute_service.create_pilot({"service_url": "fork://localhost", ...})
    compute_data_service = ComputeDataService()
    compute_data_service.add_pilot_compute_service(pilot_compute_service)
    compute_data_service.submit_compute_unit({"executable": "/bin/echo", ...})
    compute_data_service.wait()

PilotComputeService is a PilotJobService, PilotCompute a PilotJob, a
ComputeUnit a WorkUnit, ComputeDataService a WorkUnitService that also puts
data units into the Pilot-Data services added to it. Descriptions may be
dicts or description objects; ``service_url`` in a pilot description is the
resource URL, ``walltime`` its wall time (minutes).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from troy.api.data_objects import DataUnit, PilotData
from troy.api.data_service import PilotDataService as _PilotDataService
from troy.api.data_service import choose_pilot_data
from troy.api.objects import PilotJob, WorkUnit
from troy.api.services import PilotJobService, WorkUnitService
from troy.model.data_description import DataUnitDescription, PilotDataDescription
from troy.model.description import PilotJobDescription, WorkUnitDescription
from troy.model.errors import BadDescription, Timeout, TroyError
from troy.model.states import State

#: BigJob's compute unit description is troy's work unit description.
ComputeUnitDescription = WorkUnitDescription


class PilotComputeDescription(dict[str, Any]):
    """BigJob's pilot description: a dict with ``service_url`` and pilot attributes."""


def _plain(description: Any, what: str) -> dict[str, Any]:
    if isinstance(description, Mapping):
        return dict(description)
    if hasattr(description, "as_dict"):
        return dict(description.as_dict())
    raise BadDescription(what, f"expected a dict of attributes, got {type(description).__name__}")


class ComputeUnit:
    """A compute unit: a troy WorkUnit with BigJob's method names."""

    def __init__(self, unit: WorkUnit) -> None:
        self.unit = unit

    def get_id(self) -> str:
        return self.unit.id

    def get_state(self) -> State:
        return self.unit.state

    def get_details(self) -> dict[str, Any]:
        unit = self.unit
        return {
            "id": unit.id,
            "state": str(unit.state),
            "state_detail": unit.state_detail,
            "exit_code": unit.exit_code,
            "pilot": unit.pilot,
            "sandbox": unit.sandbox,
            "transfers": unit.transfers,
            "description": unit.description.as_dict(),
        }

    def wait(self, timeout: float | None = None) -> State:
        return self.unit.wait(timeout)

    def cancel(self) -> None:
        self.unit.cancel()

    def __getattr__(self, name: str) -> Any:  # state, sandbox, transfers, ...
        return getattr(self.unit, name)

    def __repr__(self) -> str:
        return f"<ComputeUnit {self.unit.id} {self.unit.state}>"


class PilotCompute:
    """A pilot: a troy PilotJob with BigJob's method names."""

    def __init__(self, pilot: PilotJob, service: PilotComputeService) -> None:
        self.pilot = pilot
        self._service = service
        self._units: WorkUnitService | None = None

    def get_id(self) -> str:
        return self.pilot.id

    def get_url(self) -> str:
        return self.pilot.id

    def get_state(self) -> State:
        return self.pilot.state

    def get_details(self) -> dict[str, Any]:
        pilot = self.pilot
        return {
            "id": pilot.id,
            "state": str(pilot.state),
            "state_detail": pilot.state_detail,
            "rm": pilot.rm,
            "slots": pilot.slots,
            "description": pilot.description.as_dict(),
        }

    def submit_compute_unit(self, compute_unit_description: Any) -> ComputeUnit:
        """Run a unit on this pilot (not placed elsewhere)."""
        if self._units is None:
            self._units = WorkUnitService(coordination=self._service.service.coordination)
            self._units._manager.placement.only_pilots = frozenset({self.pilot.id})
            self._units.add(self._service.service)
        return ComputeUnit(self._units.submit(_plain(compute_unit_description, "compute unit")))

    def list_compute_units(self) -> list[ComputeUnit]:
        return [ComputeUnit(unit) for unit in (self._units.list() if self._units else [])]

    def wait(self, timeout: float | None = None) -> State:
        """Wait for the units submitted to this pilot directly (BigJob), not for its end."""
        if self._units is not None:
            self._units.wait(timeout)
        return self.pilot.state

    def cancel(self) -> None:
        self.pilot.cancel()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pilot, name)

    def __repr__(self) -> str:
        return f"<PilotCompute {self.pilot.id} {self.pilot.state}>"


class PilotComputeService:
    """Creates pilots (BigJob's name for the pilot-job service)."""

    def __init__(self, coordination_url: str | None = None, pcs_id: str | None = None) -> None:
        self.service = PilotJobService(id=pcs_id, coordination=coordination_url)
        self._pilots: dict[str, PilotCompute] = {}

    @property
    def id(self) -> str:
        return self.service.id

    def get_id(self) -> str:
        return self.service.id

    def create_pilot(
        self, pilot_compute_description: Any = None, pj_type: Any = None, context: Any = None
    ) -> PilotCompute:
        """Start a pilot; the description's ``service_url`` says where."""
        description = _plain(pilot_compute_description or {}, "pilot_compute_description")
        rm = description.pop("service_url", None)
        if not rm:
            raise BadDescription(
                "service_url",
                "a pilot compute description needs a service_url, e.g. fork://localhost",
            )
        pilot = self.service.create(rm, PilotJobDescription(description), pj_type, context)
        compute = PilotCompute(pilot, self)
        self._pilots[pilot.id] = compute
        return compute

    def list_pilots(self) -> list[PilotCompute]:
        return [self._pilots.get(p.id) or PilotCompute(p, self) for p in self.service.list()]

    def get_state(self) -> State:
        return self.service.state

    def wait(self, timeout: float | None = None) -> None:
        self.service.wait(timeout)

    def cancel(self) -> None:
        """Cancel every pilot of the service."""
        self.service.cancel()

    def close(self) -> None:
        self.service.close()

    def __repr__(self) -> str:
        return f"<PilotComputeService {self.id}>"


class PilotDataService(_PilotDataService):
    """Creates Pilot-Data (BigJob's constructor: ``PilotDataService(coordination_url)``)."""

    def __init__(self, coordination_url: str | None = None, pds_id: str | None = None) -> None:
        super().__init__(id=pds_id, coordination=coordination_url)


class ComputeDataService:
    """Places compute units on the pilots and data units in the Pilot-Data added to it.

    Its coordination is that of the first PilotComputeService added (or
    ``coordination_url``). The default scheduler, ``affinity``, honours the
    units' affinity labels (BigJob's behaviour); ``data_aware`` also
    minimises the bytes staged.
    """

    def __init__(self, coordination_url: str | None = None, scheduler: str = "affinity") -> None:
        self._coordination = coordination_url
        self._scheduler = scheduler
        self._units: WorkUnitService | None = None
        self._compute: list[PilotComputeService] = []
        self._data: list[_PilotDataService] = []
        self._data_units: list[DataUnit] = []

    def _service(self, coordination: str | None = None) -> WorkUnitService:
        if self._units is None:
            self._units = WorkUnitService(
                coordination=self._coordination or coordination, scheduler=self._scheduler
            )
        return self._units

    def get_id(self) -> str:
        return self._service().id

    # -- services ------------------------------------------------------------------------
    def add_pilot_compute_service(self, pcs: PilotComputeService) -> None:
        self._service(pcs.service.coordination).add(pcs.service)
        self._compute.append(pcs)

    def remove_pilot_compute_service(self, pcs: PilotComputeService) -> None:
        if self._units is not None:
            self._units.remove(pcs.service)
        self._compute.remove(pcs)

    def add_pilot_data_service(self, pds: _PilotDataService) -> None:
        self._data.append(pds)

    def remove_pilot_data_service(self, pds: _PilotDataService) -> None:
        self._data.remove(pds)

    def list_pilot_compute(self) -> list[PilotCompute]:
        return [pilot for pcs in self._compute for pilot in pcs.list_pilots()]

    def list_pilot_data(self) -> list[PilotData]:
        return [pd for pds in self._data for pd in pds.list_pilots()]

    # -- units ---------------------------------------------------------------------------
    def submit_compute_unit(self, compute_unit_description: Any) -> ComputeUnit:
        description = _plain(compute_unit_description, "compute unit")
        return ComputeUnit(self._service().submit(description))

    def submit_data_unit(self, data_unit_description: Any) -> DataUnit:
        """Put a data unit into a Pilot-Data added here: labels first, else the first."""
        description = DataUnitDescription(_plain(data_unit_description, "data unit"))
        owners = {pd.id: pds for pds in self._data for pd in pds.list_pilots()}
        usable = [pd for pd in self.list_pilot_data() if not pd.state.is_final]
        if not usable:
            raise TroyError("add_pilot_data_service() first: no Pilot-Data to put a data unit in")
        chosen = choose_pilot_data(usable, description)
        unit = owners[chosen.id].submit_data_unit_to(chosen, description)
        self._data_units.append(unit)
        return unit

    def list_units(self) -> list[ComputeUnit]:
        return [ComputeUnit(unit) for unit in (self._units.list() if self._units else [])]

    def list_data_units(self) -> list[DataUnit]:
        return list(self._data_units)

    def get_state(self) -> State:
        return self._units.state if self._units else State.New

    def wait(self, timeout: float | None = None) -> None:
        """Block until every data unit is in place and every compute unit is final."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for unit in self._data_units:
            unit.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if self._units is not None:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            self._units.wait(remaining)

    def cancel(self) -> None:
        """Cancel the compute units not yet finished (pilots are canceled by their service)."""
        if self._units is not None:
            self._units.cancel()

    def close(self) -> None:
        if self._units is not None:
            self._units.close()

    def __repr__(self) -> str:
        return f"<ComputeDataService {self._units.id if self._units else '(no units yet)'}>"


__all__ = [
    "ComputeDataService",
    "ComputeUnit",
    "ComputeUnitDescription",
    "DataUnit",
    "DataUnitDescription",
    "PilotCompute",
    "PilotComputeDescription",
    "PilotComputeService",
    "PilotData",
    "PilotDataDescription",
    "PilotDataService",
    "State",
    "Timeout",
]
