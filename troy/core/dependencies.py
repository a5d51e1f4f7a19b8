"""Dependencies between work units: resolving ``after``, refusing cycles, deciding readiness.

At submit every reference in ``after`` (a unit id, a name, or ``name:VALUE``
for one iteration of a sweep) is resolved to unit ids, among the units
already in the service and those submitted with it; the description then
holds the resolved form ``[{"unit": id, "regardless": bool}, ...]``, so a
process that reconnects needs no names. A reference to nothing, a unit that
waits for itself, or a cycle is a BadDescription, and nothing is recorded.

A unit with dependencies is placed only when every one of them is Done (or
final, for those marked ``regardless``); if one it does not run regardless of
ends Failed or Canceled, the unit is Canceled, naming it, and so in turn are
the units waiting for that one.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from troy.model.errors import BadDescription
from troy.model.states import State


def references(after: Any) -> list[tuple[str, bool]]:
    """(reference, regardless) for each item of a validated ``after`` list."""
    pairs = []
    for item in after or ():
        if isinstance(item, Mapping):
            pairs.append((str(item["unit"]), bool(item.get("regardless", False))))
        else:
            pairs.append((str(item), False))
    return pairs


class UnitIndex:
    """Unit ids by id, by name and by ``name:VALUE``, for resolving references."""

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.by_name: dict[str, list[str]] = {}

    def add(self, unit_id: str, name: str | None, iteration: Any) -> None:
        self.ids.add(unit_id)
        if name:
            self.by_name.setdefault(name, []).append(unit_id)
            if iteration is not None:
                self.by_name.setdefault(f"{name}:{iteration}", []).append(unit_id)

    def remove(self, unit_id: str, name: str | None, iteration: Any) -> None:
        """Take back an ``add`` (a submit that was refused)."""
        self.ids.discard(unit_id)
        for key in (name, f"{name}:{iteration}" if name and iteration is not None else None):
            if key and unit_id in self.by_name.get(key, []):
                self.by_name[key].remove(unit_id)
                if not self.by_name[key]:
                    del self.by_name[key]

    def lookup(self, reference: str) -> list[str]:
        if reference in self.ids:
            return [reference]
        return list(self.by_name.get(reference, ()))


def resolve(new: Sequence[tuple[str, Any]], index: UnitIndex) -> dict[str, list[dict[str, Any]]]:
    """Resolved ``after`` of each new unit that has one; BadDescription if any is bad.

    ``new`` is (unit id, description) in submit order; ``index`` must already hold
    them as well as the service's earlier units.
    """
    resolved: dict[str, list[dict[str, Any]]] = {}
    position = {unit_id: number for number, (unit_id, _) in enumerate(new)}
    for number, (unit_id, description) in enumerate(new):
        if not description.get("after"):
            continue
        field = "after" if len(new) == 1 else f"after of unit #{number}"
        chosen: dict[str, bool] = {}
        for reference, regardless in references(description["after"]):
            targets = index.lookup(reference)
            if not targets:
                raise BadDescription(field, f"no unit has the name or id {reference!r}")
            for target in targets:
                if target == unit_id:
                    raise BadDescription(field, f"{reference!r} names the unit itself")
                chosen[target] = chosen.get(target, True) and regardless
        resolved[unit_id] = [{"unit": t, "regardless": r} for t, r in chosen.items()]
    cycle = find_cycle({u: [d["unit"] for d in deps] for u, deps in resolved.items()})
    if cycle:
        names = " -> ".join(_label(new[position[u]][1], u) for u in cycle)
        raise BadDescription("after", f"the dependencies form a cycle: {names}")
    return resolved


def _label(description: Any, unit_id: str) -> str:
    name = description.get("name")
    if not name:
        return unit_id
    iteration = description.get("iteration")
    return f"{name}:{iteration}" if iteration is not None else str(name)


def find_cycle(graph: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A cycle in ``graph`` (node -> the nodes it waits for) as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in graph:
        if state.get(start):
            continue
        path: list[str] = [start]
        iterators = [iter(graph.get(start, ()))]
        state[start] = 1
        while iterators:
            following = next(iterators[-1], None)
            if following is None:
                state[path.pop()] = 2
                iterators.pop()
            elif state.get(following) == 1:
                return [*path[path.index(following) :], following]
            elif not state.get(following) and following in graph:
                state[following] = 1
                path.append(following)
                iterators.append(iter(graph[following]))
    return None


def readiness(
    dependencies: Sequence[Mapping[str, Any]], state_of: Callable[[str], State | None]
) -> tuple[str, str]:
    """("ready" | "wait" | "cancel", why) for a unit with these resolved dependencies."""
    waiting = []
    for dependency in dependencies:
        target = str(dependency["unit"])
        state = state_of(target)
        if state == State.Done or (dependency.get("regardless") and state and state.is_final):
            continue
        if state in (State.Failed, State.Canceled):
            return "cancel", f"dependency {target} ended {state}"
        waiting.append(f"{target} ({state or 'unknown'})")
    if not waiting:
        return "ready", ""
    more = f" and {len(waiting) - 3} more" if len(waiting) > 3 else ""
    return "wait", "waiting for " + ", ".join(waiting[:3]) + more


class DependencyTracker:
    """The dependency side of one unit manager: its index of units and their resolution."""

    def __init__(self) -> None:
        self.index = UnitIndex()
        #: True once any unit has dependencies: only then do unit ends trigger placement.
        self.used = False

    def note(self, unit_id: str, description: Any) -> None:
        """Index a unit known from the service's stream."""
        self.index.add(unit_id, description.get("name"), description.get("iteration"))
        self.used = self.used or bool(description.get("after"))

    def resolve_new(self, new: Sequence[tuple[str, Any]]) -> dict[str, list[dict[str, Any]]]:
        """Index and resolve units about to be submitted; on BadDescription, index nothing."""
        for unit_id, description in new:
            self.index.add(unit_id, description.get("name"), description.get("iteration"))
        try:
            resolved = resolve(new, self.index)
        except BadDescription:
            self.forget(new)
            raise
        self.used = self.used or bool(resolved)
        return resolved

    def forget(self, new: Sequence[tuple[str, Any]]) -> None:
        """Take back ``resolve_new`` for units that were not recorded after all."""
        for unit_id, description in new:
            self.index.remove(unit_id, description.get("name"), description.get("iteration"))


def check_entries(entries: Sequence[Any]) -> tuple[int, str] | None:
    """(entry index, problem) for the first bad ``after`` among batch-file unit entries.

    References must name entries of the file (``name`` or ``name:VALUE`` of a
    sweep); unit ids do not exist yet. None if all is well.
    """
    from troy.core.sweeps import values_of

    named: dict[str, list[int]] = {}
    for index, entry in enumerate(entries):
        name = entry.get("name")
        if name:
            named.setdefault(name, []).append(index)
            for value in values_of(entry.get("iterations") or []):
                named.setdefault(f"{name}:{value}", []).append(index)
    graph: dict[str, list[str]] = {}
    for index, entry in enumerate(entries):
        waits: list[str] = []
        for reference, _ in references(entry.get("after")):
            if reference not in named:
                close = difflib.get_close_matches(reference, list(named), n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                return index, f"no unit in the file is named {reference!r}{hint}"
            waits += [str(other) for other in named[reference]]
        if str(index) in waits:
            return index, "the unit waits for itself"
        graph[str(index)] = waits
    cycle = find_cycle(graph)
    if cycle:
        labels = [entries[int(i)].get("name") or f"units[{i}]" for i in cycle]
        return int(cycle[0]), "the dependencies form a cycle: " + " -> ".join(labels)
    return None
