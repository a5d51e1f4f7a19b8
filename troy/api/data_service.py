"""PilotDataService: creates Pilot-Data (stores) and the data units in them."""

from __future__ import annotations

from typing import Any

from troy.api.data_objects import DataUnit, PilotData
from troy.api.services import _Service
from troy.core.data_manager import DataManager
from troy.model.data_description import DataUnitDescription, PilotDataDescription
from troy.model.errors import BadDescription
from troy.model.states import State


class PilotDataService(_Service[DataManager[PilotData, DataUnit]]):
    """Creates and lists Pilot-Data; ``PilotDataService(id=...)`` reconnects.

    ``coordination`` defaults to ``$TROY_COORDINATION``, else a file store in
    the troy home; agents resolve data units through it, so it must be the
    coordination the pilots that read them use.
    """

    def __init__(self, id: str | None = None, coordination: str | None = None) -> None:
        self._manager = DataManager(id, coordination, PilotData, DataUnit)

    @property
    def state(self) -> State:
        """Running while it has a Pilot-Data in use, else New (none yet) or Canceled."""
        pilots = self._manager.pilots()
        if any(not pilot.state.is_final for pilot in pilots):
            return State.Running
        return State.Canceled if pilots else State.New

    def create(self, description: PilotDataDescription | dict[str, Any]) -> PilotData:
        """A new Pilot-Data (a store at the description's ``service_url``)."""
        return self._manager.create(description)

    def create_pilot(
        self, pilot_data_description: PilotDataDescription | dict[str, Any]
    ) -> PilotData:
        """BigJob's name for ``create``."""
        return self._manager.create(pilot_data_description)

    def list_pilots(self) -> list[PilotData]:
        return self._manager.pilots()

    def get_pilot(self, pilot_data_id: str) -> PilotData:
        return self._manager.get(pilot_data_id)

    def submit_data_unit(
        self, data_unit_description: DataUnitDescription | dict[str, Any]
    ) -> DataUnit:
        """A data unit in the first usable Pilot-Data whose labels match the description's."""
        description = DataUnitDescription(data_unit_description)
        usable = [pilot for pilot in self._manager.pilots() if not pilot.state.is_final]
        if not usable:
            raise BadDescription("pilot_data", f"Pilot-Data service {self.id} has no usable store")
        return self._manager.submit(choose_pilot_data(usable, description), description)

    def submit_data_unit_to(
        self, pilot_data: PilotData, data_unit_description: DataUnitDescription | dict[str, Any]
    ) -> DataUnit:
        """A data unit in this service's ``pilot_data``."""
        return self._manager.submit(pilot_data, data_unit_description)

    def list_data_units(self) -> list[DataUnit]:
        return self._manager.units()

    def cancel(self) -> None:
        """Stop using every Pilot-Data of the service; the files stay in the stores."""
        for pilot in self._manager.pilots():
            pilot.cancel()

    def wait(self, timeout: float | None = None) -> None:
        """Pilot-Data are usable once made: nothing to wait for."""


def choose_pilot_data(usable: list[PilotData], description: DataUnitDescription) -> PilotData:
    """Where a data unit goes: a Pilot-Data with its machine label, else its datacenter
    label, else the first usable one."""
    machine = description.affinity_machine_label
    datacenter = description.affinity_datacenter_label
    for pilot in usable:
        if machine and pilot.affinity_machine_label == machine:
            return pilot
    for pilot in usable:
        if datacenter and pilot.affinity_datacenter_label == datacenter:
            return pilot
    return usable[0]
