"""The coordination conformance suite: what every ``troy.coordination`` plugin must do.

Run it against a plugin with one subclass that says where the service is::

    import pytest
    from troy.testing.coordination import CoordinationSuite

    class TestMyCoordination(CoordinationSuite):
        @pytest.fixture
        def coordination_url(self, tmp_path):
            return "mine://localhost:1234/0"

Connections are opened through the registry (``open_coordination``), exactly
as troy opens them, so the plugin must be installed.  Every test works below a
fresh name prefix, so one long-lived service can be shared by all tests.

The fixtures are in `base`; each other module holds the tests of one group of
operations as a mixin: `names`, `records`, `streams` (and their cursors),
`queues` (claim, withdraw), `commit`, `races` (claimers in separate
processes) and `durability` (contract 1.2: create_record, allocate, ack,
compact; racers in separate processes) and `waiting` (contract 1.4:
wait_for_work).  ``CoordinationSuite`` combines them all.

Capabilities (``Coordination.capabilities``) the suite knows:

``"multiprocess"``
    connections opened from the same URL in other processes share one state;
    the racing tests (claimers in separate OS processes) skip without it.

A plugin's test file may also override the ``claimed_count`` fixture (how many
items a claimer's claimed storage holds), which the ``ack`` tests use to check
that acknowledged items are dropped.
"""

from troy.testing.coordination.base import MULTIPROCESS, Connect, CoordinationFixtures
from troy.testing.coordination.commit import CommitTests
from troy.testing.coordination.durability import ClaimedCount, DurabilityTests
from troy.testing.coordination.names import BAD_NAMES, NameTests
from troy.testing.coordination.queues import QueueTests
from troy.testing.coordination.races import QueueRaceTests
from troy.testing.coordination.records import RecordTests
from troy.testing.coordination.streams import StreamTests
from troy.testing.coordination.waiting import WaitTests

__all__ = [
    "BAD_NAMES",
    "MULTIPROCESS",
    "ClaimedCount",
    "CommitTests",
    "Connect",
    "CoordinationFixtures",
    "CoordinationSuite",
    "DurabilityTests",
    "NameTests",
    "QueueRaceTests",
    "QueueTests",
    "RecordTests",
    "StreamTests",
    "WaitTests",
]


class CoordinationSuite(
    NameTests,
    RecordTests,
    StreamTests,
    QueueTests,
    CommitTests,
    QueueRaceTests,
    DurabilityTests,
    WaitTests,
):
    """Every conformance test; subclass it and override ``coordination_url``."""
