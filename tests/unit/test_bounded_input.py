"""Bounded, typed input (issue 17): every hole found by trying inputs as a careless or
hostile user would is a clear error naming the field, before anything runs.

Before: each of these was a MemoryError, OverflowError, ValueError traceback, or
ran out of time and memory.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from troy import BadBatchFile, BadDescription, PilotJobService, TroyError, WorkUnitDescription
from troy.cli.batchfile import load_batch_file
from troy.core import sweeps
from troy.model import limits

PILOT = 'pilots: [{resource: "fork://localhost"}]\n'
UNIT = "units: [{executable: /bin/true}]\n"


def load(tmp_path: Path, text: str) -> BadBatchFile:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    with pytest.raises(BadBatchFile) as caught:
        load_batch_file(path)
    return caught.value


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        (PILOT + "units: [{executable: /bin/true, count: 1000000000}]", "units[0].count",
         "a count of 1000000000 is over the limit of 1000000 units"),
        ('pilots: [{resource: "fork://localhost", count: 100000000}]\n' + UNIT,
         "pilots[0].count", "over the limit of 1000 pilots"),
        (PILOT + "units: [{executable: /bin/true, iterations: {stop: 1000000000000}}]",
         "units[0].iterations", "a sweep of 1000000000000 values is over the limit"),
        (PILOT + "units: [{executable: /bin/true, iterations: {stop: " + "9" * 31 + "}}]",
         "units[0].iterations.stop", "a number of 31 digits is out of range"),
        (PILOT + "units: [{executable: /bin/true, iterations: [1, .nan]}]",
         "units[0].iterations[1]", "expected a finite number, got nan"),
        ('pilots: [{resource: "fork://localhost", number_of_processes: "²"}]\n' + UNIT,
         "pilots[0].number_of_processes", "expected an integer"),
        ('pilots: [{resource: "fork://localhost", number_of_processes: 100000000}]\n' + UNIT,
         "pilots[0].number_of_processes", "over the limit of 65536 slots"),
        (PILOT + 'units: [{executable: "/bin/tr\\0ue"}]', "units[0].executable",
         "must not contain a NUL character"),
        (PILOT + 'units: [{executable: /bin/true, arguments: ["\\uD800"]}]',
         "units[0].arguments[0]", "lone surrogate"),
        (PILOT + 'units: [{executable: /bin/true, environment: {A: "x\\0y"}}]',
         "units[0].environment.A", "NUL"),
        (PILOT + "units: [{executable: /bin/true, wall_time_limit: 1" + "0" * 315 + "}]",
         "units[0].wall_time_limit", "a number of 316 digits is out of range"),
        ('pilots: [{resource: "http://[::1"}]\n' + UNIT, "pilots[0].resource",
         "not a valid URL"),
        (PILOT + "units: [{executable: /bin/true, count: 600000},"
                 " {executable: /bin/true, iterations: {stop: 600000}}]",
         "units", "a file of 1200000 units is over the limit"),
    ],
)  # fmt: skip
def test_a_bad_value_is_an_error_naming_its_field(
    tmp_path: Path, text: str, field: str, words: str
) -> None:
    error = load(tmp_path, text + "\n")
    assert error.field == field
    assert words in str(error)


def test_a_yaml_alias_bomb_is_refused_quickly_whatever_key_it_is_under(tmp_path: Path) -> None:
    levels = ['a0: &a0 ["x","x","x","x","x","x","x","x","x"]']
    for level in range(1, 9):
        below = f"*a{level - 1}"
        levels.append(f"a{level}: &a{level} [{', '.join([below] * 9)}]")
    error = load(tmp_path, "\n".join(levels) + "\n" + PILOT + UNIT)  # 9**9 values
    assert "holds more than 500000 values" in str(error)
    assert "TROY_LIMITS=yaml_values=N" in str(error)


def test_limits_can_be_raised_and_a_wrong_setting_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "run.yaml"
    path.write_text('pilots: [{resource: "fork://localhost", count: 1001}]\n' + UNIT)
    monkeypatch.setenv("TROY_LIMITS", "pilots=2000")
    assert load_batch_file(path).pilot_count == 1001
    monkeypatch.setenv("TROY_LIMITS", "pilots=2000, file_bytes=10")
    assert "over the limit of 10 bytes" in str(load(tmp_path, PILOT + UNIT))
    monkeypatch.setenv("TROY_LIMITS", "unit=5")
    with pytest.raises(BadDescription, match="unknown limit 'unit'"):
        limits.current()
    monkeypatch.setenv("TROY_LIMITS", "units=²")
    with pytest.raises(BadDescription, match=r"TROY_LIMITS\.units: expected a whole number"):
        limits.current()


def test_descriptions_through_the_api_are_bounded_too(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(BadDescription, match=r"environment\.PATH: must not contain a NUL"):
        WorkUnitDescription(executable="/bin/true", environment={"PATH": "/bin\0"})
    with pytest.raises(BadDescription, match=r"wall_time_limit: .* out of range"):
        WorkUnitDescription(executable="/bin/true", wall_time_limit=10**400)
    monkeypatch.setenv("TROY_LIMITS", "units=10")
    sweep = WorkUnitDescription(executable="/bin/true", iterations={"stop": 6})
    with pytest.raises(BadDescription, match="a submit of 12 units"):
        sweeps.expand_all([sweep, sweep])
    assert len(sweeps.expand_all([sweep])) == 6


def test_a_malformed_resource_url_is_a_troy_error(tmp_path: Path) -> None:
    with PilotJobService(coordination=str(tmp_path / "c")) as service:
        with pytest.raises(TroyError, match="is not a valid URL: Invalid IPv6 URL"):
            service.create("http://[::1", {"number_of_processes": 1})
        assert service.list() == []  # nothing recorded


def test_anchors_and_merge_keys_still_work_under_the_values_budget(tmp_path: Path) -> None:
    text = textwrap.dedent(
        """\
        defaults: &defaults {number_of_processes: 2}
        pilots:
          - {<<: *defaults, resource: "fork://localhost"}
          - {<<: *defaults, resource: "fork://localhost"}
        units: [{executable: /bin/true}]
        """
    )
    path = tmp_path / "run.yaml"
    path.write_text(text)
    with pytest.raises(BadBatchFile, match="unknown key 'defaults'"):
        load_batch_file(path)  # anchors still work; only the unknown key is wrong


@pytest.mark.parametrize("field", ["working_directory", "output", "error", "input"])
def test_relative_unit_paths_stay_under_their_directory(tmp_path: Path, field: str) -> None:
    """Before: ``output: ../../x`` and ``working_directory: ../../d`` wrote outside the
    pilot directory although the docs say relative names stay under it."""
    for escaping in ("../../x", "a/../../x", ".."):
        error = load(tmp_path, PILOT + f"units: [{{executable: /bin/true, {field}: '{escaping}'}}]")
        assert error.field == f"units[0].{field}"
        assert "leads out of the" in str(error) and "give an absolute path" in str(error)
    for fine in ("x", "a/../x", "./x", "/abs/x", "~/x"):
        WorkUnitDescription(executable="/bin/true", **{field: fine}).validate()
