"""The unit entries of a workload file: explicit, generated, or replayed from a trace.

`read_entry` checks one entry (reading a trace it names) into a `UnitEntry`;
`UnitEntry.expand` draws its units.  Checking draws nothing, so every problem
is found before the first random number.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from troy.model.description import WorkUnitDescription
from troy.model.documents import Location, closest, kind
from troy.model.errors import BadDescription
from troy.sim.fields import MAX_COUNT, MAX_SIZE_MB, Fields
from troy.sim.generators import (
    DAG_KEYS,
    DISTRIBUTIONS,
    GENERATORS,
    DagShape,
    Sampler,
    dag_shape,
    sampler,
)
from troy.sim.model import NO_HINTS, SimInput, SimUnit
from troy.sim.traces import Trace, TraceJob, read_swf, read_units_csv

#: Keys every form of unit entry takes.
COMMON_KEYS = (
    "name",
    "after",
    "hints",
    "runtime_hint",
    "labels",
    "affinity_machine_label",
    "affinity_datacenter_label",
    "inputs",
    "wall_time_limit",
    "total_cpu_time",
    "retries",
)
EXPLICIT_KEYS = ("runtime", "count", "cores", "submit", *COMMON_KEYS)
TRACE_KEYS = ("trace", "format", "run", "limit", "submit", *COMMON_KEYS)
_GENERATED_KEYS = ("generator", "count", "cores", "submit", *COMMON_KEYS)
#: Unit-description attributes an explicit entry may carry for a real run; not simulated.
DESCRIPTION_KEYS = tuple(
    key
    for key in WorkUnitDescription.field_names()
    if key not in EXPLICIT_KEYS and key not in ("iterations", "iteration")
)
TRACE_FORMATS = ("swf", "csv")


@dataclass(frozen=True)
class InputSpec:
    """One ``inputs`` item: a data unit per unit in `store`, of `size` bytes or drawn in MB."""

    store: str
    size: int | None
    low_mb: float = 0.0
    high_mb: float = 0.0
    #: Its index in an ``inputs`` list (None for a single mapping): part of the URL.
    index: int | None = None

    def draw(self, rng: random.Random, unit_id: str) -> SimInput:
        """The data unit of unit `unit_id`, its size drawn if given as a range."""
        size = self.size
        if size is None:
            size = round(rng.uniform(self.low_mb, self.high_mb) * 1e6)
        suffix = "" if self.index is None else f"/{self.index}"
        return SimInput(f"sim://{self.store}/{unit_id}{suffix}", self.store, size)


@dataclass
class UnitEntry:
    """One checked unit entry, not yet drawn."""

    name: str
    location: Location
    count: int
    #: Names of the entries its units wait for.
    after: tuple[str, ...] = ()
    cores: int = 1
    submit: float = 0.0
    machine: str | None = None
    datacenter: str | None = None
    inputs: tuple[InputSpec, ...] = ()
    hints: dict[str, Any] = field(default_factory=dict)
    runtime_hint: bool = False
    wall_time_limit: float | None = None
    total_cpu_time: float | None = None
    retries: int = 0
    runtime: Sampler | None = None
    dag: DagShape | None = None
    jobs: list[TraceJob] | None = None
    #: The trace file its jobs come from (their lines are in `jobs`).
    trace: str | None = None
    #: An explicit entry's unit-description attributes (executable ...), for a real run.
    command: Mapping[str, Any] | None = None

    def ids(self) -> list[str]:
        """Its units' ids: ``NAME.0`` ... ``NAME.<count-1>``."""
        return [f"{self.name}.{index}" for index in range(self.count)]

    def expand(self, rng: random.Random, after: tuple[str, ...], out: list[SimUnit]) -> None:
        """Append its units to `out`, drawing from `rng`: per unit, in id order, its runtime,
        its input sizes, then (a DAG) the units it waits for.  `after` are the ids of the
        units of the entries it names, which every unit waits for (a DAG: its first layer)."""
        hints: Mapping[str, Any] = MappingProxyType(self.hints) if self.hints else NO_HINTS
        name, dag, specs, jobs, draw = self.name, self.dag, self.inputs, self.jobs, self.runtime
        machine, datacenter, cpu, retries = (
            self.machine,
            self.datacenter,
            self.total_cpu_time,
            self.retries,
        )
        for index in range(self.count):
            unit_id = f"{name}.{index}"
            if jobs is not None:
                job = jobs[index]
                runtime, cores, submit = job.runtime, job.cores, self.submit + job.submit
                limit = self.wall_time_limit
                if limit is None:
                    limit = job.wall_time_limit
            else:
                assert draw is not None
                runtime, cores, submit, limit = (
                    draw(rng),
                    self.cores,
                    self.submit,
                    self.wall_time_limit,
                )
            inputs = tuple([spec.draw(rng, unit_id) for spec in specs]) if specs else ()
            waits = after
            if dag is not None and index >= dag.width:
                waits = tuple([f"{name}.{parent}" for parent in dag.parents(rng, index)])
            if self.runtime_hint:
                unit_hints: Mapping[str, Any] = MappingProxyType({**hints, "runtime": runtime})
            else:
                unit_hints = hints
            out.append(
                SimUnit(
                    unit_id,
                    name,
                    runtime,
                    cores,
                    submit,
                    datacenter,
                    machine,
                    inputs,
                    waits,
                    unit_hints,
                    limit,
                    cpu,
                    retries,
                    self.command,
                )
            )


