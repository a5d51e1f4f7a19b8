"""The data manager: creates Pilot-Data and puts data units into their stores.

Everything is recorded in coordination (see troy.plugins.data_records), so a new process
reconnects to the service by id and agents resolve data units by URL.
Putting files is done in the caller's thread: when ``submit`` returns, the
data unit is Running (its files are in place) or Failed (and StoreError says
why).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from troy.core.service import ServiceManager
from troy.model import config, protocol, secrets
from troy.model.data_description import DataUnitDescription, PilotDataDescription, local_paths
from troy.model.errors import BadDescription, NoSuchObject, StoreError
from troy.model.states import State
from troy.plugins import data_records, registry
from troy.plugins.coordination.base import Coordination
from troy.plugins.options import url_options


class TrackedPilotData(Protocol):
    """What the data manager needs of a Pilot-Data object (troy.PilotData)."""

    id: str

    @property
    def state(self) -> State: ...


PD = TypeVar("PD", bound=TrackedPilotData)
DU = TypeVar("DU")


class DataManager(ServiceManager, Generic[PD, DU]):
    """The Pilot-Data and data units of one Pilot-Data service.

    ``new_pilot_data(manager, id, description)`` and ``new_data_unit(coordination,
    id)`` make the objects that stand for them (troy.PilotData, troy.DataUnit).
    """

    kind: ClassVar[str] = "pilotdata"
    id_prefix: ClassVar[str] = "pds"
    noun: ClassVar[str] = "Pilot-Data service"

    def __init__(
        self,
        service_id: str | None,
        coordination_url: str | None,
        new_pilot_data: Callable[[DataManager[PD, DU], str, PilotDataDescription], PD],
        new_data_unit: Callable[[Coordination, str], DU],
    ) -> None:
        super().__init__(service_id, coordination_url)
        self.new_pilot_data = new_pilot_data
        self.new_data_unit = new_data_unit
        self._pilots: dict[str, PD] = {}
        self._units: dict[str, DU] = {}
        self._cursor: Any = None
        self._load()

    def _load(self) -> None:
        """Pick up Pilot-Data and data units recorded by any process."""
        events, self._cursor = self.coordination.read(
            protocol.service_key(self.service_id), self._cursor
        )
        for item in events:
            kind, object_id = item.get("ev"), item.get("id")
            if kind == "pd" and object_id not in self._pilots:
                record = data_records.read_pilot_data(self.coordination, object_id)
                description = PilotDataDescription(record["description"])
                self._pilots[object_id] = self.new_pilot_data(self, object_id, description)
            elif kind == "du" and object_id not in self._units:
                self._units[object_id] = self.new_data_unit(self.coordination, object_id)

    # -- Pilot-Data ----------------------------------------------------------------------
    def create(self, description: PilotDataDescription | dict[str, Any]) -> PD:
        description = PilotDataDescription(description)
        description.validate()
        url = str(description.service_url)
        if secrets.split_url(url)[1]:  # the URL is recorded and shown: no secret in it
            raise BadDescription(
                "service_url",
                f"{secrets.redact_url(url)} holds a secret; give it as the store's option "
                "(or in the store's own credential chain: the environment, its files)",
            )
        # An unknown scheme or option fails here, before any record.
        registry.for_url("store", url).check_options(description.store_options(), url_options(url))
        pilot_data_id = config.new_id("pd")
        # Secret options stay in this process's memory (and reach agents in their
        # environment); the record says only which were withheld.
        public, withheld = data_records.split_description(description)
        data_records.keep_store_secrets(pilot_data_id, withheld)
        record: dict[str, Any] = {
            "id": pilot_data_id,
            "service": self.service_id,
            "url": url,
            "description": public,
            "created": time.time(),
        }
        if withheld:
            record["withheld"] = sorted(withheld)
        self.coordination.put_record(data_records.pilot_data_key(pilot_data_id), record)
        self.coordination.append(
            protocol.service_key(self.service_id), [{"ev": "pd", "id": pilot_data_id}]
        )
        pilot = self.new_pilot_data(self, pilot_data_id, description)
        with self.lock:
            self._pilots[pilot_data_id] = pilot
        return pilot

    def pilots(self) -> list[PD]:
        with self.lock:
            self._load()
            return list(self._pilots.values())

    def get(self, pilot_data_id: str) -> PD:
        with self.lock:
            self._load()
            try:
                return self._pilots[pilot_data_id]
            except KeyError:
                raise NoSuchObject(
                    f"no Pilot-Data '{pilot_data_id}' in service {self.service_id}"
                ) from None

    # -- data units ----------------------------------------------------------------------
    def units(self) -> list[DU]:
        with self.lock:
            self._load()
            return list(self._units.values())

    def submit(self, pilot: PD, description: DataUnitDescription | dict[str, Any]) -> DU:
        """Record a data unit in ``pilot`` and put its files there."""
        description = DataUnitDescription(description)
        paths = local_paths(description.file_urls or [])
        if pilot.state.is_final:
            raise BadDescription("pilot_data", f"Pilot-Data {pilot.id} is {pilot.state}")
        store = data_records.open_store(data_records.read_pilot_data(self.coordination, pilot.id))
        unit_id = config.new_id("du")
        key = data_records.data_unit_key(unit_id)
        self.coordination.put_record(
            key,
            {
                "id": unit_id,
                "service": self.service_id,
                "description": description.as_dict(),
                "created": time.time(),
            },
        )
        self.coordination.append(
            key,
            [
                data_records.event("replica", pd=pilot.id),
                data_records.event("state", s=str(State.Pending)),
            ],
        )
        self.coordination.append(
            protocol.service_key(self.service_id), [{"ev": "du", "id": unit_id}]
        )
        try:
            if paths:
                store.put(unit_id, paths)
        except StoreError as exc:
            self.coordination.append(
                key, [data_records.event("state", s=str(State.Failed), detail=str(exc))]
            )
            raise
        sizes = {os.path.basename(path): os.path.getsize(path) for path in paths}
        self.coordination.append(
            key,
            [
                data_records.event("files", pd=pilot.id, files=sizes),
                data_records.event("state", s=str(State.Running)),
            ],
        )
        unit = self.new_data_unit(self.coordination, unit_id)
        with self.lock:
            self._units[unit_id] = unit
        return unit
