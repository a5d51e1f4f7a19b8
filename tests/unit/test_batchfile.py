"""The batch-file reader behind `troy run FILE`: what it accepts and how it reports errors."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from troy.cli.batchfile import BatchFile, load_batch_file
from troy.model.description import PilotJobDescription, WorkUnitDescription
from troy.model.errors import BadBatchFile

REPO = Path(__file__).resolve().parents[2]

GOOD = """\
# a comment on line 1
coordination: file:///tmp/x
scheduler: affinity
pilots:
  - resource: fork://localhost
    pj_type: local
    count: 2
    number_of_processes: 2
    wall_time_limit: 10
  - rm: ssh://example.org
units:
  - executable: /bin/echo
    arguments: ["hello from unit $TROY_INDEX"]
    output: stdout.txt
    count: 3
  - executable: /bin/true
    environment: {GREETING: hi}
"""


def write(tmp_path: Path, text: str, name: str = "batch.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def load_error(tmp_path: Path, text: str, name: str = "batch.yaml") -> BadBatchFile:
    path = write(tmp_path, text, name)
    with pytest.raises(BadBatchFile) as info:
        load_batch_file(path)
    assert info.value.path == str(path)
    return info.value


def check(error: BadBatchFile, line: int | None, field: str | None, *fragments: str) -> None:
    """The error names the line and field, in its attributes and in its message."""
    assert (error.line, error.field) == (line, field), str(error)
    text = str(error)
    if line is not None:
        assert f"{error.path}:{line}:" in text
    else:
        assert f"{error.path}:" in text and f"{error.path}:1" not in text
    if field is not None:
        assert f" {field}:" in text
    for fragment in fragments:
        assert fragment in text


# -- files that are right ----------------------------------------------------------------


def test_reads_a_yaml_file(tmp_path: Path) -> None:
    batch = load_batch_file(write(tmp_path, GOOD))
    assert isinstance(batch, BatchFile)
    assert batch.path == str(tmp_path / "batch.yaml")
    assert batch.coordination == "file:///tmp/x"
    assert batch.scheduler == "affinity"
    assert [(p.resource, p.pj_type, p.line) for p in batch.pilots] == [
        ("fork://localhost", "local", 5),
        ("fork://localhost", "local", 5),
        ("ssh://example.org", None, 10),
    ]
    assert batch.pilots[0].description == PilotJobDescription(
        number_of_processes=2, wall_time_limit=10
    )
    assert batch.pilots[0].description is not batch.pilots[1].description
    assert batch.pilot_count == 3
    assert [(u.count, u.line) for u in batch.units] == [(3, 12), (1, 16)]
    assert batch.units[0].description == WorkUnitDescription(
        executable="/bin/echo", arguments=["hello from unit $TROY_INDEX"], output="stdout.txt"
    )
    assert batch.unit_count == 4


def test_reads_a_json_file_with_the_same_structure(tmp_path: Path) -> None:
    # Tab indentation and exponent numbers are fine in JSON but not in YAML 1.1.
    text = (
        '{\n\t"pilots": [\n\t\t{"service_url": "fork://localhost", "number_of_processes": 4}\n\t],'
        '\n\t"units": [{"executable": "/bin/date", "wall_time_limit": 1e3, "count": 2}]\n}\n'
    )
    batch = load_batch_file(write(tmp_path, text, "b.json"))
    assert batch.coordination is None
    assert batch.scheduler == "round_robin"
    assert batch.pilots[0].resource == "fork://localhost"
    assert batch.pilots[0].description.number_of_processes == 4
    assert batch.pilots[0].line == 3
    assert batch.units[0].description.wall_time_limit == 1000.0
    assert batch.unit_count == 2


def test_exponent_numbers_are_numbers_in_yaml_too(tmp_path: Path) -> None:
    text = """\
    pilots: [{resource: fork://localhost, wall_time_limit: 1.5e2}]
    units: [{executable: /bin/true, total_cpu_time: 2E-1}]
    """
    batch = load_batch_file(write(tmp_path, text))
    assert batch.pilots[0].description.wall_time_limit == 150.0
    assert batch.units[0].description.total_cpu_time == 0.2


def test_json_lines_are_reported_too(tmp_path: Path) -> None:
    text = """\
    {
      "pilots": [{"resource": "fork://localhost"}],
      "units": [
        {"executable": "/bin/date",
         "number_of_processes": 0}
      ]
    }
    """
    error = load_error(tmp_path, text, "b.json")
    check(error, 5, "units[0].number_of_processes", "must be at least 1")


def test_yaml_anchors_and_merge_keys_work(tmp_path: Path) -> None:
    batch = load_batch_file(
        write(
            tmp_path,
            """\
            pilots: [{resource: fork://localhost}]
            units:
              - &base
                executable: /bin/echo
                arguments: [a]
              - <<: *base
                arguments: [b]
            """,
        )
    )
    assert [u.description.arguments for u in batch.units] == [["a"], ["b"]]
    assert batch.units[1].description.executable == "/bin/echo"


def test_count_expands_units_with_troy_index(tmp_path: Path) -> None:
    batch = load_batch_file(write(tmp_path, GOOD))
    units = batch.unit_descriptions()
    assert len(units) == 4
    assert [u.environment for u in units] == [
        {"TROY_INDEX": "0"},
        {"TROY_INDEX": "1"},
        {"TROY_INDEX": "2"},
        {"GREETING": "hi", "TROY_INDEX": "0"},
    ]
    assert all(u.arguments == ["hello from unit $TROY_INDEX"] for u in units[:3])
    assert units[0].arguments is not units[1].arguments
    # The descriptions read from the file are templates: expanding leaves them alone.
    assert batch.units[0].description.environment is None
    assert batch.units[1].description.environment == {"GREETING": "hi"}
    units[0].arguments.append("changed")
    assert batch.unit_descriptions()[0].arguments == ["hello from unit $TROY_INDEX"]


def test_a_large_count_expands(tmp_path: Path) -> None:
    # Its speed (well under a second) is for a benchmark; this checks the result.
    text = """\
    pilots: [{resource: fork://localhost}]
    units: [{executable: /bin/true, arguments: [x], count: 100000}]
    """
    units = load_batch_file(write(tmp_path, text)).unit_descriptions()
    assert len(units) == 100000
    assert units[-1].environment == {"TROY_INDEX": "99999"}
    assert units[-1].executable == "/bin/true"


def test_relative_pilot_working_directory_is_resolved_against_the_file(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    text = """\
    pilots:
      - {resource: fork://localhost, working_directory: sandboxes/../pilots}
      - {resource: fork://localhost, working_directory: /abs/dir}
    units:
      - {executable: /bin/true, working_directory: unit/dir}
    """
    path = write(tmp_path, text)
    cwd = os.getcwd()
    os.chdir(elsewhere)
    try:
        batch = load_batch_file(os.path.relpath(path))
    finally:
        os.chdir(cwd)
    assert batch.pilots[0].description.working_directory == str(tmp_path / "pilots")
    assert batch.pilots[1].description.working_directory == "/abs/dir"
    assert batch.units[0].description.working_directory == "unit/dir"


def test_the_hello_example_is_valid() -> None:
    batch = load_batch_file(REPO / "examples" / "hello.yaml")
    assert batch.scheduler == "round_robin"
    assert [(p.resource, p.pj_type) for p in batch.pilots] == [("fork://localhost", "local")]
    assert batch.pilots[0].description.number_of_processes == 2
    units = batch.unit_descriptions()
    assert len(units) == 8
    assert units[7].executable == "/bin/echo"
    assert units[7].environment == {"TROY_INDEX": "7"}
    assert units[7].output == "stdout.txt"


# -- files that are wrong: one test per kind of error ------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BadBatchFile) as info:
        load_batch_file(tmp_path / "nope.yaml")
    check(info.value, None, None, "nope.yaml", "no such file")


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(BadBatchFile) as info:
        load_batch_file(tmp_path)
    check(info.value, None, None, "is a directory")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "batch.yaml"
    path.write_bytes(b"pilots: []\nunits: [\xff]\n")
    with pytest.raises(BadBatchFile) as info:
        load_batch_file(path)
    check(info.value, 2, None, "not UTF-8")


def test_yaml_syntax_error(tmp_path: Path) -> None:
    text = """\
    pilots:
      - resource: fork://localhost
    units:
      - executable: "/bin/echo
    """
    check(load_error(tmp_path, text), 5, None, "YAML syntax error", "end of stream")


def test_yaml_syntax_error_bad_indentation(tmp_path: Path) -> None:
    text = """\
    pilots:
      - resource: fork://localhost
     units: []
    """
    check(load_error(tmp_path, text), 3, None, "YAML syntax error")


def test_json_syntax_error(tmp_path: Path) -> None:
    text = '{\n  "pilots": [],\n  "units": [,]\n}\n'
    check(load_error(tmp_path, text, "b.json"), 3, None, "JSON syntax error")


def test_unsafe_tag_is_refused(tmp_path: Path) -> None:
    text = """\
    pilots:
      - resource: !!python/object:os.system fork://localhost
    units: []
    """
    check(load_error(tmp_path, text), 2, None, "python/object")


def test_empty_file(tmp_path: Path) -> None:
    check(load_error(tmp_path, "# nothing here\n"), None, None, "empty")


def test_top_level_not_a_mapping(tmp_path: Path) -> None:
    text = """\
    # a list, not a mapping
    - resource: fork://localhost
    """
    check(load_error(tmp_path, text), 2, None, "expected a mapping", "got a list")


def test_unknown_top_level_key_suggests_the_nearest(tmp_path: Path) -> None:
    text = """\
    pilots: [{resource: fork://localhost}]
    units: [{executable: /bin/true}]
    schedular: affinity
    """
    check(load_error(tmp_path, text), 3, "schedular", "did you mean 'scheduler'?")


def test_missing_pilots(tmp_path: Path) -> None:
    text = """\
    # no pilots
    units: [{executable: /bin/true}]
    """
    check(load_error(tmp_path, text), 2, "pilots", "missing 'pilots'")


def test_empty_units(tmp_path: Path) -> None:
    text = """\
    pilots: [{resource: fork://localhost}]
    units: []
    """
    check(load_error(tmp_path, text), 2, "units", "non-empty list", "empty list")


def test_units_not_a_list(tmp_path: Path) -> None:
    text = """\
    pilots: [{resource: fork://localhost}]
    units:
      executable: /bin/true
    """
    check(load_error(tmp_path, text), 2, "units", "got a mapping")


def test_entry_not_a_mapping(tmp_path: Path) -> None:
    text = """\
    pilots:
      - resource: fork://localhost
      - fork://elsewhere
    units: [{executable: /bin/true}]
    """
    check(load_error(tmp_path, text), 3, "pilots[1]", "expected a mapping", "got a string")


def test_missing_resource(tmp_path: Path) -> None:
    text = """\
    pilots:
      - resource: fork://localhost
      - number_of_processes: 4
        queue: normal
    units: [{executable: /bin/true}]
    """
    check(load_error(tmp_path, text), 3, "pilots[1].resource", "needs 'resource'")


def test_resource_given_twice(tmp_path: Path) -> None:
    text = """\
    pilots:
      - resource: fork://localhost
        rm: ssh://host
    units: [{executable: /bin/true}]
    """
    check(load_error(tmp_path, text), 3, "pilots[0].rm", "repeats 'resource'")


def test_resource_not_a_string(tmp_path: Path) -> None:
    text = """\
    pilots:
      - resource:
    units: [{executable: /bin/true}]
    """
    check(load_error(tmp_path, text), 2, "pilots[0].resource", "non-empty string", "null")


@pytest.mark.parametrize("count", ["0", "-2", "'3'", "true", "1.5"])
def test_count_not_a_positive_integer(tmp_path: Path, count: str) -> None:
    text = f"""\
    pilots: [{{resource: fork://localhost}}]
    units:
      - executable: /bin/true
      - executable: /bin/echo
        count: {count}
    """
    error = load_error(tmp_path, text)
    check(error, 5, "units[1].count", "expected a positive integer")


def test_pilot_count_not_a_positive_integer(tmp_path: Path) -> None:
    text = """\
    pilots:
      - resource: fork://localhost
        count: 0
    units: [{executable: /bin/true}]
    """
    check(load_error(tmp_path, text), 3, "pilots[0].count", "positive integer")


def test_bad_description_value_names_the_attribute_and_its_line(tmp_path: Path) -> None:
    text = """\
    pilots:
      - resource: fork://localhost
        number_of_processes: 0
    units: [{executable: /bin/true}]
    """
    error = load_error(tmp_path, text)
    check(error, 3, "pilots[0].number_of_processes", "must be at least 1, got 0")


def test_bad_value_under_an_alias_names_the_key_as_written(tmp_path: Path) -> None:
    text = """\
    pilots:
      - resource: fork://localhost
        walltime: -5
    units: [{executable: /bin/true}]
    """
    check(load_error(tmp_path, text), 3, "pilots[0].walltime", "must be positive, got -5")


def test_misspelled_attribute_keeps_the_suggestion(tmp_path: Path) -> None:
    text = """\
    pilots: [{resource: fork://localhost}]
    units:
      - executable: /bin/true
      - exectuable: /bin/echo
        arguments: [hi]
    """
    error = load_error(tmp_path, text)
    check(error, 4, "units[1].exectuable", "did you mean 'executable'?")


def test_misspelled_batch_key_suggests_the_batch_key(tmp_path: Path) -> None:
    text = """\
    pilots:
      - resorce: fork://localhost
    units: [{executable: /bin/true}]
    """
    check(load_error(tmp_path, text), 2, "pilots[0].resorce", "did you mean 'resource'?")


def test_missing_executable_is_reported_at_the_entry(tmp_path: Path) -> None:
    text = """\
    pilots: [{resource: fork://localhost}]
    units:
      - executable: /bin/true
      - arguments: [hi]
        output: out.txt
      - executable: /bin/false
    """
    check(load_error(tmp_path, text), 4, "units[1].executable", "needs 'executable'")


def test_bad_item_in_a_list_points_at_the_item(tmp_path: Path) -> None:
    text = """\
    pilots: [{resource: fork://localhost}]
    units:
      - executable: /bin/echo
        arguments:
          - fine
          - [not, a, string]
    """
    check(load_error(tmp_path, text), 6, "units[0].arguments[1]", "string or number")


def test_bad_environment_value_points_at_the_variable(tmp_path: Path) -> None:
    text = """\
    pilots: [{resource: fork://localhost}]
    units:
      - executable: /bin/echo
        environment:
          GOOD: yes please
          BAD: [1, 2]
    """
    check(load_error(tmp_path, text), 6, "units[0].environment.BAD", "expected a string")


def test_duplicate_key(tmp_path: Path) -> None:
    text = """\
    pilots: [{resource: fork://localhost}]
    units:
      - executable: /bin/echo
        output: a.txt
        output: b.txt
    """
    check(load_error(tmp_path, text), 5, "units[0].output", "repeats the one on line 4")


def test_recursive_alias(tmp_path: Path) -> None:
    text = """\
    pilots: [{resource: fork://localhost}]
    units: &loop
      - *loop
    """
    check(load_error(tmp_path, text), 3, "units[0]", "alias")


def test_scheduler_not_a_string(tmp_path: Path) -> None:
    text = """\
    scheduler: [round_robin]
    pilots: [{resource: fork://localhost}]
    units: [{executable: /bin/true}]
    """
    check(load_error(tmp_path, text), 1, "scheduler", "non-empty string", "got a list")


def test_coordination_not_a_string(tmp_path: Path) -> None:
    text = """\
    pilots: [{resource: fork://localhost}]
    units: [{executable: /bin/true}]
    coordination: 42
    """
    check(load_error(tmp_path, text), 3, "coordination", "non-empty string", "42")


SCHEDULED = """\
scheduler: {scheduler}
pilots:
  - resource: fork://localhost
units:
  - executable: /bin/true
    hints: {{runtime: 2.5, tag: short}}
"""


def test_a_scheduler_with_options_and_units_with_hints(tmp_path: Path) -> None:
    text = SCHEDULED.format(scheduler="{name: round_robin, options: {seed: 7, on_error: wait}}")
    batch = load_batch_file(write(tmp_path, text))
    assert batch.scheduler == "round_robin"
    assert batch.scheduler_options == {"seed": 7, "on_error": "wait"}
    assert batch.unit_descriptions()[0]["hints"] == {"runtime": 2.5, "tag": "short"}


def test_a_plain_scheduler_name_still_works(tmp_path: Path) -> None:
    batch = load_batch_file(write(tmp_path, SCHEDULED.format(scheduler="round_robin")))
    assert (batch.scheduler, batch.scheduler_options) == ("round_robin", None)


@pytest.mark.parametrize(
    ("scheduler", "field", "fragments"),
    [
        (
            "{name: round_robin, options: {speed: 2}}",
            "scheduler.options.speed",
            ("no option 'speed'", "seed"),
        ),
        (
            "{name: round_robin, options: {seed: lots}}",
            "scheduler.options.seed",
            ("whole number",),
        ),
        (
            "{name: round_robin, options: {on_error: ignore}}",
            "scheduler.options.on_error",
            ("'fail' or 'wait'",),
        ),
        ("{name: round_robin, option: {seed: 1}}", "scheduler.option", ("unknown key",)),
        ("{options: {seed: 1}}", "scheduler", ("missing 'name'",)),
        ("{name: round_robin, options: [1]}", "scheduler.options", ("mapping",)),
    ],
)
def test_scheduler_options_are_checked_by_the_plugin_with_file_line_and_field(
    tmp_path: Path, scheduler: str, field: str, fragments: tuple[str, ...]
) -> None:
    error = load_error(tmp_path, SCHEDULED.format(scheduler=scheduler))
    check(error, 1, field, *fragments)


def test_hints_must_be_json_values(tmp_path: Path) -> None:
    text = SCHEDULED.format(scheduler="round_robin").replace(
        "{runtime: 2.5, tag: short}", "{when: 2026-12-04}"
    )
    error = load_error(tmp_path, text)
    assert error.field is not None and error.field.startswith("units[0].hints")
    assert "JSON value" in str(error)