def read_entry(fields: Fields, location: Location, entry: Any, stores: list[str]) -> UnitEntry:
    """One unit entry, checked (a trace read), with the names of the workload's stores."""
    entry = fields.mapping(location, entry, "a mapping (a unit entry)")
    if "generator" in entry and "trace" in entry:
        raise fields.fail((*location, "trace"), "give 'generator' or 'trace', not both")
    if "generator" in entry:
        return _generated(fields, location, entry, stores)
    if "trace" in entry:
        return _traced(fields, location, entry, stores)
    return _explicit(fields, location, entry, stores)


def _explicit(
    fields: Fields, location: Location, entry: dict[Any, Any], stores: list[str]
) -> UnitEntry:
    for key in ("iterations", "iteration"):
        if key in entry:
            raise fields.fail((*location, key), "sweeps are not simulated; give 'count' instead")
    fields.keys(location, entry, (*EXPLICIT_KEYS, *DESCRIPTION_KEYS))
    if "runtime" not in entry:
        message = "missing 'runtime' (seconds), or give 'generator' or 'trace'"
        raise fields.fail((*location, "runtime"), message)
    runtime = fields.number((*location, "runtime"), entry["runtime"], minimum=0.0)
    description = WorkUnitDescription()
    for key in DESCRIPTION_KEYS:
        if key in entry and key not in COMMON_KEYS:
            try:
                description[key] = entry[key]
            except BadDescription as exc:
                raise fields.fail((*location, key), str(exc).partition(": ")[2]) from None
    unit = _common(fields, location, entry, stores, f"unit{location[-1]}")
    unit.runtime = lambda rng: runtime
    if description.as_dict():
        unit.command = MappingProxyType(description.as_dict())
    if "cores" not in entry:
        unit.cores = description.cores  # number_of_processes etc., as a real run counts
    return unit


