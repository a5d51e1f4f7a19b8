"""What is special about the affinity scheduler: label matching, a cycle per label, its reasons."""

from collections import Counter

import pytest

from troy.model.errors import BadDescription
from troy.model.states import State
from troy.plugins import registry
from troy.plugins.schedulers.affinity import AffinityScheduler, matches_affinity
from troy.plugins.schedulers.base import PilotOffer, UnitRequest
from troy.testing.schedulers import labelled, pilot, units_of


def test_it_is_the_registered_affinity_scheduler() -> None:
    assert registry.load("scheduler", "affinity") is AffinityScheduler
    assert "affinity" in AffinityScheduler.capabilities
    assert "packing" not in AffinityScheduler.capabilities


@pytest.mark.parametrize(
    ("unit_labels", "pilot_labels", "expected"),
    [
        # (datacenter, machine) of the unit, then of the pilot
        ((None, None), (None, None), True),
        ((None, None), ("dc-a", "m1"), True),
        ((None, "m1"), ("dc-a", "m1"), True),  # a machine label implies its datacenter
        ((None, "m1"), (None, "m1"), True),
        ((None, "m1"), ("dc-a", "m2"), False),
        ((None, "m1"), ("dc-a", None), False),
        (("dc-a", "m1"), ("dc-a", "m1"), True),
        (("dc-b", "m1"), ("dc-a", "m1"), False),
        (("dc-a", "m1"), (None, "m1"), False),
        (("dc-a", None), ("dc-a", "m1"), True),
        (("dc-a", None), ("dc-a", None), True),
        (("dc-a", None), ("dc-b", "m1"), False),
        (("dc-a", None), (None, None), False),
    ],
)
def test_labels_match_by_machine_then_datacenter(
    unit_labels: tuple[str | None, str | None],
    pilot_labels: tuple[str | None, str | None],
    expected: bool,
) -> None:
    unit = UnitRequest("u", datacenter=unit_labels[0], machine=unit_labels[1])
    offer = labelled("p", *pilot_labels)

    assert matches_affinity(unit, offer) is expected
    assert (AffinityScheduler().place([unit], [offer])["u"] == "p") is expected


def test_units_are_dealt_round_robin_over_the_pilots_that_match() -> None:
    pilots = [
        labelled("x1", "dc-a", "m1"),
        labelled("y", "dc-a", "m2"),
        labelled("x2", "dc-b", "m1"),
    ]
    units = [UnitRequest(f"u{i}", machine="m1") for i in range(5)]

    placement = AffinityScheduler().place(units, pilots)

    assert list(placement.values()) == ["x1", "x2", "x1", "x2", "x1"]


def test_each_label_has_its_own_cycle_and_unlabelled_units_use_every_pilot() -> None:
    pilots = [labelled("a", "dc-a", "m1"), labelled("b", "dc-a", "m2"), pilot("c")]
    units = []
    for i in range(6):
        units += [UnitRequest(f"any{i}"), UnitRequest(f"dc{i}", datacenter="dc-a")]

    placement = AffinityScheduler().place(units, pilots)

    assert list(placement) == [unit.id for unit in units]
    assert [placement[f"any{i}"] for i in range(6)] == ["a", "b", "c", "a", "b", "c"]
    assert [placement[f"dc{i}"] for i in range(6)] == ["a", "b", "a", "b", "a", "b"]


def test_one_unit_per_call_lands_like_one_bulk_call() -> None:
    pilots = [
        labelled("a", "dc-a", "m1", slots=2),
        labelled("b", "dc-a", "m2"),
        labelled("c", "dc-b", "m3"),
        pilot("d", None, State.Pending),
    ]
    labels = [(None, None), ("dc-a", None), (None, "m1"), ("dc-b", "m3"), (None, "m9")]
    units = [
        UnitRequest(f"u{i}", cores=(1, 4)[i % 2], datacenter=dc, machine=m)
        for i, (dc, m) in enumerate(labels * 8)
    ]

    bulk = AffinityScheduler().place(units, pilots)
    scheduler = AffinityScheduler()
    single: dict[str, str | None] = {}
    for unit in units:
        single.update(scheduler.place([unit], pilots))

    assert single == bulk
    assert set(bulk.values()) == {"a", "b", "c", "d", None}


def test_a_labelled_unit_waits_rather_than_run_elsewhere() -> None:
    pilots = [
        labelled("p1", "dc-a", "m2"),
        labelled("p2", None, None),
        PilotOffer("gone", State.Failed, slots=8, datacenter="dc-a", machine="m1"),
    ]
    unit = UnitRequest("u", machine="m1")

    assert dict(AffinityScheduler().place([unit], pilots)) == {"u": None}


def test_the_waiting_reason_names_the_label_and_the_pilots_offered() -> None:
    pilots = [labelled("p1", "dc-a", "m2"), labelled("p2", None, None)]
    unit = UnitRequest("u", machine="m1")

    assert AffinityScheduler().waiting_reason(unit, pilots) == (
        "waiting for a pilot with affinity_machine_label 'm1' "
        "(pilots offered: p1 [dc-a/m2], p2 [-/-])"
    )


