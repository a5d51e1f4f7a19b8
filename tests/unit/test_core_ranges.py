"""A unit's ``cores``: an exact count or a range; the agent grants what is free and says so.

Here the attribute, slot counting and the unit's environment; on a real pilot in
tests/integration/test_core_ranges_on_pilots.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import troy
from troy import PilotJobDescription, WorkUnitDescription
from troy.agent.launcher import prepare
from troy.model.cores import unit_core_range, unit_cores
from troy.model.errors import BadDescription, UnknownAttribute

# -- the attribute ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        (4, 4),
        ("4", 4),
        (" 4 ", 4),
        ({"min": 2, "max": 8}, {"min": 2, "max": 8}),
        ({"max": "8", "min": "2"}, {"min": 2, "max": 8}),
        ("2..8", {"min": 2, "max": 8}),
        (" 2 .. 8 ", {"min": 2, "max": 8}),
        ("3..3", {"min": 3, "max": 3}),
    ],
)
def test_cores_is_a_number_or_a_range_stored_in_plain_form(given: Any, stored: Any) -> None:
    description = WorkUnitDescription(executable="/bin/true", cores=given)
    assert description["cores"] == stored
    assert description.get("cores") == stored
    assert description.as_dict()["cores"] == stored
    assert WorkUnitDescription(description.as_dict()) == description


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        (0, "at least 1"),
        (-2, "at least 1"),
        ("0", "at least 1"),
        ("four", "whole number"),
        (2.5, "expected a number of cores"),
        (True, "expected a number of cores"),
        ([2, 8], "expected a number of cores"),
        ("2..", "'min..max'"),
        ("..8", "'min..max'"),
        ("2...8", "'min..max'"),
        ("-1..3", "'min..max'"),
        ("0..3", "min must be at least 1"),
        ("8..2", "max (2) must not be less than min (8)"),
        ({"min": 2}, "a range is"),
        ({"min": 1, "max": 4, "step": 1}, "a range is"),
        ({"min": 0, "max": 4}, "min must be at least 1"),
        ({"min": 1, "max": "lots"}, "max must be a whole number"),
        ({"min": 5, "max": 4}, "max (4) must not be less than min (5)"),
    ],
)
def test_bad_cores_are_refused_naming_the_attribute(bad: Any, says: str) -> None:
    with pytest.raises(BadDescription) as refused:
        WorkUnitDescription(executable="/bin/true", cores=bad)
    assert refused.value.field == "cores"
    assert says in str(refused.value)
    assert str(refused.value).startswith("cores: ")
    description = WorkUnitDescription(executable="/bin/true")
    with pytest.raises(BadDescription, match=r"^cores: "):
        description["cores"] = bad


def test_submit_names_the_unit_with_bad_cores(units: troy.WorkUnitService) -> None:
    with pytest.raises(BadDescription, match=r"cores"):
        units.submit([{"executable": "/bin/true"}, {"executable": "/bin/true", "cores": "9..1"}])
    assert units.list() == []


def test_attribute_reads_the_slots_needed_and_the_item_reads_what_was_set() -> None:
    description = WorkUnitDescription(executable="/bin/true")
    assert description.cores == 1  # the slot count placement uses, as before
    description.cores = "2..8"
    assert description.cores == 2
    assert description["cores"] == {"min": 2, "max": 8}
    description.cores = None
    assert "cores" not in description
    assert description.cores == 1


def test_pilots_have_no_cores_attribute() -> None:
    with pytest.raises(UnknownAttribute):
        PilotJobDescription(cores=4)


# -- slot counting ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, (1, 1)),
        ({"number_of_processes": 3}, (3, 3)),
        ({"total_cpu_count": 5, "number_of_processes": 3}, (5, 5)),
        ({"spmd_variation": "mpi", "number_of_processes": 2, "threads_per_process": 3}, (6, 6)),
        ({"cores": 2, "total_cpu_count": 5, "number_of_processes": 3}, (2, 2)),
        ({"cores": {"min": 2, "max": 8}, "total_cpu_count": 5}, (2, 8)),
        (
            {"cores": "3..4", "spmd_variation": "mpi", "number_of_processes": 8},
            (3, 4),
        ),
        ({"cores": "4"}, (4, 4)),  # raw, unvalidated dicts read the same
    ],
)
def test_cores_wins_and_placement_counts_the_minimum(
    values: dict[str, Any], expected: tuple[int, int]
) -> None:
    assert unit_core_range(values) == expected
    assert unit_cores(values) == expected[0]
    description = WorkUnitDescription(executable="/bin/true", **values)
    assert unit_core_range(description) == expected
    assert description.cores == expected[0]


# -- what the unit's process gets (offline) ------------------------------------------------------

BASE = {"PATH": "/usr/bin:/bin", "HOME": "/home/u"}


def test_units_without_cores_keep_the_shared_environment(tmp_path: Path) -> None:
    prepared = prepare("u1", {"executable": "/bin/true"}, str(tmp_path), BASE, cores=1)
    assert prepared.environment is None  # no copy: the agent's environment as it is


def test_units_with_cores_see_the_slots_they_were_given(tmp_path: Path) -> None:
    ranged = {
        "executable": "/bin/echo",
        "arguments": ["$TROY_CORES"],
        "cores": {"min": 1, "max": 8},
    }
    prepared = prepare("u1", ranged, str(tmp_path), BASE, cores=3)
    assert prepared.environment == {**BASE, "TROY_CORES": "3"}
    assert prepared.argv == ["/bin/echo", "3"]
    exact = {"executable": "/bin/true", "cores": 2, "environment": {"TROY_CORES": "99", "A": "1"}}
    prepared = prepare("u2", exact, str(tmp_path), BASE)
    assert prepared.environment == {**BASE, "A": "1", "TROY_CORES": "2"}
