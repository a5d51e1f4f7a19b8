"""Pilot-Data and data units as the application sees them.

A PilotData is a physical store (a directory, an SSH host, an S3 bucket, an
iRODS collection); a DataUnit is a logical set of files with a copy in one or
more of them. Both are records in coordination, so a DataUnit's URL
(``get_url()``) reopens it in any process: ``DataUnit.open(url)``.

Data unit states: New (recorded), Pending (its files are being put), Running
(its files are in place: usable as input, open for more output), Failed (a put
failed, the reason in ``state_detail``), Canceled (given up; files stay).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from troy.core.data_manager import DataManager
from troy.model.data_description import PilotDataDescription, local_paths
from troy.model.errors import BadDescription, StoreError, Timeout
from troy.model.states import State
from troy.plugins import (
    data_records,
)
from troy.plugins.coordination.base import Coordination

#: Seconds between looks at a data unit's stream while waiting.
_WAIT_POLL = 0.05


class PilotData:
    """A store that holds data units (BigJob's Pilot-Data)."""

    def __init__(
        self,
        manager: DataManager[PilotData, DataUnit],
        pilot_data_id: str,
        description: PilotDataDescription,
    ) -> None:
        self._manager = manager
        self.id = pilot_data_id
        self.description = description
        self.state = State.Running
        self.state_detail = ""

    @property
    def url(self) -> str:
        """The store's URL (the description's ``service_url``)."""
        return str(self.description.service_url)

    @property
    def affinity_datacenter_label(self) -> str | None:
        return self.description.affinity_datacenter_label

    @property
    def affinity_machine_label(self) -> str | None:
        return self.description.affinity_machine_label

    def get_id(self) -> str:
        return self.id

    def get_url(self) -> str:
        return self.url

    def get_state(self) -> State:
        return self.state

    def submit_data_unit(self, data_unit_description: Any) -> DataUnit:
        """Make a data unit here from local files (BigJob's name)."""
        return self._manager.submit(self, data_unit_description)

    def list_data_units(self) -> list[DataUnit]:
        """The data units with a copy in this store (made through this service)."""
        return [unit for unit in self._manager.units() if self.id in unit.replicas]

    def cancel(self) -> None:
        """Stop using this store for new data units; files already put stay in it."""
        self.state = State.Canceled

    def wait(self, timeout: float | None = None) -> State:
        """A Pilot-Data is usable as soon as it is made: returns its state at once."""
        return self.state

    def __repr__(self) -> str:
        return f"<PilotData {self.id} {self.url} {self.state}>"


class DataUnit:
    """A logical set of files with a copy in one or more Pilot-Data."""

    def __init__(self, coordination: Coordination, unit_id: str) -> None:
        self._coordination = coordination
        self.id = unit_id
        self._view = data_records.read_data_unit(coordination, unit_id)

    @classmethod
    def open(cls, url: str) -> DataUnit:
        """The data unit a URL from ``get_url()`` names, from any process."""
        coordination_url, unit_id = data_records.split_data_unit_url(url)
        if coordination_url is None:
            raise BadDescription("data unit URL", f"{url!r} names no coordination (URL#id)")
        return cls(data_records.connect(coordination_url), unit_id)

    def _refresh(self) -> data_records.DataUnitView:
        return data_records.read_data_unit(self._coordination, self.id, self._view)

    # -- what it is ----------------------------------------------------------------------
    def get_url(self) -> str:
        """Its URL: give it to units' ``input_data``/``output_data`` or ``DataUnit.open``."""
        return data_records.data_unit_url(self._coordination.url, self.id)

    @property
    def url(self) -> str:
        return self.get_url()

    def get_id(self) -> str:
        return self.id

    @property
    def state(self) -> State:
        return self._refresh().state

    @property
    def state_detail(self) -> str:
        return self._refresh().detail

    def get_state(self) -> State:
        return self.state

    @property
    def replicas(self) -> list[str]:
        """Ids of the Pilot-Data holding a copy; the first is where it was made."""
        return list(self._refresh().replicas)

    @property
    def size(self) -> int:
        """Total bytes of its files."""
        return self._refresh().size

    def list_files(self) -> list[str]:
        """Names of its files, sorted."""
        return sorted(self._refresh().files)

    def wait(self, timeout: float | None = None) -> State:
        """Block until its files are in place (Running) or it failed or was canceled."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            state = self.state
            if state in (State.Running, State.Failed, State.Canceled, State.Done):
                return state
            if deadline is not None and time.monotonic() > deadline:
                raise Timeout(f"data unit {self.id} still {state} after {timeout:g} s")
            time.sleep(_WAIT_POLL)

    # -- its files -------------------------------------------------------------------------
    def _store(self, pilot_data_id: str | None = None) -> tuple[str, Any]:
        view = self._refresh()
        if not view.replicas:
            raise StoreError(f"data unit {self.id} has no copy in any Pilot-Data")
        chosen = pilot_data_id or view.replicas[0]
        record = data_records.read_pilot_data(self._coordination, chosen)
        return chosen, data_records.open_store(record)

    def export(
        self, directory: str | os.PathLike[str], patterns: Sequence[str] = ("*",)
    ) -> list[str]:
        """Copy its files (those matching any glob) into a local directory; their names."""
        target = Path(directory).expanduser().absolute()
        target.mkdir(parents=True, exist_ok=True)
        if not self._refresh().files:
            return []  # nothing was ever put (an empty unit may not exist in its store)
        _, store = self._store()
        names: list[str] = store.get(self.id, str(target), patterns)
        return names

    def add_files(self, file_urls: Sequence[str]) -> list[str]:
        """Put more local files into its first copy; their names."""
        paths = local_paths(file_urls)
        pilot_data_id, store = self._store()
        names: list[str] = store.put(self.id, paths)
        sizes = {os.path.basename(p): os.path.getsize(p) for p in paths}
        self._coordination.append(
            data_records.data_unit_key(self.id),
            [data_records.event("files", pd=pilot_data_id, files=sizes)],
        )
        return names

    def replicate(self, pilot_data: PilotData) -> None:
        """Copy its files into another Pilot-Data; the copy counts for data-aware placement."""
        view = self._refresh()
        if pilot_data.id in view.replicas:
            return
        _, source = self._store()
        target = data_records.open_store(
            data_records.read_pilot_data(self._coordination, pilot_data.id)
        )
        with tempfile.TemporaryDirectory(prefix="troy-replica-") as staging:
            names = source.get(self.id, staging)
            target.put(self.id, [os.path.join(staging, name) for name in names])
        self._coordination.append(
            data_records.data_unit_key(self.id), [data_records.event("replica", pd=pilot_data.id)]
        )

    def cancel(self) -> None:
        """Give the data unit up: Canceled. Its files stay in the stores."""
        if not self.state.is_final:
            self._coordination.append(
                data_records.data_unit_key(self.id),
                [data_records.event("state", s=str(State.Canceled), detail="canceled")],
            )

    def __repr__(self) -> str:
        return f"<DataUnit {self.id} {self._view.state}>"
