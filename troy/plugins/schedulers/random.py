"""The ``random`` scheduler: each unit to a pilot drawn uniformly among those that can hold it.

Random assignment, the baseline of load-balancing studies (Mitzenmacher,
"The power of two choices in randomized load balancing", IEEE Transactions on
Parallel and Distributed Systems 12(10), 2001, section 1: one random choice
per job).

Rule: each unit, in the order given, goes to a pilot drawn uniformly at random
from the offered pilots that can hold it (in offer order), with one
`random.Random` seeded by ``seed`` (None counts as 0) and kept between calls.
The draws depend only on the seed and on the number of candidates of each
unit, so the same seed, inputs and call history give the same placement in
any process, whatever its ``PYTHONHASHSEED``. A unit no pilot can hold waits
and draws nothing. Units are placed at once (early binding).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import ClassVar

from troy.plugins.schedulers.base import PilotOffer, Scheduler, UnitRequest


class RandomScheduler(Scheduler):
    """Places each unit on a pilot drawn uniformly among those that can hold it."""

    name: ClassVar[str] = "random"

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(seed)
        self._random = random.Random(0 if seed is None else seed)

    def place(
        self, units: Sequence[UnitRequest], pilots: Sequence[PilotOffer]
    ) -> Mapping[str, str | None]:
        """For every unit id given, a random pilot that can hold it, or None."""
        candidates: dict[int, list[str]] = {}
        placement: dict[str, str | None] = {}
        for unit in units:
            fitting = candidates.get(unit.cores)
            if fitting is None:
                fitting = candidates[unit.cores] = [
                    offer.id for offer in pilots if offer.can_hold(unit.cores)
                ]
            placement[unit.id] = self._random.choice(fitting) if fitting else None
        return placement
