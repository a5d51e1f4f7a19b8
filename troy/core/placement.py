"""Placing a unit manager's units: dependencies first, then the scheduler, then one commit.

Units whose dependencies are not met wait (their state_detail says for
what) or are Canceled when one failed; the rest go to the scheduler as plain
values (UnitRequest, PilotOffer); its choices are recorded, together with
the queue items, in one commit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from troy.core import dependencies
from troy.core.data_locator import DataLocator
from troy.core.tracked import TrackedPilot, TrackedUnit
from troy.model import protocol
from troy.model.errors import SchedulerError
from troy.model.states import State
from troy.plugins import data_records
from troy.plugins.coordination.base import Coordination
from troy.plugins.schedulers.base import DataInput, PilotOffer, Scheduler, UnitRequest


class Placement:
    """Decides where one work-unit service's waiting units go, and records it.

    It reads the manager's units (``units``, guarded by ``lock``) and the
    pilots units may go to (``pilots()``), asks ``scheduler``, commits the
    decisions with their queue items to ``coordination``, and hands the
    events it recorded to ``apply`` (the manager applies them locally).
    ``place_lock`` serializes placements (and cancels) within the process.
    """

    def __init__(
        self,
        service_id: str,
        coordination: Coordination,
        scheduler: Scheduler,
        units: Mapping[str, TrackedUnit],
        lock: threading.RLock,
        pilots: Callable[[], list[TrackedPilot]],
        apply: Callable[[Iterable[dict[str, Any]]], None],
        tracker: dependencies.DependencyTracker,
        locator: DataLocator,
    ) -> None:
        self.service_id = service_id
        self.coordination = coordination
        self.scheduler = scheduler
        self._units = units
        self._lock = lock
        self._pilots = pilots
        self._apply = apply
        self._deps = tracker
        self.locator = locator
        self.place_lock = threading.Lock()
        #: If set, units go only to these pilots (BigJob's PilotCompute.submit_compute_unit).
        self.only_pilots: frozenset[str] | None = None

    # -- dependencies ----------------------------------------------------------------------
    def _state_of(self, unit_id: str) -> State | None:
        unit = self._units.get(unit_id)
        return None if unit is None else unit.state

    def gate(
        self, units: Sequence[TrackedUnit]
    ) -> tuple[list[TrackedUnit], dict[str, dict[str, Any]]]:
        """The units free to be placed, and Canceled events for those whose dependency failed.

        A unit still waiting for a dependency is neither; its state_detail says for what.
        """
        if not self._deps.used:
            return list(units), {}
        free: list[TrackedUnit] = []
        canceled: dict[str, dict[str, Any]] = {}
        for unit in units:
            after = unit.description.get("after")
            if not after:
                free.append(unit)
                continue
            verdict, why = dependencies.readiness(after, self._state_of)
            if verdict == "ready":
                free.append(unit)
            elif verdict == "cancel":
                canceled[unit.id] = protocol.unit_state_event(
                    unit.id, "Canceled", unit.attempt, detail=why
                )
            else:
                unit.state_detail = why
        return free, canceled

    # -- placement ------------------------------------------------------------------------
    def _queue_of(self, pilot_id: str) -> str:
        """The queue a unit placed on that pilot goes to (shared by late-binding pilots)."""
        for pilot in self._pilots():
            if pilot.id == pilot_id:
                return pilot.queue
        return protocol.pilot_key(pilot_id)

    def offers(self) -> list[PilotOffer]:
        load: dict[str, int] = {}
        with self._lock:
            for unit in self._units.values():
                if unit.pilot is not None and not unit.state.is_final:
                    load[unit.pilot] = load.get(unit.pilot, 0) + 1
        offers = []
        for pilot in self._pilots():
            if self.only_pilots is not None and pilot.id not in self.only_pilots:
                continue
            state = State.Canceled if pilot.canceling else pilot.state
            if state.is_final:
                continue
            description = pilot.description
            offers.append(
                PilotOffer(
                    id=pilot.id,
                    state=state,
                    slots=pilot.slots,
                    queued=load.get(pilot.id, 0),
                    datacenter=description.get("affinity_datacenter_label"),
                    machine=description.get("affinity_machine_label"),
                )
            )
        return offers

    def decide(
        self, units: Sequence[TrackedUnit], plain: Sequence[dict[str, Any]] | None = None
    ) -> tuple[dict[str, dict[str, Any]], dict[str, list[dict[str, Any]]]]:
        """Decide where units go, writing nothing.

        Returns the state event decided per unit id (Pending on a pilot, or Failed
        for a unit no pilot can ever hold) and the queue items per pilot id.
        ``plain`` are the units' descriptions as dicts, if the caller has them.
        """
        decided: dict[str, dict[str, Any]] = {}
        by_pilot: dict[str, list[dict[str, Any]]] = {}
        offers = self.offers()
        if not units or not offers:
            for unit in units:
                if unit.state == State.New:
                    unit.state_detail = "waiting for a pilot: this service has no live pilot"
            return decided, by_pilot
        largest = max((o.slots for o in offers if o.slots is not None), default=None)
        if any(o.slots is None for o in offers):
            largest = None  # a pilot of unknown size may hold anything
        fitting = []
        for index, unit in enumerate(units):
            cores = unit.description.cores
            if largest is not None and cores > largest:
                decided[unit.id] = protocol.unit_state_event(
                    unit.id,
                    "Failed",
                    unit.attempt,
                    detail=f"needs {cores} slots; the largest pilot has {largest}",
                )
            else:
                fitting.append((index, unit))
        requests = []
        memo: dict[str, DataInput | None] = {}
        for _, unit in fitting:
            get = unit.description.get
            urls = data_records.data_urls(get("input_data"))
            requests.append(
                UnitRequest(
                    id=unit.id,
                    cores=unit.description.cores,
                    datacenter=get("affinity_datacenter_label"),
                    machine=get("affinity_machine_label"),
                    input_data=urls,
                    inputs=self.locator.locate(urls, memo) if urls else (),
                )
            )
        placement = self.scheduler.place(requests, offers) if requests else {}
        known = {offer.id for offer in offers}
        for position, (index, unit) in enumerate(fitting):
            pilot_id = placement.get(unit.id)
            if pilot_id is None:
                if unit.state == State.New:  # say why it waits (not recorded: it may change)
                    unit.state_detail = self.scheduler.waiting_reason(requests[position], offers)
                continue
            if pilot_id not in known:
                raise SchedulerError(
                    f"scheduler '{self.scheduler.name}' placed {unit.id} on unknown pilot "
                    f"{pilot_id!r}"
                )
            attempt = unit.attempt + (1 if unit.state == State.Pending else 0)
            decided[unit.id] = protocol.unit_state_event(
                unit.id, "Pending", attempt, pilot=pilot_id
            )
            values = plain[index] if plain is not None else unit.description.as_dict()
            item = {"id": unit.id, "service": self.service_id, "d": values, "a": attempt}
            if unit.tries:
                item["t"] = unit.tries
            by_pilot.setdefault(pilot_id, []).append(item)
        return decided, by_pilot

    def commit(
        self, events: list[dict[str, Any]], by_pilot: dict[str, list[dict[str, Any]]]
    ) -> None:
        """Record events and put placed units in their pilots' queues, as one step."""
        queues: dict[str, list[dict[str, Any]]] = {}
        for pilot_id, items in by_pilot.items():
            queues.setdefault(self._queue_of(pilot_id), []).extend(items)
        self.coordination.commit(protocol.service_key(self.service_id), events, queues)

    def place(self, units: Sequence[TrackedUnit], withdrawn_from: str | None = None) -> None:
        """Place waiting units on live pilots; units no pilot can ever hold fail at once.

        Only New units are placed, and Pending ones that were withdrawn from the
        queue of pilot ``withdrawn_from`` (which ended): a unit in a queue must
        never be placed twice.
        """
        with self.place_lock:
            units = [
                u
                for u in units
                if u.state == State.New
                or (withdrawn_from and u.state == State.Pending and u.pilot == withdrawn_from)
            ]
            while True:
                free, canceled = self.gate(units)
                if not canceled:
                    break
                # A failed dependency: cancel, then look again (their dependents follow).
                events = list(canceled.values())
                self.commit(events, {})
                self._apply(events)
                units = [u for u in units if u.state == State.New]
            decided, by_pilot = self.decide(free)
            if not decided:
                return
            events = list(decided.values())
            self.commit(events, by_pilot)
            self._apply(events)
