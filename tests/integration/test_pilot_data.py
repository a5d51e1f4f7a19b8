"""Pilot-Data and data units: records, files, reconnecting, and staging in the agent."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from troy import (
    BadDescription,
    NoSuchPlugin,
    PilotData,
    PilotDataDescription,
    PilotDataService,
    PilotJobService,
    State,
    WorkUnitService,
)


@pytest.fixture
def data_service(coordination_url: str) -> Iterator[PilotDataService]:
    service = PilotDataService(coordination=coordination_url)
    yield service
    service.close()


@pytest.fixture
def compute(
    coordination_url: str, tmp_path: Path
) -> Iterator[tuple[PilotJobService, WorkUnitService]]:
    pilots = PilotJobService(coordination=coordination_url)
    units = WorkUnitService(coordination=coordination_url)
    units.add(pilots)
    pilots.create(
        "fork://localhost",
        {"number_of_processes": 2, "working_directory": str(tmp_path / "pilot")},
    )
    yield pilots, units
    pilots.cancel()
    units.close()
    pilots.close()


@pytest.fixture
def pilot_data(data_service: PilotDataService, tmp_path: Path) -> PilotData:
    """A Pilot-Data in the directory tmp_path/pd."""
    return data_service.create({"service_url": str(tmp_path / "pd")})


def files(tmp_path: Path, **contents: str) -> list[str]:
    paths = []
    for name, text in contents.items():
        path = tmp_path / "input" / name.replace("_", ".")
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        paths.append(str(path))
    return paths


def test_data_unit_holds_its_files(data_service: PilotDataService, tmp_path: Path) -> None:
    pilot_data = data_service.create({"service_url": (tmp_path / "pd").as_uri()})
    unit = pilot_data.submit_data_unit({"file_urls": files(tmp_path, a_txt="aa", b_dat="bbbb")})
    assert unit.wait(timeout=5) == State.Running
    assert unit.list_files() == ["a.txt", "b.dat"]
    assert unit.size == 6
    assert unit.replicas == [pilot_data.id]
    assert pilot_data.list_data_units()[0].id == unit.id
    exported = unit.export(tmp_path / "out", ["*.txt"])
    assert exported == ["a.txt"]
    assert (tmp_path / "out" / "a.txt").read_text() == "aa"


def test_data_unit_url_resolves_in_a_new_process(pilot_data: PilotData, tmp_path: Path) -> None:
    unit = pilot_data.submit_data_unit({"file_urls": files(tmp_path, x_txt="x")})
    code = (
        "import sys; from troy import DataUnit; u = DataUnit.open(sys.argv[1]);"
        "print(u.id, u.state, u.list_files(), u.export(sys.argv[2]))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, unit.get_url(), str(tmp_path / "elsewhere")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert run.stdout.split(" ", 2)[:2] == [unit.id, "Running"]
    assert (tmp_path / "elsewhere" / "x.txt").read_text() == "x"


def test_reconnected_service_sees_pilot_data_and_units(
    data_service: PilotDataService, coordination_url: str, tmp_path: Path
) -> None:
    pilot_data = data_service.create(
        {"service_url": str(tmp_path / "pd"), "affinity_machine_label": "m1"}
    )
    unit = pilot_data.submit_data_unit({"file_urls": files(tmp_path, y_txt="y")})
    with PilotDataService(id=data_service.id, coordination=coordination_url) as again:
        [seen] = again.list_pilots()
        assert (seen.id, seen.affinity_machine_label) == (pilot_data.id, "m1")
        assert [u.id for u in again.list_data_units()] == [unit.id]


def test_a_missing_file_is_refused_and_nothing_is_recorded(
    data_service: PilotDataService, pilot_data: PilotData, tmp_path: Path
) -> None:
    good = files(tmp_path, ok_txt="fine")
    with pytest.raises(BadDescription, match=r"file_urls\[1\].*nope"):
        pilot_data.submit_data_unit({"file_urls": [*good, str(tmp_path / "nope")]})
    assert data_service.list_data_units() == []
    assert not (tmp_path / "pd").exists() or list((tmp_path / "pd").iterdir()) == []


def test_an_unknown_store_scheme_is_refused_before_anything_is_recorded(
    data_service: PilotDataService,
) -> None:
    with pytest.raises(NoSuchPlugin, match="gopher"):
        data_service.create({"service_url": "gopher://host/x"})
    assert data_service.list_pilots() == []


def test_credentials_are_never_shown() -> None:
    description = PilotDataDescription(
        {"service_url": "s3://bucket", "access_key_id": "AKIA", "secret_access_key": "s3cr3t"}
    )
    assert "s3cr3t" not in repr(description)
    assert "access_key_id='AKIA'" in repr(description)


# -- staging ---------------------------------------------------------------------------------
def test_input_is_staged_in_and_output_staged_out(
    pilot_data: PilotData,
    compute: tuple[PilotJobService, WorkUnitService],
    tmp_path: Path,
) -> None:
    _, units = compute
    source = pilot_data.submit_data_unit({"file_urls": files(tmp_path, in_txt="12345")})
    target = pilot_data.submit_data_unit({"file_urls": []})
    unit = units.submit(
        {
            "executable": "/bin/sh",
            "arguments": ["-c", "cat in.txt > out.txt; echo log > run.log; echo err >&2"],
            "input_data": [source.get_url()],
            "output_data": [{target.get_url(): ["*.txt", "std*"]}],
        }
    )
    assert unit.wait(timeout=30) == State.Done, unit.state_detail
    assert target.list_files() == ["in.txt", "out.txt", "stderr", "stdout"]
    target.export(tmp_path / "result", ["out.txt"])
    assert (tmp_path / "result" / "out.txt").read_text() == "12345"
    directions = [(t["dir"], t["du"], t["files"], t["bytes"]) for t in unit.transfers]
    assert directions == [("in", source.id, 1, 5), ("out", target.id, 4, 5 + 5 + 4 + 0)]
    assert all(t["seconds"] >= 0 for t in unit.transfers)


def test_a_link_in_the_sandbox_is_never_staged_out(
    pilot_data: PilotData,
    compute: tuple[PilotJobService, WorkUnitService],
    tmp_path: Path,
) -> None:
    _, units = compute
    target = pilot_data.submit_data_unit({"file_urls": []})
    unit = units.submit(
        {
            "executable": "/bin/sh",
            "arguments": ["-c", "ln -s /etc/passwd secret.txt; echo ok > real.txt"],
            "output_data": [{target.get_url(): ["*.txt"]}],
        }
    )
    assert unit.wait(timeout=30) == State.Done, unit.state_detail
    assert target.list_files() == ["real.txt"]


def test_a_staging_failure_fails_the_unit_with_the_reason(
    pilot_data: PilotData,
    compute: tuple[PilotJobService, WorkUnitService],
    tmp_path: Path,
) -> None:
    _, units = compute
    source = pilot_data.submit_data_unit({"file_urls": files(tmp_path, gone_txt="soon gone")})
    # The store loses the unit's files behind troy's back.
    for path in (tmp_path / "pd" / source.id).iterdir():
        path.unlink()
    (tmp_path / "pd" / source.id).rmdir()
    unit = units.submit({"executable": "/bin/true", "input_data": [source.get_url()]})
    assert unit.wait(timeout=30) == State.Failed
    assert "staging in" in unit.state_detail and source.id in unit.state_detail


def test_a_data_unit_url_of_another_directory_fails_the_unit_and_creates_nothing_there(
    compute: tuple[PilotJobService, WorkUnitService], tmp_path: Path
) -> None:
    _, units = compute
    other = tmp_path / "not-a-coordination"
    other.mkdir()
    url = f"{other.as_uri()}#du-0123456789ab"

    unit = units.submit({"executable": "/bin/true", "input_data": [url]})

    assert unit.wait(timeout=30) == State.Failed
    assert f"staging in {url}: no troy coordination at {other}" in unit.state_detail
    assert list(other.iterdir()) == []


def test_a_link_in_a_store_is_refused_on_staging(
    pilot_data: PilotData,
    compute: tuple[PilotJobService, WorkUnitService],
    tmp_path: Path,
) -> None:
    _, units = compute
    source = pilot_data.submit_data_unit({"file_urls": files(tmp_path, fine_txt="ok")})
    os.symlink("/etc/passwd", tmp_path / "pd" / source.id / "passwd")
    unit = units.submit({"executable": "/bin/true", "input_data": [source.get_url()]})
    assert unit.wait(timeout=30) == State.Failed
    assert "passwd" in unit.state_detail
    sandbox = Path(tmp_path / "pilot" / unit.id)
    assert not (sandbox / "passwd").exists()


def test_a_replica_next_to_the_pilot_is_read_locally(
    coordination_url: str, data_service: PilotDataService, tmp_path: Path
) -> None:
    far = data_service.create(
        {"service_url": str(tmp_path / "far"), "affinity_machine_label": "m1"}
    )
    near = data_service.create(
        {"service_url": str(tmp_path / "near"), "affinity_machine_label": "m2"}
    )
    source = far.submit_data_unit({"file_urls": files(tmp_path, d_txt="data")})
    source.replicate(near)
    assert source.replicas == [far.id, near.id]
    with PilotJobService(coordination=coordination_url) as pilots:
        units = WorkUnitService(coordination=coordination_url)
        units.add(pilots)
        pilots.create(
            "fork://localhost",
            {"working_directory": str(tmp_path / "p2"), "affinity_machine_label": "m2"},
        )
        unit = units.submit({"executable": "/bin/cat", "arguments": ["d.txt"],
                             "input_data": [source.get_url()]})  # fmt: skip
        assert unit.wait(timeout=30) == State.Done, unit.state_detail
        [transfer] = unit.transfers
        assert (transfer["pd"], transfer["local"], transfer["bytes"]) == (near.id, True, 4)
        pilots.cancel()
        units.close()


def test_an_unknown_data_unit_is_refused_at_submit(
    compute: tuple[PilotJobService, WorkUnitService], coordination_url: str
) -> None:
    _, units = compute
    with pytest.raises(BadDescription, match=r"input_data.*du-000000000000"):
        units.submit(
            {"executable": "/bin/true", "input_data": [f"{coordination_url}#du-000000000000"]}
        )
    assert units.list() == []


def test_the_data_example_runs(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "data_staging.py"
    run = subprocess.run(
        [sys.executable, str(example)], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == str([("Done", 8000, True)] * 4)
    assert lines[1] == "['count-A.txt', 'count-C.txt', 'count-G.txt', 'count-T.txt']"
    assert lines[2] == "3000"
