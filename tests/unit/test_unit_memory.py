"""What a unit costs the manager that keeps it: a guard on the bytes per unit of a bulk submit.

Measured with tracemalloc (what Python allocated, not RSS: independent of the
machine's load and of the allocator), on 20,000 units that no pilot runs.
The bounds hold with a margin; before units shared their description and
left tries/transfers unset, a unit kept about 860 bytes and the submit
peaked at about 1,740 bytes a unit (both bounds failed).
"""

from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path

import troy

UNITS = 20_000
#: Bytes a unit keeps once submitted (measured: about 470).
KEPT_PER_UNIT = 700
#: Bytes a unit takes at the submit's peak (measured: about 930).
PEAK_PER_UNIT = 1_500


def test_a_bulk_submit_keeps_few_bytes_a_unit(tmp_path: Path) -> None:
    service = troy.WorkUnitService(coordination=f"file://{tmp_path}/coordination")
    try:
        description = {"executable": "/bin/true"}
        service.submit([description])  # the first submit's one-off costs are not a unit's
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            units = service.submit([description] * UNITS)
            gc.collect()
            kept, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert len(units) == UNITS and units[-1].state == troy.State.New
        kept_per_unit = (kept - before) / UNITS
        peak_per_unit = (peak - before) / UNITS
        assert kept_per_unit < KEPT_PER_UNIT, f"{kept_per_unit:.0f} bytes kept a unit"
        assert peak_per_unit < PEAK_PER_UNIT, f"{peak_per_unit:.0f} bytes a unit at the peak"
    finally:
        service.close()


def test_units_of_one_description_share_it_but_not_their_own_fields(tmp_path: Path) -> None:
    service = troy.WorkUnitService(coordination=f"file://{tmp_path}/coordination")
    try:
        first, second = service.submit([{"executable": "/bin/true", "name": "a"}] * 2)
        assert first.description is second.description
        assert first.tries == [] and first.transfers == []
        first.tries = [{"a": 0, "kind": "failed", "why": "exit 1"}]
        assert second.tries == []
        assert first.history[0][0] == troy.State.New
        # A unit that names another gets its own description (its resolved ``after``).
        (later,) = service.submit([{"executable": "/bin/true", "name": "b", "after": [first.id]}])
        assert later.description.get("after")
        assert not first.description.get("after")
    finally:
        service.close()