def _generated(
    fields: Fields, location: Location, entry: dict[Any, Any], stores: list[str]
) -> UnitEntry:
    generator = entry["generator"]
    if not isinstance(generator, str) or generator not in GENERATORS:
        hint = closest(str(generator), GENERATORS)
        known = f"did you mean '{hint}'?" if hint else f"expected one of {', '.join(GENERATORS)}"
        raise fields.fail((*location, "generator"), f"unknown generator {kind(generator)}; {known}")
    distribution = generator
    if generator in ("bag", "dag"):
        distribution = entry.get("distribution", "fixed")
        if not isinstance(distribution, str) or distribution not in DISTRIBUTIONS:
            names = ", ".join(DISTRIBUTIONS)
            raise fields.fail(
                (*location, "distribution"), f"expected one of {names}, got {kind(distribution)}"
            )
    extra: tuple[str, ...] = DISTRIBUTIONS[distribution]
    if generator in ("bag", "dag"):
        extra = ("distribution", *extra)
    allowed = (*_GENERATED_KEYS, *extra)
    if generator == "dag":
        allowed = tuple(key for key in (*allowed, *DAG_KEYS) if key != "count")
    fields.keys(location, entry, allowed, what=f" for generator '{generator}'")
    if generator == "bag" and "inputs" not in entry:
        raise fields.fail(
            (*location, "inputs"), "missing 'inputs': a bag gives each task its input"
        )
    runtime = sampler(fields, location, distribution, entry)
    dag = None
    if generator == "dag":
        dag = dag_shape(fields, location, entry, MAX_COUNT)
    unit = _common(fields, location, entry, stores, f"{generator}{location[-1]}")
    unit.runtime = runtime
    if dag is not None:
        unit.dag, unit.count = dag, dag.count
    return unit


def _traced(
    fields: Fields, location: Location, entry: dict[Any, Any], stores: list[str]
) -> UnitEntry:
    fields.keys(location, entry, TRACE_KEYS, what=" for a trace")
    trace = fields.text((*location, "trace"), entry["trace"])
    path = os.path.join(os.path.dirname(fields.name), trace)
    if not os.path.isfile(path):
        raise fields.fail((*location, "trace"), f"no such trace file: {path}")
    form = entry.get("format")
    if form is None:
        form = os.path.splitext(trace)[1].lstrip(".").lower()
        if form not in TRACE_FORMATS:
            message = "cannot tell the trace's format from its name; give 'format: swf' or 'csv'"
            raise fields.fail((*location, "trace"), message)
    elif form not in TRACE_FORMATS:
        raise fields.fail((*location, "format"), f"expected swf or csv, got {kind(form)}")
    run = None
    if "run" in entry:
        if form != "csv":
            raise fields.fail((*location, "run"), "only a CSV trace holds several runs")
        run = fields.mapping((*location, "run"), entry["run"], "a mapping of column: value")
        fields.keys((*location, "run"), run, ("scheduler", "mode", "repetition"))
        run = {key: str(value) for key, value in run.items()}
    context = f" (the trace of {fields.name} units[{location[-1]}])"
    loaded: Trace = read_swf(path, context) if form == "swf" else read_units_csv(path, run, context)
    jobs = loaded.jobs
    if "limit" in entry:
        jobs = jobs[: fields.integer((*location, "limit"), entry["limit"], minimum=1)]
    if not jobs:
        message = (
            f"the trace has no jobs to replay ({loaded.skipped} skipped: not run or no processors)"
        )
        raise fields.fail((*location, "trace"), message)
    if len(jobs) > MAX_COUNT:
        message = f"the trace has {len(jobs):,} jobs; at most {MAX_COUNT:,} allowed (give 'limit')"
        raise fields.fail((*location, "trace"), message)
    first = min(job.submit for job in jobs)
    shifted = [
        TraceJob(job.line, job.submit - first, job.runtime, job.cores, job.wall_time_limit)
        for job in jobs
    ]
    stem = os.path.splitext(os.path.basename(trace))[0] or f"trace{location[-1]}"
    unit = _common(fields, location, entry, stores, stem)
    unit.jobs, unit.count = shifted, len(shifted)
    unit.trace = path
    return unit


