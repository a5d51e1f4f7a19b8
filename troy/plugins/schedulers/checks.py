"""What the caller of a scheduler checks: the unit manager (troy.core.placement) and the simulator.

Pure functions over the plain values of the contract (troy.plugins.schedulers.base),
so a real run and a simulation refuse the same results with the same messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from troy.model.errors import SchedulerError
from troy.plugins.schedulers.base import PilotOffer, Scheduler, UnitRequest


def call_place(
    scheduler: Scheduler, requests: Sequence[UnitRequest], offers: Sequence[PilotOffer]
) -> Mapping[Any, Any]:
    """The scheduler's placement; SchedulerError if it raised or returned no mapping.

    The caller asks `Scheduler.next_call` afterwards, whatever happened.
    """
    name = scheduler.name
    try:
        placement = scheduler.place(requests, offers)
    except Exception as exc:
        raise SchedulerError(f"scheduler '{name}' failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(placement, Mapping):
        raise SchedulerError(
            f"scheduler '{name}' returned {type(placement).__name__}, not a mapping "
            "of unit id to pilot id or None"
        )
    return placement


def checked_choices(
    name: str,
    placement: Mapping[Any, Any],
    requests: Mapping[str, UnitRequest],
    offers: Mapping[str, PilotOffer],
) -> list[tuple[str, str]]:
    """(unit id, pilot id) for each unit placed, in the mapping's order; SchedulerError if wrong.

    ``requests`` are the units offered and ``offers`` the pilots, by id.  A key that
    is not an offered unit, a value that is not None or an offered pilot's id, or a
    pilot that cannot hold the unit is refused, naming scheduler ``name``.  A unit
    left where it is (its ``queued_on`` pilot) is included: the caller skips it.
    """
    chosen: list[tuple[str, str]] = []
    for unit_id, pilot_id in placement.items():
        request = requests.get(unit_id) if isinstance(unit_id, str) else None
        if request is None:
            raise SchedulerError(
                f"scheduler '{name}' placed unit {unit_id!r}, which it was not offered"
            )
        if pilot_id is None:
            continue
        if not isinstance(pilot_id, str):
            raise SchedulerError(
                f"scheduler '{name}' gave {type(pilot_id).__name__} {pilot_id!r} for unit "
                f"{unit_id}; expected a pilot id (str) or None"
            )
        offer = offers.get(pilot_id)
        if offer is None:
            raise SchedulerError(
                f"scheduler '{name}' placed {unit_id} on unknown pilot {pilot_id!r}"
            )
        if not offer.can_hold(request.cores):
            raise SchedulerError(
                f"scheduler '{name}' placed {unit_id} ({request.cores} slots) on pilot "
                f"{pilot_id}, which cannot hold it ({offer.slots} slots, {offer.state})"
            )
        chosen.append((unit_id, pilot_id))
    return chosen


def largest_pilot(offers: Iterable[PilotOffer]) -> int | None:
    """Slots of the largest pilot offered; None if one is of unknown size (it may hold anything)."""
    largest: int | None = None
    for offer in offers:
        if offer.slots is None:
            return None
        if largest is None or offer.slots > largest:
            largest = offer.slots
    return largest


def too_big(cores: int, largest: int) -> str:
    """state_detail of a unit that fails because no live pilot can ever hold it."""
    return f"needs {cores} slots; the largest pilot has {largest}"
