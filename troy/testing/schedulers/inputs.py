"""Units that read data: inputs with sizes and replicas are plain values every scheduler takes."""

from __future__ import annotations

from troy.plugins.schedulers.base import DataInput, Replica, UnitRequest
from troy.testing.schedulers.base import MakeScheduler, SchedulerFixtures, check_placement, labelled

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


class SchedulerInputTests(SchedulerFixtures):
    """Units with input data are placed like any other (data-aware strategies may prefer)."""

    def test_units_with_inputs_are_placed(self, make_scheduler: MakeScheduler) -> None:
        pilots = [labelled("plain", None, None), labelled("a1", "dc-a", "m1", slots=2)]
        units = [
            reading("one", INPUTS[0]),
            reading("all", *INPUTS),
            reading("far", INPUTS[1], hints={"runtime": 2.0}),
            reading("lost", INPUTS[2]),
            reading("empty", INPUTS[3]),
            # input_data a manager could not locate: the URL without its DataInput
            UnitRequest("unknown", input_data=("du://unknown",)),
        ]

        placement = make_scheduler(0).place(units, pilots)

        check_placement(placement, units, pilots)
        assert None not in placement.values(), (
            "units without affinity labels were left waiting next to idle pilots "
            f"because of their inputs: {dict(placement)}"
        )

    def test_units_with_inputs_and_no_pilots_wait(self, make_scheduler: MakeScheduler) -> None:
        units = [reading("one", INPUTS[0]), reading("all", *INPUTS)]

        assert dict(make_scheduler(0).place(units, [])) == {"one": None, "all": None}