def _common(
    fields: Fields, location: Location, entry: dict[Any, Any], stores: list[str], default: str
) -> UnitEntry:
    def at(key: str) -> Location:
        return (*location, key)

    name = fields.text(at("name"), entry["name"]) if "name" in entry else default
    count = 1
    if "count" in entry:
        count = fields.integer(at("count"), entry["count"], minimum=1, maximum=MAX_COUNT)
    unit = UnitEntry(name, location, count)
    if "cores" in entry:
        unit.cores = fields.integer(at("cores"), entry["cores"], minimum=1)
    if "submit" in entry:
        unit.submit = fields.number(at("submit"), entry["submit"], minimum=0.0)
    if "after" in entry:
        unit.after = _after(fields, at("after"), entry["after"])
    if "labels" in entry:
        for key in ("affinity_machine_label", "affinity_datacenter_label"):
            if key in entry:
                raise fields.fail(at(key), "give 'labels' or the affinity_*_label keys, not both")
        unit.machine, unit.datacenter = fields.labels(at("labels"), entry["labels"])
    for key, attribute in (
        ("affinity_machine_label", "machine"),
        ("affinity_datacenter_label", "datacenter"),
    ):
        if key in entry:
            setattr(unit, attribute, fields.text(at(key), entry[key]))
    if "inputs" in entry:
        unit.inputs = _inputs(fields, at("inputs"), entry["inputs"], stores)
    if "hints" in entry:
        unit.hints = fields.json_object(at("hints"), entry["hints"])
    if "runtime_hint" in entry:
        if not isinstance(entry["runtime_hint"], bool):
            raise fields.fail(
                at("runtime_hint"), f"expected true or false, got {kind(entry['runtime_hint'])}"
            )
        unit.runtime_hint = entry["runtime_hint"]
    if "wall_time_limit" in entry:
        unit.wall_time_limit = fields.number(
            at("wall_time_limit"), entry["wall_time_limit"], above=0.0
        )
    if "total_cpu_time" in entry:
        unit.total_cpu_time = fields.number(
            at("total_cpu_time"), entry["total_cpu_time"], minimum=0.0
        )
    if "retries" in entry:
        unit.retries = fields.integer(at("retries"), entry["retries"], minimum=0)
    return unit


def _after(fields: Fields, location: Location, value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise fields.fail(location, f"expected an entry name or a list of them, got {kind(value)}")
    return tuple(fields.text((*location, index), item) for index, item in enumerate(items))


def _inputs(
    fields: Fields, location: Location, value: Any, stores: list[str]
) -> tuple[InputSpec, ...]:
    if isinstance(value, dict):
        return (_input(fields, location, value, stores, None),)
    if not isinstance(value, list) or not value:
        message = f"expected {{store, size_mb}} or a non-empty list of them, got {kind(value)}"
        raise fields.fail(location, message)
    return tuple(
        _input(fields, (*location, index), item, stores, index) for index, item in enumerate(value)
    )


def _input(
    fields: Fields, location: Location, value: Any, stores: list[str], index: int | None
) -> InputSpec:
    value = fields.mapping(location, value, "a mapping {store, size_mb}")
    fields.keys(location, value, ("store", "size_mb"), required=("store", "size_mb"))
    store = fields.text((*location, "store"), value["store"])
    if store not in stores:
        hint = closest(store, stores)
        known = f"did you mean '{hint}'?" if hint else f"stores: {', '.join(stores) or 'none'}"
        raise fields.fail((*location, "store"), f"no store named '{store}'; {known}")
    size = value["size_mb"]
    at = (*location, "size_mb")
    if isinstance(size, list):
        if len(size) != 2:
            raise fields.fail(at, f"expected a size or [low, high], got a list of {len(size)}")
        low = fields.number((*at, 0), size[0], minimum=0.0, maximum=MAX_SIZE_MB)
        high = fields.number((*at, 1), size[1], minimum=low, maximum=MAX_SIZE_MB)
        return InputSpec(store, None, low, high, index)
    megabytes = fields.number(at, size, minimum=0.0, maximum=MAX_SIZE_MB)
    return InputSpec(store, round(megabytes * 1e6), index=index)
