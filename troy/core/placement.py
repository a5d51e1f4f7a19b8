"""Placing a unit manager's units: dependencies first, then the scheduler, then one commit.

Units whose dependencies are not met wait (their state_detail says for
what) or are Canceled when one failed; the rest go to the scheduler as plain
values (UnitRequest, PilotOffer); its choices are recorded, together with
the queue items, in one commit.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from troy.core import dependencies
from troy.core.data_locator import DataLocator
from troy.core.tracked import TrackedPilot, TrackedUnit
from troy.model import protocol
from troy.model.errors import SchedulerError
from troy.model.states import FINAL_STATES, State
from troy.plugins import data_records
from troy.plugins.coordination.base import Coordination
from troy.plugins.schedulers import checks
from troy.plugins.schedulers.base import (
    NO_HINTS,
    DataInput,
    PilotOffer,
    Scheduler,
    UnitRequest,
)

log = logging.getLogger("troy.units")


class PilotLoads:
    """Per pilot: units queued on it (not started), units running on it, and their slots.

    Kept up to date as units move (`move`), so offering pilots to the scheduler
    costs nothing per unit of the service.
    """

    __slots__ = ("busy", "queued", "running")

    def __init__(self) -> None:
        self.queued: dict[str, int] = {}
        self.running: dict[str, int] = {}
        self.busy: dict[str, int] = {}

    def move(
        self,
        cores: int,
        before: tuple[str | None, State],
        after: tuple[str | None, State],
    ) -> None:
        """A unit of ``cores`` slots went from (pilot, state) ``before`` to ``after``."""
        if before != after:
            self._count(cores, before, -1)
            self._count(cores, after, 1)

    def _count(self, cores: int, where: tuple[str | None, State], sign: int) -> None:
        pilot, state = where
        if pilot is None:
            return
        if state == State.Pending:
            self.queued[pilot] = self.queued.get(pilot, 0) + sign
        elif state == State.Running:
            self.running[pilot] = self.running.get(pilot, 0) + sign
            self.busy[pilot] = self.busy.get(pilot, 0) + sign * cores


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
        self.loads = PilotLoads()
        #: Per pilot id: (what its offer was made from, the offer); see `_offers`.
        self._offer_cache: dict[str, tuple[tuple[Any, ...], PilotOffer]] = {}
        #: "fail": a scheduler error fails the units of that call; "wait": they keep waiting.
        self.on_error = "fail"
        #: Monotonic time at which the scheduler asked to be called again, if it did.
        self.next_call_at: float | None = None

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
    def offers(self) -> list[PilotOffer]:
        """Every live pilot units may go to, with its load as the counters know it."""
        return self._offers()[0]

    def _offers(self) -> tuple[list[PilotOffer], dict[str, PilotOffer]]:
        """The offers, and the same by pilot id.

        An offer is made again only when what it says changed: the pilot's state,
        size or description (replaced, not changed, when it is reinitialized) or
        its counters.  With thousands of pilots, making every offer anew took
        most of a placement's time.
        """
        loads = self.loads
        queued_of, running_of, busy_of = loads.queued.get, loads.running.get, loads.busy.get
        only = self.only_pilots
        cache = self._offer_cache
        offers: list[PilotOffer] = []
        by_id: dict[str, PilotOffer] = {}
        for pilot in self._pilots():
            pilot_id = pilot.id
            if only is not None and pilot_id not in only:
                continue
            state = State.Canceled if pilot.canceling else pilot.state
            if state in FINAL_STATES:
                continue
            description = pilot.description
            key = (
                state,
                pilot.slots,
                queued_of(pilot_id, 0),
                running_of(pilot_id, 0),
                busy_of(pilot_id, 0),
                description,
            )
            cached = cache.get(pilot_id)
            if cached is not None and cached[0] == key:
                offer = cached[1]
            else:
                get = description.get
                offer = PilotOffer(
                    id=pilot_id,
                    state=state,
                    slots=key[1],
                    queued=key[2],
                    datacenter=get("affinity_datacenter_label"),
                    machine=get("affinity_machine_label"),
                    running=key[3],
                    busy=key[4],
                    hints=get("hints") or NO_HINTS,
                )
                cache[pilot_id] = (key, offer)
            offers.append(offer)
            by_id[pilot_id] = offer
        if len(cache) > 2 * len(by_id) + 64:  # forget pilots that ended or went away
            self._offer_cache = {pilot_id: cache[pilot_id] for pilot_id in by_id}
        return offers, by_id

    def _request(
        self,
        unit: TrackedUnit,
        cores: int,
        memo: dict[str, DataInput | None],
        queued_on: str | None = None,
    ) -> UnitRequest:
        get = unit.description.get
        urls = data_records.data_urls(get("input_data"))
        return UnitRequest(
            id=unit.id,
            cores=cores,
            datacenter=get("affinity_datacenter_label"),
            machine=get("affinity_machine_label"),
            input_data=urls,
            inputs=self.locator.locate(urls, memo) if urls else (),
            wall_time_limit=get("wall_time_limit"),
            total_cpu_time=get("total_cpu_time"),
            hints=get("hints") or NO_HINTS,
            order=int(unit.id.rpartition(".")[2]),
            queued_on=queued_on,
        )

    def decide(
        self,
        units: Sequence[TrackedUnit],
        plain: Sequence[dict[str, Any]] | None = None,
        queued: Sequence[TrackedUnit] = (),
    ) -> tuple[dict[str, dict[str, Any]], dict[str, list[dict[str, Any]]]]:
        """Decide where units go, writing nothing; SchedulerError if the scheduler errs.

        Returns the state event decided per unit id (Pending on a pilot, or Failed
        for a unit no pilot can ever hold) and the queue items per pilot id, in
        the order the scheduler gave.  ``plain`` are the units' descriptions as
        dicts, if the caller has them.  ``queued`` are Pending units offered for
        rebalancing: one the scheduler moves gets a Pending event at its next
        attempt (the caller must withdraw it from its old queue first).
        """
        decided: dict[str, dict[str, Any]] = {}
        by_pilot: dict[str, list[dict[str, Any]]] = {}
        offers, offers_by_id = self._offers()
        if not units and not queued:
            return decided, by_pilot
        if not offers:
            for unit in units:
                if unit.state == State.New:
                    unit.state_detail = "waiting for a pilot: this service has no live pilot"
            return decided, by_pilot
        largest = checks.largest_pilot(offers)
        memo: dict[str, DataInput | None] = {}
        #: unit id -> (index in units, or -1 for a queued one; the unit; its request)
        offered: dict[str, tuple[int, TrackedUnit, UnitRequest]] = {}
        for index, unit in enumerate(units):
            cores = unit.description.cores
            if largest is not None and cores > largest:
                decided[unit.id] = protocol.unit_state_event(
                    unit.id, "Failed", unit.attempt, detail=checks.too_big(cores, largest)
                )
            else:
                offered[unit.id] = (index, unit, self._request(unit, cores, memo))
        for unit in queued:
            request = self._request(unit, unit.description.cores, memo, unit.pilot)
            offered[unit.id] = (-1, unit, request)
        if not offered:
            return decided, by_pilot
        requests = {unit_id: request for unit_id, (_, _, request) in offered.items()}
        placement = self._ask(list(requests.values()), offers)
        chosen = checks.checked_choices(self.scheduler.name, placement, requests, offers_by_id)
        for unit_id, pilot_id in chosen:
            index, unit, request = offered[unit_id]
            if pilot_id == request.queued_on:
                continue  # stays where it is
            attempt = unit.attempt + (1 if unit.state == State.Pending else 0)
            decided[unit_id] = protocol.unit_state_event(
                unit_id, "Pending", attempt, pilot=pilot_id
            )
            values = plain[index] if plain is not None and index >= 0 else None
            item = {
                "id": unit_id,
                "service": self.service_id,
                "d": values if values is not None else unit.description.as_dict(),
                "a": attempt,
            }
            if unit.tries:
                item["t"] = unit.tries
            by_pilot.setdefault(pilot_id, []).append(item)
        for _, unit, request in offered.values():
            if unit.state == State.New and unit.id not in decided:
                # Say why it waits (not recorded: it may change).
                unit.state_detail = self.scheduler.waiting_reason(request, offers)
        return decided, by_pilot

    def _ask(self, requests: list[UnitRequest], offers: list[PilotOffer]) -> Mapping[Any, Any]:
        """The scheduler's placement; SchedulerError if it raised or returned no mapping."""
        try:
            return checks.call_place(self.scheduler, requests, offers)
        finally:
            delay = self.scheduler.next_call()
            self.next_call_at = None if delay is None else time.monotonic() + max(0.0, delay)

    def commit(
        self, events: list[dict[str, Any]], by_pilot: dict[str, list[dict[str, Any]]]
    ) -> None:
        """Record events and put placed units in their pilots' queues, as one step."""
        queues: dict[str, list[dict[str, Any]]] = {}
        if by_pilot:
            queue_of = {pilot.id: pilot.queue for pilot in self._pilots()}
            for pilot_id, items in by_pilot.items():
                queue = queue_of.get(pilot_id) or protocol.pilot_key(pilot_id)
                queues.setdefault(queue, []).extend(items)
        self.coordination.commit(protocol.service_key(self.service_id), events, queues)

    def place(
        self,
        units: Sequence[TrackedUnit],
        withdrawn_from: str | None = None,
        queued: Sequence[TrackedUnit] = (),
    ) -> None:
        """Place waiting units on live pilots; units no pilot can ever hold fail at once.

        Only New units are placed, and Pending ones that were withdrawn from the
        queue of pilot ``withdrawn_from`` (which ended): a unit in a queue must
        never be placed twice.  ``queued`` are Pending units offered for
        rebalancing: one the scheduler moves is withdrawn from its queue first,
        and moves only if the agent had not claimed it.  A scheduler error fails
        the units of the call, or (``on_error`` "wait") leaves them waiting.
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
            queued = [u for u in queued if u.state == State.Pending and u.pilot is not None]
            try:
                decided, by_pilot = self.decide(free, queued=queued)
            except SchedulerError as exc:
                self._scheduler_failed(free, exc)
                return
            if not decided:
                return
            moved = [u for u in queued if u.id in decided]
            if moved:
                self._withdraw_moved(moved, decided, by_pilot)
            events = list(decided.values())
            self.commit(events, by_pilot)
            self._apply(events)

    def _withdraw_moved(
        self,
        moved: Sequence[TrackedUnit],
        decided: dict[str, dict[str, Any]],
        by_pilot: dict[str, list[dict[str, Any]]],
    ) -> None:
        """Take moved units out of their old queues; those an agent claimed stay put."""
        queue_of = {pilot.id: pilot.queue for pilot in self._pilots()}
        by_queue: dict[str, list[str]] = {}
        for unit in moved:
            old = str(unit.pilot)
            by_queue.setdefault(queue_of.get(old) or protocol.pilot_key(old), []).append(unit.id)
        withdrawn: set[str] = set()
        for queue, ids in by_queue.items():
            withdrawn.update(self.coordination.withdraw(queue, ids))
        stay = {unit.id for unit in moved} - withdrawn
        for unit_id in stay:
            del decided[unit_id]
        if stay:
            for pilot_id, items in list(by_pilot.items()):
                kept = [item for item in items if item["id"] not in stay]
                if kept:
                    by_pilot[pilot_id] = kept
                else:
                    del by_pilot[pilot_id]

    def _scheduler_failed(self, units: Sequence[TrackedUnit], error: SchedulerError) -> None:
        """After a scheduler error outside submit: the units fail, or wait if asked to."""
        if self.on_error == "wait":
            log.warning("%s; its units keep waiting (on_error: wait)", error)
            for unit in units:
                if unit.state == State.New:
                    unit.state_detail = f"waiting: {error}"
            return
        events = [
            protocol.unit_state_event(unit.id, "Failed", unit.attempt, detail=str(error))
            for unit in units
            if unit.state == State.New
        ]
        if events:
            self.commit(events, {})
            self._apply(events)