def test_the_waiting_reason_names_both_labels_and_at_most_five_pilots() -> None:
    pilots = [labelled(f"p{i}", "dc-b", f"m{i}") for i in range(8)]
    unit = UnitRequest("u", datacenter="dc-a", machine="m1")

    reason = AffinityScheduler().waiting_reason(unit, pilots)

    assert reason == (
        "waiting for a pilot with affinity_machine_label 'm1' and affinity_datacenter_label "
        "'dc-a' (pilots offered: p0 [dc-b/m0], p1 [dc-b/m1], p2 [dc-b/m2], p3 [dc-b/m3], "
        "p4 [dc-b/m4], and 3 more)"
    )


def test_the_waiting_reason_says_when_no_pilot_is_offered() -> None:
    unit = UnitRequest("u", datacenter="dc-a")

    assert AffinityScheduler().waiting_reason(unit, []) == (
        "waiting for a pilot with affinity_datacenter_label 'dc-a' (pilots offered: none)"
    )


def test_the_waiting_reason_says_when_matching_pilots_are_too_small() -> None:
    pilots = [labelled("small", "dc-a", "m1", slots=2), labelled("big", "dc-a", "m2", slots=64)]
    unit = UnitRequest("u", cores=4, machine="m1")

    assert AffinityScheduler().place([unit], pilots) == {"u": None}
    assert AffinityScheduler().waiting_reason(unit, pilots) == (
        "waiting for a pilot with affinity_machine_label 'm1' and 4 free slot(s) "
        "(pilots with those labels: small [dc-a/m1])"
    )


def test_a_unit_without_labels_gets_the_default_reason() -> None:
    unit = UnitRequest("u", cores=16)

    assert AffinityScheduler().waiting_reason(unit, [pilot("p", 4)]) == (
        "waiting for a pilot with 16 free slot(s)"
    )


def test_the_seed_does_not_matter() -> None:
    pilots = [labelled("a", "dc-a", "m1"), labelled("b", "dc-a", "m2"), pilot("c")]
    units = [UnitRequest(f"u{i}", datacenter=("dc-a", None)[i % 2]) for i in range(10)]

    assert AffinityScheduler(seed=1).place(units, pilots) == AffinityScheduler(seed=2).place(
        units, pilots
    )


def test_a_hundred_thousand_units_on_ten_pilots_are_all_placed() -> None:
    # A smoke test of the bulk path; timings are measured and reported, not asserted.
    pilots = [labelled(f"p{i}", f"dc{i % 2}", f"m{i}", slots=64) for i in range(10)]
    units = [
        UnitRequest(
            f"u{i}", machine=(None, f"m{i % 10}")[i % 2], datacenter=(None, "dc0")[i % 5 == 0]
        )
        for i in range(100_000)
    ]
    units += units_of(10, prefix="plain")

    placement = AffinityScheduler().place(units, pilots)

    assert len(placement) == len(units)
    load = Counter(placement.values())
    # Units i = 5 (mod 10) name machine m5 in dc0, but p5 is in dc1: those wait.
    waiting = 100_000 // 10
    assert load[None] == waiting
    assert sum(load[f"p{i}"] for i in range(10)) == len(units) - waiting


# -- binding: late -------------------------------------------------------------------------


def test_binding_is_an_option_early_by_default() -> None:
    assert AffinityScheduler().late is False
    assert AffinityScheduler(binding="late").late is True
    assert AffinityScheduler.check_options({"binding": "late"}) == {"binding": "late"}
    with pytest.raises(BadDescription, match="expected one of 'early', 'late'"):
        AffinityScheduler.check_options({"binding": "lazy"})


def test_late_binding_deals_round_robin_only_into_open_slots() -> None:
    pilots = [
        labelled("a1", "dc-a", "m1", slots=2),
        PilotOffer("a2", State.Running, 4, running=3, busy=3, datacenter="dc-a", machine="m2"),
        labelled("b3", "dc-b", "m3", slots=4),
    ]
    units = [UnitRequest(f"dca-{i}", datacenter="dc-a") for i in range(5)]

    early = AffinityScheduler().place(units, pilots)
    late = AffinityScheduler(binding="late").place(units, pilots)

    assert list(early.values()) == ["a1", "a2", "a1", "a2", "a1"]
    # a1 has 2 open slots, a2 1; b3 is idle but in the wrong datacenter.
    assert list(late.values()) == ["a1", "a2", "a1", None, None]


def test_late_binding_keeps_its_cycle_between_calls() -> None:
    scheduler = AffinityScheduler(binding="late")
    pilots = [pilot("p1", 1), pilot("p2", 1), pilot("p3", 1)]

    assert scheduler.place(units_of(1, prefix="a"), pilots) == {"a0": "p1"}
    # p1's unit runs; the next unit goes on round the cycle, to p2.
    running = [PilotOffer("p1", State.Running, 1, running=1, busy=1), *pilots[1:]]
    assert scheduler.place(units_of(1, prefix="b"), running) == {"b0": "p2"}


def test_late_binding_says_why_a_unit_waits() -> None:
    scheduler = AffinityScheduler(binding="late")
    full = [PilotOffer("a1", State.Running, 1, queued=1, datacenter="dc-a", machine="m1")]
    unit = UnitRequest("u", machine="m1")

    assert scheduler.place([unit], full) == {"u": None}
    assert "open slot" in scheduler.waiting_reason(unit, full)
