"""Read a workload file (YAML or JSON) into a validated, expanded `Workload`.

::

    seed: 7                      # optional, default 0: every random draw follows from it
    pilots:                      # a non-empty list
      - name: A                  # required, unique
        slots: 4                 # required: units of 1 core it runs at once (>= 1)
        labels: {machine: m1, datacenter: d1}   # optional
        start_delay: 0.0         # optional, default 0: seconds until it runs units
        speed: 1.0               # optional, default 1 (> 0): a unit of runtime r takes r / speed
        count: 1                 # optional, default 1: ids NAME, else NAME.0 ... NAME.<count-1>
        wall_time: 3600          # optional: seconds it runs once started
        hints: {}                # optional: JSON values, as the scheduler sees them
        resource: fork://localhost   # optional, with pj_type (or rm/service_url):
                                     # for a real run (troy compare --real runs
                                     # local pilots only); ignored by the simulation
    stores:                      # optional: Pilot-Data stores, placed by labels
      - {name: s1, labels: {machine: m1}}
    network: {bandwidth_mb_s: 100, latency_s: 0.001}   # optional; these are the defaults
    overheads: {pilot_start_s: 0.0, unit_start_s: 0.0}  # optional: the pilot system's own
                                 # latencies (`troy.sim.model.Overheads`; default none)
    failures:                    # optional: a pilot entry's name (all its pilots) or a pilot id
      - {pilot: A, at: 30.0}
    units:                       # a non-empty list of entries, in three forms (`troy.sim.units`)
      - {name: u, runtime: 2.5, count: 10, cores: 1}
      - {generator: lognormal, count: 1000, mean: 1.0, sigma: 0.6,
         inputs: {store: s1, size_mb: [0.05, 0.5]}}
      - {trace: jobs.swf}

Unit entries (``name`` optional; units get ids ``NAME.0``, ``NAME.1``, ...):

explicit
    ``runtime`` (required, seconds >= 0), ``count`` (default 1), ``cores``
    (default 1, or as ``number_of_processes``/``total_cpu_count`` count for a
    real run), ``submit`` (seconds, default 0); any other unit-description
    attribute (``executable``, ``arguments`` ...) is checked and kept for a
    real run, not simulated: ``troy compare --real`` runs an entry's
    ``executable`` instead of sleeping its runtime.  Default name
    ``unit<i>`` (i: its index in units).
generator
    ``generator: fixed | uniform | lognormal | pareto`` with that
    distribution's parameters (`troy.sim.generators`), ``count``, ``cores``,
    ``submit``; ``bag``: a bag of tasks, each with its own input: ``inputs``
    required, runtimes from ``distribution`` (default fixed) and its
    parameters; ``dag``: ``layers`` x ``width`` units (no ``count``), each unit
    past the first layer waiting for ``fan_in`` units of the layer before,
    runtimes as for bag.  Default name ``<generator><i>``.
trace
    ``trace: FILE`` (relative to the workload file) in SWF or troy's
    ``units.csv`` (`troy.sim.traces`; format from the extension ``.swf`` /
    ``.csv``, or ``format``); ``run: {scheduler, mode, repetition}`` picks a
    run of a CSV; ``limit``: only the first n jobs; submit times are shifted
    so the first job is submitted at ``submit`` (default 0).  Default name:
    the file's name without extension.

Every form also takes ``after`` (an entry name or a list of them: its units
wait for all their units; a DAG's first layer does), ``inputs`` (``{store,
size_mb}`` or a list of them: each unit reads its own data unit
``sim://STORE/UNIT_ID`` (``.../UNIT_ID/k`` for item k of a list) of size_mb
MB, 1 MB = 10**6 bytes, or uniformly drawn from ``[low, high]``), ``labels:
{machine, datacenter}`` (or ``affinity_machine_label``,
``affinity_datacenter_label``), ``hints`` (JSON values), ``runtime_hint:
true`` (adds each unit's runtime as ``hints.runtime``), ``wall_time_limit``
(minutes, as in unit descriptions), ``total_cpu_time`` (CPU seconds) and
``retries``.

Random draws all come from one ``random.Random(seed)``, entry by entry in file
order, and within an entry unit by unit (`UnitEntry.expand`), so a file and
a seed give the same workload in every process.  Every problem raises
`BadWorkload` (a `BadBatchFile`) naming file, line and field before anything
is drawn: unknown keys, wrong types, unknown store, pilot or entry names,
cycles in ``after``, a trace line that does not parse (naming the trace and
its line), a unit that needs more cores than every pilot has, and counts
beyond 10,000,000 units (per entry and in all) or pilots.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from troy.model.documents import Location, closest, kind, load_document
from troy.model.errors import BadWorkload
from troy.sim.fields import MAX_COUNT, Fields
from troy.sim.model import (
    NO_HINTS,
    Failure,
    Network,
    Overheads,
    SimPilot,
    SimStore,
    SimUnit,
    Workload,
)
from troy.sim.units import UnitEntry, read_entry

TOP_LEVEL_KEYS = ("seed", "pilots", "stores", "network", "overheads", "failures", "units")
#: Batch-file pilot keys a workload accepts for a real run; the simulation ignores them.
REAL_PILOT_KEYS = ("resource", "rm", "service_url", "pj_type")
PILOT_KEYS = (
    "name",
    "slots",
    "labels",
    "start_delay",
    "speed",
    "count",
    "wall_time",
    "hints",
    *REAL_PILOT_KEYS,
)
STORE_KEYS = ("name", "labels")
NETWORK_KEYS = ("bandwidth_mb_s", "latency_s")
OVERHEAD_KEYS = ("pilot_start_s", "unit_start_s")
FAILURE_KEYS = ("pilot", "at")


def load_workload(path: str | os.PathLike[str], seed: int | None = None) -> Workload:
    """Read, validate and expand a workload file; `seed`, if given, replaces the file's."""
    name = os.fspath(path)
    document = load_document(name, "workload file", BadWorkload)
    return _Reader(Fields(name, document)).workload(seed)


