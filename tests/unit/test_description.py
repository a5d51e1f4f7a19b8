"""Descriptions: every SAGA attribute, BigJob's dict form, validation that names the field."""

from __future__ import annotations

import pickle

import pytest

import troy
from troy import PilotJobDescription, State, WorkUnitDescription

SAGA_ATTRIBUTES = {
    "executable", "arguments", "cleanup", "environment", "interactive", "contact", "project",
    "start_time", "working_directory", "input", "error", "output", "file_transfer",
    "number_of_processes", "processes_per_host", "threads_per_process", "total_cpu_count",
    "spmd_variation", "candidate_hosts", "cpu_architecture", "total_physical_memory",
    "operating_system_type", "total_cpu_time", "wall_time_limit", "queue",
}  # fmt: skip
EXTRAS = {"affinity_datacenter_label", "affinity_machine_label", "input_data", "output_data"}


@pytest.mark.parametrize(
    ("kind", "troy_extensions"),
    [
        (PilotJobDescription, {"agent_python", "launcher", "hints"}),
        (
            WorkUnitDescription,
            {"retries", "cores", "hints", "name", "after", "iterations", "iteration"},
        ),
    ],
)
def test_every_troy_attribute_exists_and_reads_none_when_unset(
    kind: type, troy_extensions: set[str]
) -> None:
    everything = SAGA_ATTRIBUTES | EXTRAS | troy_extensions
    assert set(kind.field_names()) == everything
    description = kind()
    # `cores` of a unit is a property: the slots it takes (1 when nothing is set).
    computed = {"cores"} if kind is WorkUnitDescription else set()
    for name in everything - computed:
        assert getattr(description, name) is None
        assert description.get(name) is None
    for name in computed:
        assert description.get(name) is None and getattr(description, name) == 1
    # the class annotations (for type checkers) list the same attributes
    annotated = {n for cls in kind.__mro__ for n in vars(cls).get("__annotations__", {})}
    assert {n for n in annotated if not n.startswith("_")} == everything - computed


def test_bigjob_dict_form_and_attribute_form_are_equal() -> None:
    from_dict = WorkUnitDescription(
        {
            "executable": "/bin/echo",
            "arguments": ["Hello", "$ENV1", 3],
            "environment": ["ENV1=World", "EMPTY="],
            "number_of_processes": 1,
            "spmd_variation": "single",
            "output": "stdout.txt",
            "error": "stderr.txt",
            "affinity_datacenter_label": "eu-de-south",
        }
    )
    by_attribute = WorkUnitDescription()
    by_attribute.executable = "/bin/echo"
    by_attribute.arguments = ["Hello", "$ENV1", "3"]
    by_attribute.environment = {"ENV1": "World", "EMPTY": ""}
    by_attribute.number_of_processes = 1
    by_attribute.spmd_variation = "single"
    by_attribute.output = "stdout.txt"
    by_attribute["error"] = "stderr.txt"
    by_attribute.affinity_datacenter_label = "eu-de-south"
    assert from_dict == by_attribute
    assert from_dict.environment == {"ENV1": "World", "EMPTY": ""}
    assert from_dict.arguments == ["Hello", "$ENV1", "3"]
    assert from_dict["executable"] == "/bin/echo"
    assert "output" in from_dict and "input" not in from_dict


def test_bigjob_empty_argument_list_means_no_arguments() -> None:
    assert WorkUnitDescription(executable="/bin/date", arguments=[""]).arguments == []
    assert WorkUnitDescription(executable="/bin/x", arguments=["", "a"]).arguments == ["", "a"]


