"""Data-aware placement moves fewer bytes than round robin, by the agents' staging records.

Two Pilot-Data with different machine labels, two pilots with the same two
labels, and units that each read one data unit: round robin sends about half
of them to the pilot away from their data; data_aware sends each to its data.
The bytes compared are those the agents recorded as moved (staged from a copy
that is not local to the pilot), not the scheduler's own estimate.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from troy import PilotDataService, PilotJobService, State, WorkUnitService

UNITS = 12


def moved_bytes(coordination_url: str, tmp_path: Path, scheduler: str) -> tuple[int, int]:
    """Run the workload with ``scheduler``; (bytes moved, bytes read locally)."""
    base = tmp_path / scheduler
    data = PilotDataService(coordination=coordination_url)
    stores = {
        label: data.create(
            {
                "service_url": str(base / f"pd-{label}"),
                "affinity_datacenter_label": f"dc-{label}",
                "affinity_machine_label": label,
            }
        )
        for label in ("m1", "m2")
    }
    inputs = []
    for index in range(UNITS):
        # m1, m1, m2, m2, ...: round robin's alternation is wrong for half of them.
        label = "m1" if index % 4 < 2 else "m2"
        path = base / "files" / f"in-{index}.dat"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * (1000 + 100 * index))
        inputs.append(stores[label].submit_data_unit({"file_urls": [str(path)]}))
    pilots = PilotJobService(coordination=coordination_url)
    units = WorkUnitService(coordination=coordination_url, scheduler=scheduler)
    units.add(pilots)
    try:
        for label in ("m1", "m2"):
            pilots.create(
                "fork://localhost",
                {
                    "number_of_processes": 2,
                    "working_directory": str(base / f"pilot-{label}"),
                    "affinity_datacenter_label": f"dc-{label}",
                    "affinity_machine_label": label,
                },
            )
        submitted = units.submit(
            [{"executable": "/bin/true", "input_data": [unit.get_url()]} for unit in inputs]
        )
        units.wait(timeout=60)
        moved = local = 0
        for unit in submitted:
            assert unit.state == State.Done, unit.state_detail
            [transfer] = unit.transfers
            assert transfer["dir"] == "in" and transfer["bytes"] > 0
            if transfer["local"]:
                local += transfer["bytes"]
            else:
                moved += transfer["bytes"]
        return moved, local
    finally:
        pilots.cancel()
        units.close()
        pilots.close()
        data.close()


@pytest.mark.slow
def test_data_aware_moves_strictly_fewer_bytes_than_round_robin(
    coordination_url: str, tmp_path: Path
) -> None:
    round_robin = moved_bytes(coordination_url, tmp_path, "round_robin")
    data_aware = moved_bytes(coordination_url, tmp_path, "data_aware")
    total = sum(1000 + 100 * index for index in range(UNITS))
    assert sum(round_robin) == sum(data_aware) == total  # the same workload was staged
    assert round_robin[0] > 0, "round robin should have sent some units away from their data"
    assert data_aware[0] < round_robin[0]


def test_a_unit_no_pilot_matches_waits_with_the_reason(
    coordination_url: str, tmp_path: Path
) -> None:
    with PilotJobService(coordination=coordination_url) as pilots:
        units = WorkUnitService(coordination=coordination_url, scheduler="affinity")
        units.add(pilots)
        pilot = pilots.create(
            "fork://localhost",
            {"working_directory": str(tmp_path / "p"), "affinity_machine_label": "m1"},
        )
        stranded = units.submit({"executable": "/bin/true", "affinity_machine_label": "m2"})
        fine = units.submit({"executable": "/bin/true", "affinity_machine_label": "m1"})
        assert fine.wait(timeout=30) == State.Done
        assert stranded.state == State.New
        assert "affinity_machine_label 'm2'" in stranded.state_detail
        assert pilot.id in stranded.state_detail
        pilots.cancel()
        units.close()