class _Reader:
    """Turns a parsed workload file into a Workload, failing at the first problem."""

    def __init__(self, fields: Fields) -> None:
        self.fields = fields
        #: Pilot ids by pilot entry name, and the index of each pilot id's entry.
        self.pilot_entries: dict[str, list[str]] = {}
        self.pilot_ids: dict[str, int] = {}

    def workload(self, seed: int | None) -> Workload:
        """The whole file, validated and expanded."""
        fields = self.fields
        data = fields.document.data
        if data is None:
            raise fields.fail((), "the file is empty; expected a mapping with 'pilots' and 'units'")
        fields.mapping((), data, "a mapping with 'pilots' and 'units'")
        fields.keys((), data, TOP_LEVEL_KEYS)
        own_seed = fields.integer(("seed",), data["seed"]) if "seed" in data else 0
        seed = own_seed if seed is None else seed
        pilots = self.pilots(self.entries(data, "pilots"))
        stores = self.stores(data.get("stores", []))
        network = self.network(data.get("network"))
        overheads = self.overheads(data.get("overheads"))
        failures = self.failures(data.get("failures", []))
        entries = [
            read_entry(fields, ("units", index), entry, [store.id for store in stores])
            for index, entry in enumerate(self.entries(data, "units"))
        ]
        self.check_units(entries, max(pilot.slots for pilot in pilots))
        units = self.expand(entries, random.Random(seed))
        return Workload(fields.name, seed, pilots, units, stores, network, failures, overheads)

    def entries(self, data: dict[Any, Any], key: str) -> list[Any]:
        """The non-empty list under `key`."""
        if key not in data:
            raise self.fields.fail(
                (key,), f"missing '{key}': the file needs a non-empty list of {key}"
            )
        entries = data[key]
        if not isinstance(entries, list) or not entries:
            what = "an empty list" if entries == [] else kind(entries)
            raise self.fields.fail((key,), f"expected a non-empty list of {key}, got {what}")
        return entries

    def pilots(self, entries: list[Any]) -> tuple[SimPilot, ...]:
        """Every pilot, counts expanded."""
        fields = self.fields
        pilots: list[SimPilot] = []
        ids = self.pilot_ids
        for index, entry in enumerate(entries):
            location: Location = ("pilots", index)
            entry = fields.mapping(location, entry, "a mapping (a pilot entry)")
            fields.keys(location, entry, PILOT_KEYS, required=("name", "slots"))

            def at(key: str, where: Location = location) -> Location:
                return (*where, key)

            name = fields.text(at("name"), entry["name"])
            if name in self.pilot_entries:
                raise fields.fail(at("name"), f"another pilot entry is named '{name}'")
            slots = fields.integer(at("slots"), entry["slots"], minimum=1)
            machine, datacenter = None, None
            if "labels" in entry:
                machine, datacenter = fields.labels(at("labels"), entry["labels"])
            start_delay = fields.number(
                at("start_delay"), entry.get("start_delay", 0.0), minimum=0.0
            )
            speed = fields.number(at("speed"), entry.get("speed", 1.0), above=0.0)
            count = fields.integer(at("count"), entry.get("count", 1), minimum=1, maximum=MAX_COUNT)
            wall_time = None
            if "wall_time" in entry:
                wall_time = fields.number(at("wall_time"), entry["wall_time"], above=0.0)
            hints: Mapping[str, Any] = NO_HINTS
            if "hints" in entry:
                hints = MappingProxyType(fields.json_object(at("hints"), entry["hints"]))
            real: dict[str, str] = {}
            for key in REAL_PILOT_KEYS:
                if key in entry and entry[key] is not None:
                    real[key] = fields.text(at(key), entry[key])
            if len(pilots) + count > MAX_COUNT:
                raise fields.fail(at("count"), f"more than {MAX_COUNT:,} pilots in all")
            names = [name] if count == 1 else [f"{name}.{copy}" for copy in range(count)]
            for pilot_id in names:
                if pilot_id in ids:
                    message = f"pilot id '{pilot_id}' is also one of pilots[{ids[pilot_id]}]"
                    raise fields.fail(at("name"), message)
                ids[pilot_id] = index
            self.pilot_entries[name] = names
            shared = SimPilot(
                id=name,
                slots=slots,
                datacenter=datacenter,
                machine=machine,
                start_delay=start_delay,
                speed=speed,
                wall_time=wall_time,
                hints=hints,
                resource=real.get("resource") or real.get("rm") or real.get("service_url"),
                pj_type=real.get("pj_type"),
            )
            pilots.extend(replace(shared, id=pilot_id) for pilot_id in names)
        return tuple(pilots)

    def stores(self, entries: Any) -> tuple[SimStore, ...]:
        """The stores (possibly none)."""
        fields = self.fields
        if not isinstance(entries, list):
            raise fields.fail(("stores",), f"expected a list of stores, got {kind(entries)}")
        stores: dict[str, SimStore] = {}
        for index, entry in enumerate(entries):
            location: Location = ("stores", index)
            entry = fields.mapping(location, entry, "a mapping {name, labels}")
            fields.keys(location, entry, STORE_KEYS, required=("name",))
            name = fields.text((*location, "name"), entry["name"])
            if name in stores:
                raise fields.fail((*location, "name"), f"another store is named '{name}'")
            machine, datacenter = None, None
            if "labels" in entry:
                machine, datacenter = fields.labels((*location, "labels"), entry["labels"])
            stores[name] = SimStore(name, datacenter, machine)
        return tuple(stores.values())

    def network(self, value: Any) -> Network:
        """The network between machines (defaults: `Network`)."""
        if value is None:
            return Network()
        fields = self.fields
        value = fields.mapping(("network",), value, "a mapping {bandwidth_mb_s, latency_s}")
        fields.keys(("network",), value, NETWORK_KEYS)
        default = Network()
        bandwidth = value.get("bandwidth_mb_s", default.bandwidth_mb_s)
        latency = value.get("latency_s", default.latency_s)
        return Network(
            fields.number(("network", "bandwidth_mb_s"), bandwidth, above=0.0),
            fields.number(("network", "latency_s"), latency, minimum=0.0),
        )

    def overheads(self, value: Any) -> Overheads:
        """The pilot system's own latencies (defaults: none)."""
        if value is None:
            return Overheads()
        fields = self.fields
        value = fields.mapping(("overheads",), value, "a mapping {pilot_start_s, unit_start_s}")
        fields.keys(("overheads",), value, OVERHEAD_KEYS)
        return Overheads(
            *(
                fields.number(("overheads", key), value.get(key, 0.0), minimum=0.0)
                for key in OVERHEAD_KEYS
            )
        )

    def failures(self, entries: Any) -> tuple[Failure, ...]:
        """The pilot failures, a pilot entry's name expanded to all its pilots."""
        fields = self.fields
        if not isinstance(entries, list):
            raise fields.fail(
                ("failures",), f"expected a list of {{pilot, at}}, got {kind(entries)}"
            )
        failures: list[Failure] = []
        for index, entry in enumerate(entries):
            location: Location = ("failures", index)
            entry = fields.mapping(location, entry, "a mapping {pilot, at}")
            fields.keys(location, entry, FAILURE_KEYS, required=FAILURE_KEYS)
            pilot = fields.text((*location, "pilot"), entry["pilot"])
            at = fields.number((*location, "at"), entry["at"], minimum=0.0)
            targets = self.pilot_entries.get(pilot)
            if targets is None:
                targets = [pilot] if pilot in self.pilot_ids else []
            if not targets:
                hint = closest(pilot, list(self.pilot_entries))
                known = (
                    f"did you mean '{hint}'?"
                    if hint
                    else "expected a pilot entry's name or a pilot id"
                )
                raise fields.fail((*location, "pilot"), f"no pilot named '{pilot}'; {known}")
            failures.extend(Failure(target, at) for target in targets)
        return tuple(failures)

    def check_units(self, entries: list[UnitEntry], max_slots: int) -> None:
        """Unique names, a bounded total, ``after`` naming entries, no cycles, units that fit."""
        fields = self.fields
        names: dict[str, int] = {}
        total = 0
        for index, entry in enumerate(entries):
            if entry.name in names:
                where = entry.location
                if "name" in self.entry_keys(entry):
                    where = (*where, "name")
                message = f"another unit entry is named '{entry.name}' (units[{names[entry.name]}])"
                raise fields.fail(where, message)
            names[entry.name] = index
            total += entry.count
            if total > MAX_COUNT:
                raise fields.fail(entry.location, f"more than {MAX_COUNT:,} units in all")
        for entry in entries:
            for position, reference in enumerate(entry.after):
                if reference not in names:
                    hint = closest(reference, list(names))
                    known = f"; did you mean '{hint}'?" if hint else ""
                    message = f"no unit entry named '{reference}'{known}"
                    raise fields.fail(self.after_location(entry, position), message)
        self.check_cycles(entries, names)
        for entry in entries:
            self.check_fit(entry, max_slots)

    def after_location(self, entry: UnitEntry, position: int) -> Location:
        """Where item `position` of an entry's ``after`` is (``after`` itself if a string)."""
        location = (*entry.location, "after")
        return (
            (*location, position)
            if (*location, position) in self.fields.document.lines
            else location
        )

    def check_cycles(self, entries: list[UnitEntry], names: dict[str, int]) -> None:
        """No entry waits, through ``after``, for itself."""
        done: set[str] = set()
        for start in entries:
            if start.name in done:
                continue
            path: list[str] = [start.name]
            stack = [iter(start.after)]
            while stack:
                reference = next(stack[-1], None)
                if reference is None:
                    stack.pop()
                    done.add(path.pop())
                    continue
                if reference in path:
                    cycle = " -> ".join([*path[path.index(reference) :], reference])
                    waiting = entries[names[path[-1]]]
                    position = waiting.after.index(reference)
                    message = f"a cycle: {cycle} (each waits for the next)"
                    if len(path) == 1 and reference == path[0]:
                        message = f"'{reference}' waits for itself"
                    raise self.fields.fail(self.after_location(waiting, position), message)
                if reference not in done:
                    path.append(reference)
                    stack.append(iter(entries[names[reference]].after))

    def check_fit(self, entry: UnitEntry, max_slots: int) -> None:
        """Some pilot has the slots each unit of `entry` needs."""
        if entry.jobs is None:
            if entry.cores > max_slots:
                where = entry.location
                if "cores" in self.entry_keys(entry):
                    where = (*where, "cores")
                message = f"needs {entry.cores} cores; no pilot has more than {max_slots} slots"
                raise self.fields.fail(where, message)
            return
        for job in entry.jobs:
            if job.cores > max_slots:
                assert entry.trace is not None
                message = (
                    f"a job of {job.cores} processors; no pilot has more than {max_slots} slots"
                    f" (the trace of {self.fields.name} units[{entry.location[-1]}])"
                )
                raise BadWorkload(entry.trace, job.line, None, message)

    def entry_keys(self, entry: UnitEntry) -> list[Any]:
        """The keys written in `entry`'s mapping."""
        data = self.fields.document.data["units"][entry.location[-1]]
        return list(data)

    def expand(self, entries: list[UnitEntry], rng: random.Random) -> tuple[SimUnit, ...]:
        """Every unit, drawn entry by entry in file order."""
        by_name = {entry.name: entry for entry in entries}
        ids: dict[str, list[str]] = {}
        units: list[SimUnit] = []
        for entry in entries:
            after: list[str] = []
            for reference in dict.fromkeys(entry.after):
                if reference not in ids:
                    ids[reference] = by_name[reference].ids()
                after.extend(ids[reference])
            entry.expand(rng, tuple(after), units)
        return tuple(units)
