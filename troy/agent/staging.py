"""Staging in the agent: data units into a unit's sandbox before it runs, outputs after.

``input_data`` lists data-unit URLs (or ``{url: [globs]}`` for some of their
files): their files are copied into the sandbox before the unit is Running.
``output_data`` is ``[{url: [globs]}]``: after the unit's process ends, the
regular files at the top of the sandbox that match are put into that data
unit. Each transfer is recorded (direction, data unit, Pilot-Data, files,
bytes, seconds, and whether the copy it used is local to the pilot, by the
same rule data-aware placement uses); the agent reports them with the unit's
final state.

Safety: names from a store that would leave the sandbox are refused by the
stores (troy.plugins.stores.base.safe_name); symbolic links in the sandbox
are never staged out (they could point anywhere).
"""

from __future__ import annotations

import fnmatch
import os
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from troy.model import secrets
from troy.model.errors import TroyError
from troy.plugins import data_records
from troy.plugins.coordination.base import Coordination
from troy.plugins.schedulers.base import Replica
from troy.plugins.schedulers.data_aware import is_local
from troy.plugins.stores.base import Store


class StagingError(TroyError):
    """A unit's input or output could not be staged; the unit fails with this reason."""


def _entries(value: Any) -> list[tuple[str, list[str]]]:
    """(data unit URL, globs) pairs of an input_data/output_data list."""
    pairs: list[tuple[str, list[str]]] = []
    for item in value or ():
        if isinstance(item, Mapping):
            pairs.extend((str(url), list(globs or ["*"])) for url, globs in item.items())
        else:
            pairs.append((str(item), ["*"]))
    return pairs


class Stager:
    """Stages data units for the units of one pilot (stores are opened once, then reused)."""

    def __init__(
        self,
        coordination: Coordination,
        datacenter: str | None,
        machine: str | None,
    ) -> None:
        self.coordination = coordination
        self.datacenter = datacenter
        self.machine = machine
        self._stores: dict[str, tuple[Store, Replica]] = {}
        self._lock = threading.Lock()

    def _coordination_for(self, url: str) -> tuple[Coordination, str]:
        coordination_url, unit_id = data_records.split_data_unit_url(url)
        if coordination_url is None or data_records.is_this_coordination(
            coordination_url, self.coordination
        ):
            return self.coordination, unit_id

        return data_records.connect(coordination_url), unit_id

    def _store(self, coordination: Coordination, pilot_data_id: str) -> tuple[Store, Replica]:
        with self._lock:
            cached = self._stores.get(pilot_data_id)
            if cached is None:
                record = data_records.read_pilot_data(coordination, pilot_data_id)
                datacenter, machine = data_records.labels(record)
                cached = (
                    data_records.open_store(record),
                    Replica(pilot_data_id, datacenter, machine),
                )
                self._stores[pilot_data_id] = cached
            return cached

    def _closest(
        self, coordination: Coordination, view: data_records.DataUnitView
    ) -> tuple[Store, Replica]:
        """The copy of a data unit to read: a local one if there is one, else the first."""
        if not view.replicas:
            raise StagingError(f"data unit {view.id} has no copy in any Pilot-Data")
        copies = [self._store(coordination, pilot_data) for pilot_data in view.replicas]
        for store, replica in copies:
            if is_local(replica, self.datacenter, self.machine):
                return store, replica
        return copies[0]

    def stage_in(self, description: Mapping[str, Any], sandbox: str) -> list[dict[str, Any]]:
        """Copy the unit's input data units into ``sandbox``; the transfer records."""
        transfers = []
        os.makedirs(sandbox, exist_ok=True)
        for url, globs in _entries(description.get("input_data")):
            try:
                coordination, unit_id = self._coordination_for(url)
                view = data_records.read_data_unit(coordination, unit_id)
                started = time.monotonic()
                names: list[str] = []
                replica = None
                if view.files:
                    store, replica = self._closest(coordination, view)
                    names = store.get(unit_id, sandbox, globs)
                seconds = time.monotonic() - started
            except TroyError as exc:
                raise StagingError(f"staging in {secrets.redact_url(url)}: {exc}") from exc
            size = sum(os.path.getsize(os.path.join(sandbox, name)) for name in names)
            transfers.append(self._record("in", unit_id, replica, names, size, seconds))
        return transfers

    def stage_out(self, description: Mapping[str, Any], sandbox: str) -> list[dict[str, Any]]:
        """Put the sandbox files matching each output_data entry's globs; the records."""
        transfers = []
        for url, globs in _entries(description.get("output_data")):
            paths = _matching(sandbox, globs)
            try:
                coordination, unit_id = self._coordination_for(url)
                view = data_records.read_data_unit(coordination, unit_id)
                if not view.replicas:
                    raise StagingError(f"data unit {unit_id} has no copy in any Pilot-Data")
                store, replica = self._store(coordination, view.replicas[0])
                started = time.monotonic()
                if paths:
                    store.put(unit_id, paths)
                seconds = time.monotonic() - started
                sizes = {os.path.basename(path): os.path.getsize(path) for path in paths}
                if sizes:
                    coordination.append(
                        data_records.data_unit_key(unit_id),
                        [data_records.event("files", pd=replica.pilot_data, files=sizes)],
                    )
            except TroyError as exc:
                raise StagingError(f"staging out to {secrets.redact_url(url)}: {exc}") from exc
            except OSError as exc:
                raise StagingError(f"staging out to {secrets.redact_url(url)}: {exc}") from exc
            transfers.append(
                self._record("out", unit_id, replica, sorted(sizes), sum(sizes.values()), seconds)
            )
        return transfers

    def _record(
        self,
        direction: str,
        unit_id: str,
        replica: Replica | None,
        names: Sequence[str],
        size: int,
        seconds: float,
    ) -> dict[str, Any]:
        return {
            "dir": direction,
            "du": unit_id,
            "pd": replica.pilot_data if replica else None,
            "files": len(names),
            "bytes": size,
            "seconds": round(seconds, 6),
            "local": replica is None or is_local(replica, self.datacenter, self.machine),
        }


def _matching(sandbox: str, globs: Sequence[str]) -> list[str]:
    """Regular files (not links) at the top of ``sandbox`` whose names match a glob."""
    try:
        entries = list(os.scandir(sandbox))
    except OSError as exc:
        raise StagingError(f"cannot read sandbox {sandbox}: {exc.strerror}") from exc
    chosen = []
    for entry in sorted(entries, key=lambda e: e.name):
        if entry.is_symlink() or not entry.is_file(follow_symlinks=False):
            continue
        if any(fnmatch.fnmatchcase(entry.name, pattern) for pattern in globs):
            chosen.append(entry.path)
    return chosen
