"""The unit manager: records submitted units, places them on pilots, tracks their states.

Everything it learns goes through the service's stream in coordination, so
a new process that reconnects by id rebuilds the same picture: the units
(with their descriptions), their state events, and the pilot-job services
attached.  Units wait (New) until some attached pilot can take them; units
left on a pilot that ended without running them are placed again.

One process owns a service at a time (troy.core.lease): only the owner places
units and judges what ended pilots left behind.  Any other process that opens
it follows: it sees every state, waits and calls back, may submit (the owner
places those units) and cancel, and takes over once the owner's lease lapsed.
Unit ids come from an atomic counter in coordination, so processes submitting
to one service never hand out the same id.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, Generic, TypeVar

from troy.core import compaction, dependencies, sweeps
from troy.core.data_locator import DataLocator
from troy.core.lease import Lease
from troy.core.monitor import SLOW_POLL, Monitor
from troy.core.pilot_manager import PilotFactory, PilotManager
from troy.core.placement import Placement
from troy.core.service import ServiceManager
from troy.core.tracked import Change, TrackedPilot, TrackedUnit
from troy.core.transitions import advance, steps
from troy.model import protocol, retry
from troy.model.description import WorkUnitDescription
from troy.model.errors import (
    BadDescription,
    NoSuchObject,
    SchedulerError,
    Timeout,
    TroyError,
)
from troy.model.states import State
from troy.plugins import registry
from troy.plugins.schedulers.base import Scheduler

log = logging.getLogger("troy.units")
#: Seconds, at most, a unit claimed from a shared queue may stay Pending on a pilot
#: that ended before it counts as lost (another worker may have claimed it).
SHARED_CLAIM_GRACE = 10.0

U = TypeVar("U", bound=TrackedUnit)

#: Makes the object for a unit: (manager, id, description).
UnitFactory = Callable[["UnitManager[U]", str, WorkUnitDescription], U]


def _validated(descriptions: Sequence[Any]) -> list[WorkUnitDescription]:
    """Copies of the descriptions, each complete; BadDescription names the entry if many.

    The same object given many times (``[description] * 100_000``) is checked
    and copied once: its units share that copy (a unit's description is not
    changed after submit; one that gets its own ``after`` gets its own copy).
    """
    checked: list[WorkUnitDescription] = []
    previous: Any = None
    for index, given in enumerate(descriptions):
        if checked and given is previous:
            checked.append(checked[-1])
            continue
        previous = given
        try:
            description = WorkUnitDescription(given)
            description.validate()
        except BadDescription as exc:
            if len(descriptions) == 1:
                raise
            raise BadDescription(f"[{index}].{exc.field}", str(exc).partition(": ")[2]) from None
        checked.append(description)
    return checked


def check_scheduler(name: str, options: Mapping[str, Any] | None) -> None:
    """Raise now what a service would: NoSuchPlugin for the name, BadDescription for an option."""
    own, _ = _split_options(options)
    registry.load("scheduler", name).check_options(own)


def _split_options(options: Mapping[str, Any] | None) -> tuple[dict[str, Any], str]:
    """(the scheduler's own options, on_error): ``on_error`` is the manager's, not the plugin's."""
    if options is None:
        return {}, "fail"
    if not isinstance(options, Mapping):
        raise BadDescription(
            "scheduler_options", f"expected a mapping, got {type(options).__name__}"
        )
    own = {str(key): value for key, value in options.items() if key != "on_error"}
    on_error = options.get("on_error", "fail")
    if on_error not in ("fail", "wait"):
        raise BadDescription(
            "scheduler_options.on_error", f"expected 'fail' or 'wait', got {on_error!r}"
        )
    return own, str(on_error)


class UnitManager(ServiceManager, Generic[U]):
    """Submits, places, tracks and cancels the units of one work-unit service.

    ``new_unit`` makes the object that stands for a unit (troy.WorkUnit);
    ``new_pilot`` that of a pilot, for the pilot-job services it finds attached
    in the service's stream (attached by another process).
    """

    kind: ClassVar[str] = "workunit"
    id_prefix: ClassVar[str] = "wus"
    noun: ClassVar[str] = "work-unit service"
    state_hook: ClassVar[str | None] = "troy_unit_state_changed"
    hook_id: ClassVar[str] = "unit_id"

    def __init__(
        self,
        service_id: str | None,
        coordination_url: str | None,
        scheduler: str | None,
        new_unit: UnitFactory[U],
        new_pilot: PilotFactory[Any],
        scheduler_options: Mapping[str, Any] | None = None,
        take_over: bool = True,
    ) -> None:
        """``take_over=False``: a reconnect that never owns the service (it only follows)."""
        own, on_error = _split_options(scheduler_options)
        if service_id is None:
            # A scheduler that is unknown, takes other options or cannot start fails
            # before anything is recorded.
            name = scheduler or "round_robin"
            started = registry.make_scheduler(name, own)
            record: dict[str, Any] = {"scheduler": name}
            if scheduler_options:
                record["scheduler_options"] = dict(scheduler_options)
            super().__init__(None, coordination_url, record)
        else:
            # A reconnected service runs the recorded scheduler, unless told otherwise.
            super().__init__(service_id, coordination_url)
            name = scheduler or self.record.get("scheduler") or "round_robin"
            if scheduler is None and scheduler_options is None:
                own, on_error = _split_options(self.record.get("scheduler_options"))
            started = registry.make_scheduler(name, own)
        self.scheduler_name = name
        self.scheduler: Scheduler = started
        #: The options the scheduler runs with (and ``on_error``, if not the default).
        self.scheduler_options: dict[str, Any] = {
            **own,
            **({"on_error": on_error} if on_error != "fail" else {}),
        }
        self.new_unit = new_unit
        self.new_pilot = new_pilot
        self._deps = dependencies.DependencyTracker()
        self._units: dict[str, U] = {}
        #: Pilot-job services units may be placed on now.
        self._pilot_managers: dict[str, PilotManager[Any]] = {}
        #: Every one ever attached: units placed before a remove() still need watching.
        self._watched: dict[str, PilotManager[Any]] = {}
        self._owned_managers: list[PilotManager[Any]] = []
        self._pilot_seen: dict[str, tuple[State, int, int | None]] = {}
        self._cursor: Any = None
        #: State events read before the event that submitted their unit.
        self._orphans: dict[str, list[dict[str, Any]]] = {}
        #: Set when placement should run again: a unit came back New (failed with retries
        #: left, or lost), or a unit ended (its slots are free; units may wait for it).
        self._place_again = False
        #: Units waiting to be placed (New), and units queued on a pilot (Pending).
        self._waiting: dict[str, U] = {}
        self._queued: dict[str, U] = {}
        #: Units claimed from a shared queue when a late-binding pilot ended:
        #: id -> (monotonic deadline, that pilot, why, final state if lost).
        self._suspects: dict[str, tuple[float, str, str, str]] = {}
        #: Per ended pilot: units withdrawn from its queue whose fate is not recorded yet
        #: (a coordination error cut `_pilot_ended` short; the next poll goes on with them).
        self._withdrawn: dict[str, set[str]] = {}
        self._unsettled = 0
        self.placement = Placement(
            self.service_id,
            self.coordination,
            self.scheduler,
            self._units,
            self.lock,
            self._pilots,
            self._apply,
            self._deps,
            DataLocator(self.coordination),
        )
        self.placement.on_error = on_error
        self._rebalance = "rebalance" in self.scheduler.capabilities
        self._next_number = 0
        self.lease = Lease(self.coordination, self.service_id)
        #: Whether this process may take the service over when its owner's lease lapses.
        self.take_over = take_over
        #: False while a new owner prepares: it neither places nor judges.
        self.acting = True
        #: Called when this process takes the service over, before it places or judges
        #: anything (``troy run --resume`` restarts the run's dead pilots there).
        self.prepare: Callable[[], None] | None = None
        self.monitor = Monitor(f"troy-units-{self.service_id}", self._poll)
        if service_id is None or take_over:
            self.lease.acquire()
        # What a reconnect reads is delivered in the constructing thread, before it returns.
        self._reconnecting = True
        self._read_stream()
        self._reconnecting = False
        self.monitor.start()

    # -- ownership -----------------------------------------------------------------------
    @property
    def owns(self) -> bool:
        """Whether this process places the service's units now (it holds the lease)."""
        return self.lease.held and self.acting

    def owner(self) -> str:
        """Who owns the service: "this process", or the holder's pid and host."""
        _, holder = self.lease.lapsed()
        return holder

    def _keep_lease(self) -> None:
        """The owner renews its lease; a follower takes over one that lapsed."""
        if self.lease.held:
            if not self.lease.renew():
                log.warning(
                    "%s: another process took the service over; this one only follows it now",
                    self.service_id,
                )
        elif self.take_over and self._take_lease():
            log.warning("%s: took the service over (its owner's lease lapsed)", self.service_id)

    def acquire(self) -> bool:
        """Own the service now if its lease is free; True if this process owns it.

        If the lease is not free, this process follows, and takes the service
        over (in its monitor thread) when the lease lapses.  Either way, the
        new owner first runs `prepare` (if set), then brings every pilot up to
        date, and only then places and judges.
        """
        self.take_over = True
        return self._take_lease()

    def _take_lease(self) -> bool:
        self.acting = False  # until prepared: submits meanwhile are recorded, not placed
        if not self.lease.acquire():
            self.acting = True
            return False
        try:
            if self.prepare is not None:
                self.prepare()
            with self.lock:
                managers = list(self._watched.values())
            for manager in managers:  # pilots another process made; backends' view of the rest
                manager.check_now()
        finally:
            with self.lock:
                self.acting = True
                self._place_again = True
                self._pilot_seen.clear()  # pilots that ended are judged again, by this owner
            self.monitor.wake()
        return True

    # -- pilot-job services ---------------------------------------------------------
    def add(self, manager: PilotManager[Any], record: bool = True) -> None:
        with self.lock:
            if manager.service_id in self._pilot_managers:
                return
            self._pilot_managers[manager.service_id] = manager
            self._watched[manager.service_id] = manager
        if record:
            self.coordination.append(
                protocol.service_key(self.service_id), [{"ev": "add", "pjs": manager.service_id}]
            )
        self.monitor.wake()

    def remove(self, service_id: str) -> None:
        with self.lock:
            if self._pilot_managers.pop(service_id, None) is None:
                return
        self.coordination.append(
            protocol.service_key(self.service_id), [{"ev": "remove", "pjs": service_id}]
        )

    def pilot_services(self) -> list[PilotManager[Any]]:
        with self.lock:
            return list(self._pilot_managers.values())

    def _pilots(self, watched: bool = False) -> list[TrackedPilot]:
        """Pilots units may be placed on; with ``watched``, also those of removed services."""
        with self.lock:
            managers = list((self._watched if watched else self._pilot_managers).values())
        return [pilot for manager in managers for pilot in manager.pilots()]

    # -- queries -----------------------------------------------------------------------
    def units(self) -> list[U]:
        with self.lock:
            return list(self._units.values())

    def get(self, unit_id: str) -> U:
        with self.lock:
            try:
                return self._units[unit_id]
            except KeyError:
                raise NoSuchObject(f"no unit '{unit_id}' in service {self.service_id}") from None

    # -- submit --------------------------------------------------------------------------
    def submit(self, descriptions: Sequence[Any]) -> list[U]:
        checked = sweeps.expand_all(_validated(descriptions))
        self.placement.locator.check(checked)
        now = time.time()
        with self.placement.place_lock:
            first = self._allocate(len(checked))
            with self.lock:
                ids = [f"{self.service_id}.{first + n}" for n in range(len(checked))]
                new = list(zip(ids, checked, strict=True))
                resolved = self._deps.resolve_new(new)
            units = []
            entered = (State.New, now)  # one tuple for every unit of the submit
            for unit_id, description in new:
                if unit_id in resolved:
                    description = WorkUnitDescription(description)  # may be shared: copy
                    description.after = resolved[unit_id]
                unit = self.new_unit(self, unit_id, description)
                unit.history.append(entered)
                units.append(unit)
            try:
                decided = self._record_new(units, now)
            except BaseException:
                with self.lock:
                    self._deps.forget(new)  # nothing was recorded: nothing may be named
                raise
            with self.lock:
                self._next_number = max(self._next_number, first + len(units))
                for unit in units:
                    self._units[unit.id] = unit
                    self._waiting[unit.id] = unit
                self._unsettled += len(units)
            self._apply(decided.values())
        return units

    def _allocate(self, count: int) -> int:
        """The first of ``count`` unit numbers nobody else was given (an atomic counter)."""
        counter = f"ids/{self.service_id}"
        first = int(self.coordination.allocate(counter, count))
        if first < self._next_number:
            # A service recorded before the counter existed: skip the numbers it used.
            behind = self._next_number - (first + count)
            if behind > 0:
                self.coordination.allocate(counter, behind)
            first = int(self.coordination.allocate(counter, count))
        return first

    def _record_new(self, units: list[U], now: float) -> dict[str, dict[str, Any]]:
        """Decide where new units go and record them with that, in one commit."""
        # Each description becomes a plain dict once: recorded, and handed to an agent
        # (units sharing one description share its dict: it is only encoded).
        as_dicts: dict[int, dict[str, Any]] = {}
        plain = []
        for each in units:
            values = as_dicts.get(id(each.description))
            if values is None:
                values = as_dicts[id(each.description)] = each.description.as_dict()
            plain.append(values)
        free, canceled = self.placement.gate(units)
        if len(free) != len(units):  # some wait for (or were canceled by) dependencies
            placeable = {unit.id for unit in free}
            free_plain = [p for p, unit in zip(plain, units, strict=True) if unit.id in placeable]
        else:
            free_plain = plain
        try:
            if self.owns:
                decided, by_pilot = self.placement.decide(free, free_plain)
            else:  # a follower records them; the owner places them
                decided, by_pilot = {}, {}
        except SchedulerError as exc:
            if self.placement.on_error != "wait":
                raise  # nothing is recorded
            log.warning("%s; the units submitted wait (on_error: wait)", exc)
            for unit in free:
                unit.state_detail = f"waiting: {exc}"
            decided, by_pilot = {}, {}
        decided.update(canceled)
        events = []
        for unit, values in zip(units, plain, strict=True):
            event: dict[str, Any] = {"ev": "unit", "id": unit.id, "d": values, "ts": now}
            if unit.id in decided:
                event["state"] = decided[unit.id]
            events.append(event)
        # Recorded and handed to the pilots in one step: nothing is half-recorded, and
        # once submit returns, a new process sees every unit and where it is.
        self.placement.commit(events, by_pilot)
        return decided

    # -- events ---------------------------------------------------------------------------
    def _apply(self, events: Iterable[dict[str, Any]]) -> None:
        changes: list[Change] = []
        sequence: list[tuple[str, str]] = []
        with self.lock:
            for event in events:
                kind = event.get("ev")
                if kind == "state":
                    unit = self._units.get(event["id"])
                    if unit is None:
                        # Its "unit" event is in another writer's file, not read yet.
                        self._orphans.setdefault(event["id"], []).append(event)
                        continue
                    made = self._advance_unit(unit, event)
                    if made is not None and (unit.state == State.New or unit.state.is_final):
                        self._place_again = True  # back to be placed, or its slots are free
                    changes += made or []
                elif kind == "unit" and event["id"] not in self._units:
                    unit = self.new_unit(self, event["id"], WorkUnitDescription(event["d"]))
                    self._deps.note(unit.id, event["d"])
                    unit.history.append((State.New, event["ts"]))
                    self._units[unit.id] = unit
                    self._waiting[unit.id] = unit
                    self._unsettled += 1
                    number = int(event["id"].rpartition(".")[2])
                    self._next_number = max(self._next_number, number + 1)
                    self._place_again = True  # submitted by another process: to be placed
                    later = self._orphans.pop(unit.id, [])
                    if "state" in event:
                        later.insert(0, event["state"])
                    for state_event in later:
                        changes += self._advance_unit(unit, state_event) or []
                elif kind in ("add", "remove"):
                    sequence.append((kind, event["pjs"]))
        # Replay attach/detach in order; a service seen only in the stream (another
        # process attached it) gets a manager of its own here.
        for kind, service_id in sequence:
            with self.lock:
                manager = self._watched.get(service_id)
            if manager is None:
                manager = PilotManager(service_id, self.coordination_url, self.new_pilot)
                self._owned_managers.append(manager)
                with self.lock:
                    self._watched[service_id] = manager
            with self.lock:
                if kind == "add":
                    self._pilot_managers[service_id] = manager
                else:
                    self._pilot_managers.pop(service_id, None)
        if changes:
            self.monitor_notify(changes)

    def _advance_unit(self, unit: U, event: dict[str, Any]) -> list[Change] | None:
        """Apply one state event to a unit (and its pilot, exit code, sandbox); None if stale.

        Keeps the pilots' load counters and the waiting and queued sets up to date.
        """
        before = (unit.pilot, unit.state)
        made = self._step_unit(unit, event)
        if made is not None:
            after = (unit.pilot, unit.state)
            if after != before:
                self.placement.loads.move(unit.description.cores, before, after)
                if self._waiting.pop(unit.id, None) is not None and not self._waiting:
                    self._waiting = {}  # a dict keeps its largest table: give it back
                if self._queued.pop(unit.id, None) is not None and not self._queued:
                    self._queued = {}
                if unit.state == State.New:
                    self._waiting[unit.id] = unit
                elif unit.state == State.Pending:
                    self._queued[unit.id] = unit
        return made

    @staticmethod
    def _step_unit(unit: U, event: dict[str, Any]) -> list[Change] | None:
        made: list[Change] | None = None
        for state, ts, detail in steps(event):
            step = advance(unit, state, event.get("a", 0), ts, detail)
            if step is not None:
                made = (made or []) + step
        if made is not None:
            if "pilot" in event:
                # "": sent back to be placed again; interned: a pilot's id is held once
                unit.pilot = sys.intern(event["pilot"]) if event["pilot"] else None
            if "tries" in event:
                unit.tries = event["tries"]
            if "exit" in event:
                unit.exit_code = event["exit"]
            if "sandbox" in event:
                unit.sandbox = event["sandbox"]
            if "transfers" in event:
                unit.transfers = event["transfers"]
        return made

    def monitor_notify(self, changes: list[Change]) -> None:
        if self._reconnecting:
            self.deliver(changes)
        else:
            self.monitor.notify(lambda: self.deliver(changes))

    def _settled(self, count: int) -> None:
        self._unsettled -= count

    def _read_stream(self) -> bool:
        events, self._cursor = self.coordination.read(
            protocol.service_key(self.service_id), self._cursor, skip_own=True
        )
        if events:
            self._apply(events)
        return bool(events)

    # -- monitor ----------------------------------------------------------------------
    def _poll(self) -> bool:
        busy = self._read_stream()  # first: a follower that takes over judges what is known
        self._keep_lease()
        if not self.owns:
            return busy  # a follower only watches
        changed = False
        for pilot in self._pilots(watched=True):
            seen = (pilot.state, pilot.attempt, pilot.slots)
            if self._pilot_seen.get(pilot.id) == seen:
                continue
            changed = True
            if pilot.state.is_final:
                self._pilot_ended(pilot)  # if coordination fails, the next poll does it again
            self._pilot_seen[pilot.id] = seen
        if self._suspects:
            self._check_suspects()
        called_for = self.placement.next_call_at
        due = called_for is not None and time.monotonic() >= called_for
        if changed or self._place_again or due:
            self._place_again = False
            with self.lock:
                waiting = list(self._waiting.values())
                queued = list(self._queued.values()) if self._rebalance else []
            if waiting or queued:
                try:
                    self.placement.place(waiting, queued=queued)
                except TroyError:
                    self._place_again = True  # coordination failed: place them next poll
                    raise
            elif due:
                self.placement.next_call_at = None
        # While units are out on pilots, look often: a finished run is noticed at once;
        # and so is the time the scheduler asked to be called again.
        called_for = self.placement.next_call_at
        return (
            busy
            or (called_for is not None and called_for - time.monotonic() < SLOW_POLL)
            or (
                self._unsettled > 0
                and any(not p.state.is_final for p in self._pilots(watched=True))
            )
        )

    def _pilot_ended(self, pilot: TrackedPilot) -> None:
        """Deal with the units a pilot left behind when it ended.

        Units it never claimed are withdrawn from its queue and placed on another
        live pilot.  Units its agent had claimed and not reported to the end were
        lost with it: they run again elsewhere (see troy.model.retry), unless the
        pilot was canceled (then they are Canceled) or no pilot is live.
        """
        with self.lock:
            left = [u for u in self._units.values() if u.pilot == pilot.id and not u.state.is_final]
        if not left:
            return
        withdrawn = self._withdrawn.setdefault(pilot.id, set())
        withdrawn |= set(self.coordination.withdraw(pilot.queue, [u.id for u in left]))
        self._read_stream()  # the agent's last reports were written before it ended
        reason = f": {pilot.state_detail}" if pilot.state_detail else ""
        why = f"pilot {pilot.id} ended ({pilot.state}{reason})"
        final = "Canceled" if pilot.state == State.Canceled else "Failed"
        live = bool(self.placement.offers())
        events = []
        again = []
        shared = pilot.queue != protocol.pilot_key(pilot.id)
        for unit in left:
            if unit.state.is_final or unit.pilot != pilot.id:
                continue  # its agent reported it to the end after all, or sent it back
            if unit.id in withdrawn:
                again.append(unit)
                continue
            if shared and unit.state == State.Pending:
                # Claimed from a shared queue, maybe by another worker that has not yet
                # said so: give that one time to report it Running before calling it lost.
                grace = time.monotonic() + min(pilot.heartbeat_timeout, SHARED_CLAIM_GRACE)
                self._suspects[unit.id] = (grace, pilot.id, why, final)
                continue
            events.append(self._left_behind(unit, why, final, live))
        if again:
            self.placement.place(again, withdrawn_from=pilot.id)
            unplaced = [u for u in again if u.pilot == pilot.id and not u.state.is_final]
            if self.placement.offers():
                # The scheduler left them waiting (a just-in-time strategy does): they
                # wait, New again, for a later placement on a live pilot.
                events += [
                    protocol.unit_state_event(
                        u.id,
                        "New",
                        u.attempt + 1,
                        pilot="",
                        detail=f"{why} before it started; waiting to be placed again",
                    )
                    for u in unplaced
                ]
            else:
                events += [
                    protocol.unit_state_event(
                        u.id,
                        final,
                        u.attempt,
                        detail=f"{why} before it started; no other pilot is live",
                    )
                    for u in unplaced
                ]
        if events:
            self.coordination.append(protocol.service_key(self.service_id), events)
            self._apply(events)
        del self._withdrawn[pilot.id]

    @staticmethod
    def _left_behind(unit: U, why: str, final: str, live: bool) -> dict[str, Any]:
        """The event for a unit its pilot's end cut off: back to run again, or final."""
        retries = unit.description.get("retries")
        if final == "Failed" and live and retry.again(unit.tries, "lost", retries):
            return protocol.unit_state_event(
                unit.id,
                "New",
                unit.attempt + 1,
                pilot="",
                detail=retry.requeue_detail(unit.tries, "lost", why, retries),
                tries=retry.record(unit.tries, unit.attempt, "lost", why),
            )
        return protocol.unit_state_event(
            unit.id, final, unit.attempt, detail=retry.final_detail(unit.tries, why)
        )

    def _check_suspects(self) -> None:
        """Units claimed from a shared queue when a pilot ended: lost unless someone ran them."""
        now = time.monotonic()
        events = []
        for unit_id, (deadline, pilot_id, why, final) in list(self._suspects.items()):
            unit = self._units.get(unit_id)
            if unit is None or unit.state != State.Pending or unit.pilot != pilot_id:
                del self._suspects[unit_id]  # another worker reported it: not lost
            elif now >= deadline:
                del self._suspects[unit_id]
                events.append(self._left_behind(unit, why, final, bool(self.placement.offers())))
        if events:
            self.coordination.append(protocol.service_key(self.service_id), events)
            self._apply(events)

    # -- cancel and wait -----------------------------------------------------------------
    def cancel_units(self, units: Sequence[U]) -> None:
        """Cancel units: withdraw the queued ones, ask agents to stop the claimed ones."""
        with self.placement.place_lock:
            live = [u for u in units if not u.state.is_final]
            if not live:
                return
            events = [
                protocol.unit_state_event(u.id, "Canceled", u.attempt, detail="canceled")
                for u in live
                if u.pilot is None
            ]
            by_pilot: dict[str, list[U]] = {}
            for unit in live:
                if unit.pilot is not None:
                    by_pilot.setdefault(unit.pilot, []).append(unit)
            for pilot_id, placed in by_pilot.items():
                withdrawn = set(
                    self.coordination.withdraw(protocol.pilot_key(pilot_id), [u.id for u in placed])
                )
                events += [
                    protocol.unit_state_event(u.id, "Canceled", u.attempt, detail="canceled")
                    for u in placed
                    if u.id in withdrawn
                ]
                claimed = [u.id for u in placed if u.id not in withdrawn]
                if claimed:
                    self.coordination.append(
                        protocol.control_stream(pilot_id), [{"ev": "cancel", "units": claimed}]
                    )
            if events:
                self.coordination.append(protocol.service_key(self.service_id), events)
                self._apply(events)
        self.monitor.wake()

    def cancel_all(self) -> None:
        self.cancel_units(self.units())

    def wait(self, units: Sequence[U] | None, timeout: float | None) -> None:
        """Block until the units (default: all) are final and their callbacks ran."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.settled:
            while True:
                if units is None:
                    if self._unsettled <= 0:
                        return
                elif all(u._is_settled() for u in units):
                    return
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    left = (
                        self._unsettled
                        if units is None
                        else sum(not u._is_settled() for u in units)
                    )
                    raise Timeout(
                        f"{left} unit(s) of {self.service_id} not finished after {timeout:g} s"
                    )
                self.settled.wait(0.5 if remaining is None else min(remaining, 0.5))

    def close(self) -> None:
        """Stop watching (units keep running on their pilots); give up the lease if held.

        The owner of a service whose units are all final compacts its stream first
        (troy.core.compaction): a reconnect replays the same units from a summary.
        """
        self.monitor.stop()
        if self.owns and self._units and all(u.state.is_final for u in self.units()):
            try:
                compaction.compact_unit_service(self.coordination, self.service_id)
            except TroyError as exc:
                log.warning("%s: not compacted: %s", self.service_id, exc)
        self.lease.release()
        for manager in self._owned_managers:
            manager.close()
        super().close()


__all__ = ["TroyError", "UnitManager"]
