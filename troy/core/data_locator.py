"""Sizes and copies of data units, for data-aware placement."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from troy.model.errors import BadDescription, NoSuchObject
from troy.plugins.coordination.base import Coordination
from troy.plugins.data_records import (
    data_unit_key,
    data_urls,
    is_this_coordination,
    labels,
    read_data_unit,
    read_pilot_data,
    split_data_unit_url,
)
from troy.plugins.schedulers.base import DataInput, Replica


class DataLocator:
    """Sizes and copies of data units, for data-aware placement (one per unit manager).

    Pilot-Data labels never change and are cached; a data unit is read again
    each time (outputs add to it), at most once per ``locate`` call.
    """

    def __init__(self, coordination: Coordination) -> None:
        self.coordination = coordination
        self._labels: dict[str, tuple[str | None, str | None]] = {}

    def locate(
        self, urls: Sequence[str], memo: dict[str, DataInput | None]
    ) -> tuple[DataInput, ...]:
        """The data units ``urls`` name, with sizes and replicas; unknown ones are left out.

        ``memo`` holds what was read for earlier units of the same placement: a
        data unit many units read is read once.
        """
        found = []
        for url in urls:
            if url not in memo:
                memo[url] = self._read(url)
            item = memo[url]
            if item is not None:
                found.append(item)
        return tuple(found)

    def _read(self, url: str) -> DataInput | None:
        coordination_url, unit_id = split_data_unit_url(url)
        if not is_this_coordination(coordination_url, self.coordination):
            return None  # another coordination: not known here
        try:
            view = read_data_unit(self.coordination, unit_id)
            replicas = tuple(Replica(pd, *self._labels_of(pd)) for pd in view.replicas)
        except NoSuchObject:
            return None
        return DataInput(url, view.size, replicas)

    def check(self, descriptions: Sequence[Any]) -> None:
        """BadDescription for a data unit URL in input_data/output_data that names nothing.

        URLs of this coordination (or bare ids) are looked up; URLs of another
        coordination are left to the agent.
        """
        known: set[str] = set()
        for index, description in enumerate(descriptions):
            for field_name in ("input_data", "output_data"):
                for url in data_urls(description.get(field_name)):
                    coordination_url, unit_id = split_data_unit_url(url)
                    here = is_this_coordination(coordination_url, self.coordination)
                    if url in known or not here:
                        continue
                    if self.coordination.get_record(data_unit_key(unit_id)) is None:
                        where = (
                            f"{field_name} of unit #{index}"
                            if len(descriptions) > 1
                            else field_name
                        )
                        raise BadDescription(
                            where, f"no data unit {unit_id!r} in {self.coordination.public_url()}"
                        )
                    known.add(url)

    def _labels_of(self, pilot_data_id: str) -> tuple[str | None, str | None]:
        cached = self._labels.get(pilot_data_id)
        if cached is None:
            cached = self._labels[pilot_data_id] = labels(
                read_pilot_data(self.coordination, pilot_data_id)
            )
        return cached
