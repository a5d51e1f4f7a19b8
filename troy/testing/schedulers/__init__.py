"""The scheduler conformance suite: what every ``troy.schedulers`` plugin must do.

Run it against a scheduler with one subclass that names it::

    import pytest
    from troy.testing.schedulers import SchedulerSuite

    class TestMyScheduler(SchedulerSuite):
        @pytest.fixture
        def scheduler_name(self):
            return "my_scheduler"

The scheduler is loaded through the registry by its entry-point name, exactly
as ``WorkUnitService(scheduler=...)`` loads it. The fixtures are in `base`;
each other module holds one group of tests as a mixin: `contract` (an entry
per unit, fit, determinism, spreading), `order` (a mapping of unit id to pilot
id or None, and its order per pilot; progress over successive calls as slots
free up), `options`, `inputs` (a unit reading each kind of input data, on its
own and together), `processes` (the same placement in interpreters with other
hash seeds, over pilots that tie), `misbehaving` (the manager's error for each
way of breaking the contract), `affinity` and `rebalance`.  Every call to
``place`` goes through `placement_of`, which fails naming the scheduler when it
raises (and in which situation) or returns anything but a mapping of unit id
to pilot id or None.  ``SchedulerSuite`` combines them all.

Besides the contract in `troy.plugins.schedulers.base`, the suite holds
schedulers to these conventions:

- *Progress*: a unit without affinity or input data is not left waiting while
  some offered pilot that can hold it has room for it: free slots less one per
  queued unit and less what the same call gave it (`waiting_without_room`). A
  pilot whose size is unknown (``slots=None``) has room for one unit while
  nothing is on it. A just-in-time strategy passes: it fills the room there is
  and places the rest once slots are free. A strategy that keeps room free on
  purpose, for a unit that came earlier (EASY backfilling's reservation),
  declares the capability ``"reserves"``: in one call it is held only to
  placing units it may start; over successive calls, every unit must still
  start.
- *Spreading*: with equal, idle pilots, no pilot gets more than twice its fair
  share of one-core units. A scheduler that fills pilots one after another on
  purpose declares the capability ``"packing"``, and the spreading test is
  skipped for it.

Capabilities (``Scheduler.capabilities``) the suite knows; each group of
tests skips, saying why, without its capability:

``"affinity"``
    a unit naming a machine goes only to a pilot with that ``machine`` label
    (and that ``datacenter`` label, if it names one too), a unit naming only a
    datacenter only to a pilot in it, and a unit no matching pilot can hold
    waits, with a `waiting_reason` that names the label it waits for.
``"rebalance"``
    the scheduler is also offered units queued on a pilot and not started
    (``queued_on``); it moves them only to pilots that may hold them, moves
    some when another pilot is idle, and none between equally loaded pilots.
``"packing"``
    see *Spreading*.
"""

from troy.testing.schedulers.affinity import SchedulerAffinityTests
from troy.testing.schedulers.base import (
    MakeScheduler,
    SchedulerFixtures,
    check_mapping,
    check_placement,
    labelled,
    name_of,
    order_per_pilot,
    pilot,
    placement_of,
    require_capability,
    units_of,
)
from troy.testing.schedulers.contract import (
    SchedulerDeterminismTests,
    SchedulerEntryTests,
    SchedulerFitTests,
    SchedulerSpreadTests,
)
from troy.testing.schedulers.inputs import SchedulerInputTests
from troy.testing.schedulers.misbehaving import SchedulerErrorTests
from troy.testing.schedulers.options import SchedulerOptionTests
from troy.testing.schedulers.order import SchedulerOrderTests, SchedulerProgressTests, drive
from troy.testing.schedulers.processes import SchedulerProcessTests
from troy.testing.schedulers.rebalance import SchedulerRebalanceTests

__all__ = [
    "MakeScheduler",
    "SchedulerAffinityTests",
    "SchedulerDeterminismTests",
    "SchedulerEntryTests",
    "SchedulerErrorTests",
    "SchedulerFitTests",
    "SchedulerFixtures",
    "SchedulerInputTests",
    "SchedulerOptionTests",
    "SchedulerOrderTests",
    "SchedulerProcessTests",
    "SchedulerProgressTests",
    "SchedulerRebalanceTests",
    "SchedulerSpreadTests",
    "SchedulerSuite",
    "check_mapping",
    "check_placement",
    "drive",
    "labelled",
    "name_of",
    "order_per_pilot",
    "pilot",
    "placement_of",
    "require_capability",
    "units_of",
]


class SchedulerSuite(
    SchedulerEntryTests,
    SchedulerFitTests,
    SchedulerDeterminismTests,
    SchedulerSpreadTests,
    SchedulerOrderTests,
    SchedulerProgressTests,
    SchedulerOptionTests,
    SchedulerInputTests,
    SchedulerProcessTests,
    SchedulerErrorTests,
    SchedulerAffinityTests,
    SchedulerRebalanceTests,
):
    """Every scheduler test; subclass it (as ``Test...``) and override ``scheduler_name``."""
