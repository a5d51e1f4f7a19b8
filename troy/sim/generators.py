"""Runtime distributions of the unit generators, and the shape of the DAG generator.

Each distribution reads its parameters from a unit entry and draws runtimes
(seconds on a pilot of speed 1) from the workload's one `random.Random`:

``fixed``
    ``runtime`` (>= 0): every unit runs that long; draws nothing.
``uniform``
    ``low``, ``high`` (0 <= low <= high): ``rng.uniform(low, high)``.
``lognormal``
    ``mean`` (> 0) is the arithmetic mean of the runtimes, ``sigma`` (>= 0) the
    standard deviation of their natural logarithm: runtime = exp(N(mu, sigma))
    with mu = ln(mean) - sigma**2 / 2, so the median is mean * exp(-sigma**2 / 2).
``pareto``
    ``shape`` (alpha > 0), ``scale`` (x_m > 0), optional ``cap`` (>= scale):
    runtime = min(cap, scale * rng.paretovariate(shape)), never below scale.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from troy.model.documents import Location
from troy.sim.fields import Fields

#: Draws one runtime.
Sampler = Callable[[random.Random], float]

#: Each distribution's parameters (required ones first; ``cap`` is optional).
DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "fixed": ("runtime",),
    "uniform": ("low", "high"),
    "lognormal": ("mean", "sigma"),
    "pareto": ("shape", "scale", "cap"),
}
_OPTIONAL = ("cap",)
#: The generators: the distributions, plus a bag of tasks with inputs and a layered DAG.
GENERATORS = (*DISTRIBUTIONS, "bag", "dag")
DAG_KEYS = ("layers", "width", "fan_in")


def distribution_keys(name: str) -> tuple[str, ...]:
    """The keys the distribution `name` reads."""
    return DISTRIBUTIONS[name]


def sampler(fields: Fields, location: Location, name: str, entry: dict[Any, Any]) -> Sampler:
    """The sampler of distribution `name` with its parameters from `entry` (all checked)."""
    required = tuple(key for key in DISTRIBUTIONS[name] if key not in _OPTIONAL)
    what = f" (a {name} distribution needs {', '.join(required)})"
    for key in required:
        if key not in entry:
            raise fields.fail((*location, key), f"missing '{key}'{what}")

    def value(key: str, **bounds: float) -> float:
        return fields.number((*location, key), entry[key], **bounds)

    if name == "fixed":
        runtime = value("runtime", minimum=0.0)
        return lambda rng: runtime
    if name == "uniform":
        low = value("low", minimum=0.0)
        high = value("high", minimum=low)
        return lambda rng: rng.uniform(low, high)
    if name == "lognormal":
        mean = value("mean", above=0.0)
        sigma = value("sigma", minimum=0.0)
        mu = math.log(mean) - sigma * sigma / 2
        return lambda rng: rng.lognormvariate(mu, sigma)
    shape = value("shape", above=0.0)
    scale = value("scale", above=0.0)
    if "cap" not in entry:
        return lambda rng: scale * rng.paretovariate(shape)
    cap = value("cap", minimum=scale)
    return lambda rng: min(cap, scale * rng.paretovariate(shape))


@dataclass(frozen=True)
class DagShape:
    """A layered DAG: `layers` layers of `width` units; each unit past the first layer
    waits for `fan_in` distinct units of the layer before, drawn at random."""

    layers: int
    width: int
    fan_in: int

    @property
    def count(self) -> int:
        """How many units it has."""
        return self.layers * self.width

    def parents(self, rng: random.Random, index: int) -> list[int]:
        """Indexes of the units unit `index` waits for (drawn unless the layer is first)."""
        layer = index // self.width
        if layer == 0:
            return []
        first = (layer - 1) * self.width
        if self.fan_in == self.width:
            return list(range(first, first + self.width))
        return sorted(first + pick for pick in rng.sample(range(self.width), self.fan_in))


def dag_shape(fields: Fields, location: Location, entry: dict[Any, Any], limit: int) -> DagShape:
    """The DAG's layers, width and fan_in (1 <= fan_in <= width; layers * width <= limit)."""
    for key in DAG_KEYS:
        if key not in entry:
            raise fields.fail(
                (*location, key), f"missing '{key}' (a dag needs {', '.join(DAG_KEYS)})"
            )
    layers = fields.integer((*location, "layers"), entry["layers"], minimum=1, maximum=limit)
    width = fields.integer((*location, "width"), entry["width"], minimum=1, maximum=limit)
    fan_in = fields.integer((*location, "fan_in"), entry["fan_in"], minimum=1)
    if fan_in > width:
        message = f"fan_in {fan_in} is more than the width {width} of the layer before"
        raise fields.fail((*location, "fan_in"), message)
    if layers * width > limit:
        message = f"layers x width is {layers * width:,} units; at most {limit:,} allowed"
        raise fields.fail((*location, "layers"), message)
    return DagShape(layers, width, fan_in)
