"""Dependencies (after) and sweeps (iterations) through the API, on a local pilot."""

from __future__ import annotations

from pathlib import Path

import pytest

from troy import BadDescription, PilotJobService, State, WorkUnitService
from troy.core.dependencies import find_cycle, readiness


@pytest.fixture
def pilot(pilots: PilotJobService, units: WorkUnitService, tmp_path: Path) -> None:
    units.add(pilots)
    pilots.create(
        "fork://localhost",
        {"number_of_processes": 2, "working_directory": str(tmp_path / "pilot")},
    )


def step(name: str, log: Path, after: list[object] | None = None, **extra: object) -> dict:
    """A unit that appends its name to ``log`` (with a little sleep, so order shows)."""
    description = {
        "name": name,
        "executable": "/bin/sh",
        "arguments": ["-c", f"sleep 0.1; echo {name} >> {log}"],
        **extra,
    }
    if after is not None:
        description["after"] = after
    return description


def test_a_diamond_runs_in_dependency_order(
    pilot: None, units: WorkUnitService, tmp_path: Path
) -> None:
    log = tmp_path / "order.log"
    # Submitted in reverse: the order of the list must not matter.
    submitted = units.submit(
        [
            step("join", log, ["left", "right"]),
            step("left", log, ["start"]),
            step("right", log, ["start"]),
            step("start", log),
        ]
    )
    units.wait(timeout=60)
    assert [u.state for u in submitted] == [State.Done] * 4
    order = log.read_text().split()
    assert order[0] == "start" and order[-1] == "join"
    assert sorted(order[1:3]) == ["left", "right"]
    join, left, right, start = submitted
    assert join.timestamp(State.Running) >= max(left.history[-1][1], right.history[-1][1])
    assert left.timestamp(State.Running) >= start.history[-1][1]
    # Stored resolved: ids, so a reconnecting process needs no names.
    assert {d["unit"] for d in join.description.after} == {left.id, right.id}


def test_a_failure_cancels_exactly_its_dependents(
    pilot: None, units: WorkUnitService, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    bad = {"name": "bad", "executable": "/bin/sh", "arguments": ["-c", "exit 3"]}
    submitted = units.submit(
        [
            bad,
            step("child", log, ["bad"]),
            step("grandchild", log, ["child"]),
            step("tolerant", log, [{"unit": "bad", "regardless": True}]),
            step("bystander", log),
        ]
    )
    units.wait(timeout=60)
    states = {u.description.name: u.state for u in submitted}
    assert states == {
        "bad": State.Failed,
        "child": State.Canceled,
        "grandchild": State.Canceled,
        "tolerant": State.Done,
        "bystander": State.Done,
    }
    child, grandchild = submitted[1], submitted[2]
    assert child.state_detail == f"dependency {submitted[0].id} ended Failed"
    assert grandchild.state_detail == f"dependency {child.id} ended Canceled"
    assert sorted(log.read_text().split()) == ["bystander", "tolerant"]  # nothing else ran


def test_unknown_names_and_cycles_are_refused_and_nothing_is_recorded(
    pilot: None, units: WorkUnitService, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    with pytest.raises(BadDescription, match=r"after of unit #1.*'nobody'"):
        units.submit([step("a", log), step("b", log, ["nobody"])])
    with pytest.raises(BadDescription, match=r"cycle: (a -> b -> a|b -> a -> b)"):
        units.submit([step("a", log, ["b"]), step("b", log, ["a"])])
    with pytest.raises(BadDescription, match="names the unit itself"):
        units.submit(step("selfish", log, ["selfish"]))
    assert units.list() == []
    # The refused names were forgotten: a later unit cannot depend on them.
    with pytest.raises(BadDescription, match="'a'"):
        units.submit(step("c", log, ["a"]))


def test_a_later_submit_may_depend_on_earlier_units(
    pilot: None, units: WorkUnitService, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    first = units.submit(step("first", log))
    second = units.submit(step("second", log, [first.id]))  # by id
    units.wait(timeout=60)
    assert (first.state, second.state) == (State.Done, State.Done)
    assert log.read_text().split() == ["first", "second"]


def test_a_sweep_expands_and_substitutes_its_value(
    pilot: None, units: WorkUnitService, tmp_path: Path
) -> None:
    sweep = {
        "name": "square",
        "executable": "/bin/sh",
        "arguments": ["-c", "echo $((${it} * ${it})) $TROY_INDEX $X"],
        "environment": {"X": "x${it}"},
        "output": "out-${it}.txt",
        "iterations": {"start": 2, "stop": 8, "step": 2},
    }
    with pytest.raises(BadDescription, match="submit it in a list"):
        units.submit(sweep)
    total = {"name": "total", "executable": "/bin/true", "after": ["square"]}
    one = {"name": "one", "executable": "/bin/true", "after": ["square:4"]}
    submitted = units.submit([sweep, total, one])
    assert len(submitted) == 5
    units.wait(timeout=60)
    squares, total_unit, one_unit = submitted[:3], submitted[3], submitted[4]
    for index, (unit, value) in enumerate(zip(squares, (2, 4, 6), strict=True)):
        assert unit.state == State.Done
        assert unit.description.iteration == value
        out = Path(unit.sandbox or "", f"out-{value}.txt").read_text()
        assert out == f"{value * value} {index} x{value}\n"
    assert {d["unit"] for d in total_unit.description.after} == {u.id for u in squares}
    assert [d["unit"] for d in one_unit.description.after] == [squares[1].id]
    assert total_unit.timestamp(State.Running) >= max(u.history[-1][1] for u in squares)


def test_a_list_of_values_is_a_sweep(units: WorkUnitService) -> None:
    # No pilot: the units are only recorded; the expansion is what is checked.
    submitted = units.submit(
        [{"executable": "/bin/echo", "arguments": ["${it}"], "iterations": ["a", "b"]}]
    )
    assert [u.description.arguments for u in submitted] == [["a"], ["b"]]
    assert [u.description.environment["TROY_INDEX"] for u in submitted] == ["0", "1"]


@pytest.mark.parametrize(
    ("iterations", "match"),
    [
        ({"start": 0}, "needs 'stop'"),
        ({"stop": 3, "step": 0}, "must not be 0"),
        ({"start": 5, "stop": 1}, "has no values"),
        ([], "empty list"),
        ([1, "1"], "must differ"),
        ("1..3", "expected"),
    ],
)
def test_bad_iterations_are_refused(units: WorkUnitService, iterations: object, match: str) -> None:
    with pytest.raises(BadDescription, match=match):
        units.submit([{"executable": "/bin/true", "iterations": iterations}])


def test_cycle_finder() -> None:
    assert find_cycle({"a": ["b"], "b": ["c"], "c": []}) is None
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]
    assert find_cycle({"x": ["y"], "y": ["y"]}) == ["y", "y"]


def test_readiness() -> None:
    states = {"a": State.Done, "b": State.Running, "c": State.Failed}
    assert readiness([{"unit": "a"}], states.get) == ("ready", "")
    assert readiness([{"unit": "a"}, {"unit": "b"}], states.get)[0] == "wait"
    assert readiness([{"unit": "c", "regardless": True}], states.get) == ("ready", "")
    assert readiness([{"unit": "c"}], states.get) == ("cancel", "dependency c ended Failed")
