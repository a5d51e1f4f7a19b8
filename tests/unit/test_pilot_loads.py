"""Per-pilot load counters, and the offers made from them, match the units they count."""

from __future__ import annotations

import random
import threading
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from troy.core.data_locator import DataLocator
from troy.core.dependencies import DependencyTracker
from troy.core.placement import PilotLoads, Placement
from troy.model.description import PilotJobDescription
from troy.model.states import State
from troy.plugins import registry

PILOTS = [None, "p1", "p2", "p3"]
STATES = [State.New, State.Pending, State.Running, State.Done, State.Failed, State.Canceled]


def _rescan(units: dict[str, tuple[int, str | None, State]]) -> dict[str, dict[str, int]]:
    """The counters as a full scan of the units finds them (zeros left out)."""
    queued: Counter[str] = Counter()
    running: Counter[str] = Counter()
    busy: Counter[str] = Counter()
    for cores, pilot, state in units.values():
        if pilot is None:
            continue
        if state == State.Pending:
            queued[pilot] += 1
        elif state == State.Running:
            running[pilot] += 1
            busy[pilot] += cores
    return {"queued": dict(+queued), "running": dict(+running), "busy": dict(+busy)}


def _counted(loads: PilotLoads) -> dict[str, dict[str, int]]:
    def nonzero(counts: dict[str, int]) -> dict[str, int]:
        assert all(value >= 0 for value in counts.values()), counts
        return {pilot: value for pilot, value in counts.items() if value}

    return {
        "queued": nonzero(loads.queued),
        "running": nonzero(loads.running),
        "busy": nonzero(loads.busy),
    }


def test_counters_equal_a_full_rescan_after_any_sequence_of_moves() -> None:
    draw = random.Random(13)
    loads = PilotLoads()
    units: dict[str, tuple[int, str | None, State]] = {}
    for step in range(5_000):
        unit_id = f"u{draw.randrange(200)}"
        if unit_id not in units:
            units[unit_id] = (draw.randint(1, 4), None, State.New)
            continue
        cores, pilot, state = units[unit_id]
        after = (draw.choice(PILOTS), draw.choice(STATES))
        if draw.random() < 0.1:
            after = (pilot, state)  # a stale or repeated event moves nothing
        loads.move(cores, (pilot, state), after)
        units[unit_id] = (cores, *after)
        if step % 250 == 0:
            assert _counted(loads) == _rescan(units)
    assert _counted(loads) == _rescan(units)


def _pilot(pilot_id: str, **fields: Any) -> SimpleNamespace:
    values: dict[str, Any] = {
        "id": pilot_id,
        "state": State.Running,
        "canceling": False,
        "slots": 2,
        "description": PilotJobDescription({"number_of_processes": 2}),
    }
    return SimpleNamespace(**(values | fields))


def _placement(tmp_path: Path, pilots: list[SimpleNamespace]) -> Placement:
    coordination = registry.open_coordination((tmp_path / "coordination").as_uri(), serve=True)
    return Placement(
        "wus-test",
        coordination,
        registry.load("scheduler", "round_robin")(),
        {},
        threading.RLock(),
        lambda: list(pilots),  # type: ignore[arg-type]
        lambda events: None,
        DependencyTracker(),
        DataLocator(coordination),
    )


def _as_values(placement: Placement) -> list[tuple[Any, ...]]:
    return [
        (o.id, o.state, o.slots, o.queued, o.running, o.busy, o.datacenter, dict(o.hints))
        for o in placement.offers()
    ]


def test_offers_follow_every_change_of_pilot_and_counters(tmp_path: Path) -> None:
    a, b, c = _pilot("a"), _pilot("b"), _pilot("c", state=State.Pending, slots=None)
    placement = _placement(tmp_path, [a, b, c])
    assert _as_values(placement) == [
        ("a", State.Running, 2, 0, 0, 0, None, {}),
        ("b", State.Running, 2, 0, 0, 0, None, {}),
        ("c", State.Pending, None, 0, 0, 0, None, {}),
    ]

    placement.loads.move(2, (None, State.New), ("a", State.Pending))
    placement.loads.move(1, (None, State.New), ("b", State.Running))
    c.state, c.slots = State.Running, 4
    assert _as_values(placement) == [
        ("a", State.Running, 2, 1, 0, 0, None, {}),
        ("b", State.Running, 2, 0, 1, 1, None, {}),
        ("c", State.Running, 4, 0, 0, 0, None, {}),
    ]

    # Reinitialized: a new description; canceling and final pilots are not offered.
    a.description = PilotJobDescription(
        {"number_of_processes": 2, "affinity_datacenter_label": "dc", "hints": {"speed": 2}}
    )
    b.canceling = True
    c.state = State.Failed
    assert _as_values(placement) == [("a", State.Running, 2, 1, 0, 0, "dc", {"speed": 2})]

    placement.only_pilots = frozenset({"b", "c"})
    assert placement.offers() == []
    placement.coordination.close()
