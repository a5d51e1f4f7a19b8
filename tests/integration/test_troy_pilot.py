"""troy.pilot: BigJob's Pilot-API names over troy (file coordination, local pilots)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from troy.model.errors import BadDescription, TroyError
from troy.pilot import (
    ComputeDataService,
    ComputeUnitDescription,
    PilotComputeService,
    PilotDataService,
    State,
)


@pytest.fixture
def pcs(coordination_url: str) -> Iterator[PilotComputeService]:
    service = PilotComputeService(coordination_url)
    yield service
    service.cancel()
    service.close()


def pilot_description(tmp_path: Path, name: str, **labels: str) -> dict[str, object]:
    return {
        "service_url": "fork://localhost",
        "number_of_processes": 1,
        "working_directory": str(tmp_path / name),
        "walltime": 10,
        **labels,
    }


def test_a_pilot_description_needs_a_service_url(pcs: PilotComputeService) -> None:
    with pytest.raises(BadDescription, match="service_url"):
        pcs.create_pilot({"number_of_processes": 1})
    assert pcs.list_pilots() == []


def test_units_submitted_to_a_pilot_run_on_it_only(
    pcs: PilotComputeService, tmp_path: Path
) -> None:
    first = pcs.create_pilot(pilot_description(tmp_path, "a"))
    second = pcs.create_pilot(pilot_compute_description=pilot_description(tmp_path, "b"))
    assert second.get_details()["description"]["wall_time_limit"] == 10  # "walltime"
    units = [second.submit_compute_unit({"executable": "/bin/true"}) for _ in range(4)]
    second.wait(timeout=30)
    assert {unit.get_state() for unit in units} == {State.Done}
    assert {unit.pilot for unit in units} == {second.get_id()}
    assert first.list_compute_units() == []
    assert [p.get_id() for p in pcs.list_pilots()] == [first.get_id(), second.get_id()]


def test_compute_data_service_honours_affinity_labels(
    pcs: PilotComputeService, tmp_path: Path
) -> None:
    pcs.create_pilot(pilot_description(tmp_path, "a", affinity_machine_label="m1"))
    wanted = pcs.create_pilot(pilot_description(tmp_path, "b", affinity_machine_label="m2"))
    cds = ComputeDataService()
    cds.add_pilot_compute_service(pcs)
    description = ComputeUnitDescription(executable="/bin/true", affinity_machine_label="m2")
    units = [cds.submit_compute_unit(description) for _ in range(3)]
    cds.wait(timeout=30)
    assert cds.get_state() == State.Done
    assert {unit.get_details()["pilot"] for unit in units} == {wanted.get_id()}
    cds.close()


def test_compute_data_service_places_data_units_by_label(
    pcs: PilotComputeService, coordination_url: str, tmp_path: Path
) -> None:
    pds = PilotDataService(coordination_url)
    here = pds.create_pilot({"service_url": str(tmp_path / "here"), "affinity_machine_label": "m1"})
    there = pds.create_pilot(
        {"service_url": str(tmp_path / "there"), "affinity_machine_label": "m2"}
    )
    cds = ComputeDataService()
    with pytest.raises(TroyError, match="add_pilot_data_service"):
        cds.submit_data_unit({"file_urls": []})
    cds.add_pilot_data_service(pds)
    source = tmp_path / "f.txt"
    source.write_text("f")
    first = cds.submit_data_unit({"file_urls": [str(source)], "affinity_machine_label": "m2"})
    second = cds.submit_data_unit({"file_urls": [str(source)]})
    assert (first.replicas, second.replicas) == ([there.get_id()], [here.get_id()])
    assert cds.list_data_units() == [first, second]
    cds.close()
    pds.close()