def test_misspelled_attribute_names_it_and_suggests() -> None:
    with pytest.raises(troy.UnknownAttribute) as error:
        WorkUnitDescription({"executable": "/bin/true", "number_of_process": 2})
    assert error.value.field == "number_of_process"
    assert error.value.suggestion == "number_of_processes"
    assert "did you mean 'number_of_processes'" in str(error.value)
    description = WorkUnitDescription()
    with pytest.raises(troy.UnknownAttribute, match="did you mean 'environment'"):
        description.enviroment = {}
    with pytest.raises(AttributeError):  # also an AttributeError, as Python users expect
        _ = description.outptu
    with pytest.raises(troy.UnknownAttribute) as error:
        description.zzzz = 1
    assert error.value.suggestion is None


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("number_of_processes", -1, "at least 1"),
        ("number_of_processes", 0, "at least 1"),
        ("number_of_processes", 1.5, "integer"),
        ("number_of_processes", True, "integer"),
        ("total_cpu_count", "many", "integer"),
        ("executable", "", "empty"),
        ("executable", "   ", "empty"),
        ("executable", 42, "string"),
        ("arguments", "-l", "list"),
        ("arguments", [None], "string or number"),
        ("environment", ["NOEQUALS"], "NAME=value"),
        ("environment", 5, "mapping"),
        ("wall_time_limit", 0, "positive"),
        ("wall_time_limit", float("nan"), "finite"),
        ("total_physical_memory", -5, "at least 0"),
        ("cleanup", "yes", "true or false"),
        ("candidate_hosts", "node1", "list of strings"),
        ("output_data", [{"du://x": "std*"}], "list of strings"),
        ("input_data", "du://x", "list"),
    ],
)
def test_wrong_types_and_impossible_values_name_the_field(
    field: str, value: object, words: str
) -> None:
    with pytest.raises(troy.BadDescription) as error:
        WorkUnitDescription({"executable": "/bin/true", field: value})
    assert error.value.field.startswith(field)
    assert words in str(error.value)
    description = WorkUnitDescription(executable="/bin/true")
    with pytest.raises(troy.BadDescription):
        setattr(description, field, value)
    assert getattr(description, field) is None or field == "executable"
    assert description.executable == "/bin/true"  # a rejected value changes nothing


def test_numbers_given_as_strings_are_accepted() -> None:
    assert WorkUnitDescription(number_of_processes="4").number_of_processes == 4


def test_unit_needs_an_executable_pilot_does_not() -> None:
    with pytest.raises(troy.BadDescription, match="executable"):
        WorkUnitDescription(arguments=["x"]).validate()
    PilotJobDescription(number_of_processes=2).validate()


def test_pilot_accepts_bigjob_walltime_alias() -> None:
    assert PilotJobDescription({"walltime": 10}).wall_time_limit == 10
    with pytest.raises(troy.UnknownAttribute, match="did you mean 'wall_time_limit'"):
        PilotJobDescription({"waltime": 10})


def test_cores_and_copies() -> None:
    assert WorkUnitDescription(executable="x").cores == 1
    assert WorkUnitDescription(executable="x", number_of_processes=3).cores == 3
    assert WorkUnitDescription(executable="x", number_of_processes=3, total_cpu_count=6).cores == 6
    original = WorkUnitDescription(executable="x", environment={"A": "1"})
    copy = original.copy(output="o.txt")
    copy.environment["A"] = "2"
    assert original.environment == {"A": "1"} and original.output is None
    assert WorkUnitDescription(original) == original
    assert pickle.loads(pickle.dumps(original)) == original
    assert original.as_dict() == {"executable": "x", "environment": {"A": "1"}}


def test_setting_none_unsets() -> None:
    description = WorkUnitDescription(executable="x", output="o")
    description.output = None
    assert "output" not in description
    del description.executable
    assert description.as_dict() == {}


def test_not_a_mapping_is_a_clear_error() -> None:
    with pytest.raises(troy.BadDescription, match="mapping"):
        WorkUnitDescription(["executable", "/bin/true"])  # type: ignore[arg-type]


def test_states_are_bigjob_strings() -> None:
    assert [str(s) for s in State] == [
        "Unknown", "New", "Pending", "Running", "Done", "Failed", "Canceled",
    ]  # fmt: skip
    assert State.Done == "Done"
    assert f"{State.Failed}" == "Failed"
    assert State("Canceled") is State.Canceled
    assert {s for s in State if s.is_final} == {State.Done, State.Failed, State.Canceled}


def test_pilotjob_types_are_the_troy_constants() -> None:
    assert troy.PILOTJOB_TYPE.UNKNOWN == 0
    assert troy.PILOTJOB_TYPE.BIGJOB == 1
    assert troy.PILOTJOB_TYPE.DIANE == 2
    assert troy.PILOTJOB_TYPE.CONDOR == 3
    assert troy.PILOTJOB_TYPE.LOCAL.name == "LOCAL"
