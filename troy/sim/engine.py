"""A discrete-event simulation of a workload that drives a scheduler plugin, unmodified.

The clock is virtual: events wait in a heap of (time, sequence, ...), the
sequence breaking ties in the order the events were made, so the same
workload, scheduler and seed give the same records, byte for byte.

The model, event by event (what a real run does, see troy.core.placement and
troy.core.unit_manager):

- *A unit arrives* at ``SimUnit.submit``; one with ``after`` waits until every
  unit it names is Done, and is Canceled as soon as one of them ends Failed or
  Canceled (naming it), as are in turn the units waiting for it.
- *A pilot starts* at ``start_delay`` plus the workload's
  ``overheads.pilot_start_s`` (its offer goes from Pending to Running) and
  *ends* Failed at ``start_delay + wall_time`` or at a `Failure`.  Its queued
  units go back to be placed (no try counted: they never started); its running
  units are lost: they go back with one more try while troy.model.retry allows
  (``MAX_LOSSES``), else they are Failed.  With no live pilot left, both are Failed.
- *A unit ends*: its slots are free.
- *The scheduler's timer*: ``next_call()`` is asked after every call of ``place``.

After the events of one instant, ``place`` is called as the manager calls it:
when something happened (or the timer is due) and units wait, with the waiting
units in the order they came to wait and every live pilot, offered as the
manager offers them (`UnitRequest`, `PilotOffer`); its result is checked with
the manager's own checks (troy.plugins.schedulers.checks: SchedulerError, which
ends the simulation).  A unit bigger than every live pilot fails at once.
``place`` is called at most once per *placement interval* (``interval``, 10 ms
of virtual time by default, the manager's fastest poll): what happens within the
interval after a call is placed in one call at its end (0 calls at every
instant).  The waiting units are handed as `SortedUnits`, in the scheduler's
`Scheduler.unit_order` and produced one at a time, so a just-in-time scheduler
that stops once no slot is open costs what it looked at, not every unit that
waits; the result is that of the plain list.

Each pilot runs its queue first in, first out, in the order placed: the head
starts as soon as its pilot has started and has enough free slots.  A unit
holds its slots for ``overheads.unit_start_s + staging + runtime / speed``
seconds, staging being the network's transfer time of each input not local
to the pilot (`is_local`, the rule of the data-aware scheduler and of the
agent's staging).

Differences from a real run: troy's agent lets a unit pass a head that does
not fit for up to 2 s (troy.agent.slots: bounded backfill), here no unit
passes the head; claim and start-up latencies are only the workload's
``overheads`` (none by default), and there is no poll but the placement
interval (a timer of 0 s fires after 10 ms, the manager's fastest poll);
units never fail on their own (``retries`` and
``wall_time_limit`` are not enforced); the units a pilot's end gives back are
placed together with the other waiting units in one call (the manager first
places those it withdrew from the queue in a call of their own); ``bytes_moved``
and ``pilot`` are those of a unit's last attempt.  A timer left with nothing
else to happen ends the simulation after a call that places nothing.
"""

from __future__ import annotations

from typing import Any

from troy.plugins.schedulers.base import Scheduler
from troy.sim.model import Workload
from troy.sim.play import Simulation
from troy.sim.result import PilotUsage, SimResult, VirtualClock, make_scheduler
from troy.sim.state import POLL

__all__ = ["POLL", "PilotUsage", "SimResult", "VirtualClock", "make_scheduler", "run", "simulate"]


def simulate(
    workload: Workload,
    scheduler: Scheduler,
    clock: VirtualClock | None = None,
    interval: float = POLL,
) -> SimResult:
    """Play ``workload`` with ``scheduler``; SchedulerError if the scheduler misbehaves.

    A scheduler that reads the time must have been made with ``clock``
    (`make_scheduler`); BadDescription for a workload that names what it lacks.
    ``interval``: the placement interval, virtual seconds (see the module docstring).
    """
    return Simulation(workload, scheduler, clock or VirtualClock(), interval).run()


def run(
    workload: Workload,
    scheduler: str,
    options: dict[str, Any] | None = None,
    seed: int | None = None,
    interval: float = POLL,
) -> SimResult:
    """Simulate ``workload`` with the installed scheduler ``scheduler`` (seed: the workload's)."""
    clock = VirtualClock()
    chosen = make_scheduler(scheduler, options, workload.seed if seed is None else seed, clock)
    return simulate(workload, chosen, clock, interval)
