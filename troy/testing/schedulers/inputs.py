"""Units that read data: inputs with sizes and replicas are plain values every scheduler takes.

A data-aware strategy looks into ``UnitRequest.inputs``, and that is where a
scheduler breaks that works with every other unit: a data unit with no copy
known, one of size 0, a URL the manager could not locate.  Each of those is
tried on its own first, so a failure names the kind of input that broke it.
"""

from __future__ import annotations

import pytest

from troy.plugins.schedulers.base import DataInput, Replica, UnitRequest
from troy.testing.schedulers.base import (
    MakeScheduler,
    SchedulerFixtures,
    check_placement,
    labelled,
    name_of,
    placement_of,
)

#: Data units: one near pilot "a1", one in datacenter dc-b, one with no copy known, one empty.
INPUTS = (
    DataInput("du://near", 10_000_000, (Replica("pd-1", "dc-a", "m1"),)),
    DataInput("du://far", 2_000, (Replica("pd-2", "dc-b", None), Replica("pd-3", None, None))),
    DataInput("du://lost", 500, ()),
    DataInput("du://empty"),
)


def reading(unit_id: str, *inputs: DataInput, hints: dict[str, float] | None = None) -> UnitRequest:
    """A unit reading ``inputs`` (their URLs in ``input_data`` too)."""
    return UnitRequest(
        unit_id,
        input_data=tuple(data.url for data in inputs),
        inputs=inputs,
        hints=hints or {},
    )


#: A unit reading each kind of input a scheduler meets, by what is special about it.
READERS = {
    "one replica, on a pilot's machine": reading("near", INPUTS[0]),
    "replicas in another datacenter and without labels": reading("far", INPUTS[1]),
    "no replica known": reading("lost", INPUTS[2]),
    "size 0 and no replica (empty, or not measured yet)": reading("empty", INPUTS[3]),
    "several inputs, one of each kind": reading("all", *INPUTS),
    "a runtime hint besides its input": reading("hinted", INPUTS[1], hints={"runtime": 2.0}),
    # input_data a manager could not locate: the URL without its DataInput
    "an input_data URL the manager could not locate (no DataInput)": UnitRequest(
        "unknown", input_data=("du://unknown",)
    ),
}


class SchedulerInputTests(SchedulerFixtures):
    """Units with input data are placed like any other (data-aware strategies may prefer)."""

    @pytest.mark.parametrize("kind", list(READERS))
    def test_a_unit_reading_data_is_placed(self, make_scheduler: MakeScheduler, kind: str) -> None:
        pilots = [labelled("plain", None, None), labelled("a1", "dc-a", "m1", slots=2)]
        unit = READERS[kind]

        placement = placement_of(
            make_scheduler(0), [unit], pilots, f"for a unit reading data ({kind})"
        )

        check_placement(placement, [unit], pilots)
        assert placement[unit.id] is not None, (
            f"a unit reading data ({kind}), without affinity labels, was left waiting next "
            "to idle pilots"
        )

    def test_units_with_inputs_are_placed(self, make_scheduler: MakeScheduler) -> None:
        pilots = [labelled("plain", None, None), labelled("a1", "dc-a", "m1", slots=2)]
        units = list(READERS.values())

        placement = placement_of(make_scheduler(0), units, pilots, "for units reading data")

        check_placement(placement, units, pilots)
        assert None not in placement.values(), (
            "units without affinity labels were left waiting next to idle pilots "
            f"because of their inputs: {placement}"
        )

    def test_units_with_inputs_and_no_pilots_wait_with_a_reason(
        self, make_scheduler: MakeScheduler
    ) -> None:
        scheduler = make_scheduler(0)
        units = list(READERS.values())

        placement = placement_of(scheduler, units, [], "for units reading data, and no pilots")

        assert placement == dict.fromkeys(unit.id for unit in units)
        for kind, unit in READERS.items():
            try:
                reason = scheduler.waiting_reason(unit, [])
            except Exception as exc:
                raise AssertionError(
                    f"scheduler {name_of(scheduler)!r} raised {type(exc).__name__}: {exc} in "
                    f"waiting_reason() for a unit reading data ({kind})"
                ) from exc
            assert isinstance(reason, str), (
                f"scheduler {name_of(scheduler)!r}'s waiting_reason returned "
                f"{type(reason).__name__}, expected a str (shown in the unit's state_detail)"
            )
