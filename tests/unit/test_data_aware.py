"""What is special about the data_aware scheduler: bytes to move first, then free slots."""

from collections import Counter

import pytest

from troy.model.errors import BadDescription
from troy.model.states import State
from troy.plugins import registry
from troy.plugins.schedulers.base import DataInput, PilotOffer, Replica, UnitRequest
from troy.plugins.schedulers.data_aware import DataAwareScheduler, is_local
from troy.testing.schedulers import labelled, pilot, units_of

#: Two pilots on machines m1 and m2 of one datacenter, equal and idle.
PILOTS = [labelled("p1", "dc-a", "m1"), labelled("p2", "dc-a", "m2")]


def on(machine: str | None, size: int, url: str = "", datacenter: str | None = None) -> DataInput:
    """A data unit of ``size`` bytes with one replica on ``machine``."""
    return DataInput(url or f"pd://{machine}/{size}", size, (Replica("pd", datacenter, machine),))


def reading(unit_id: str, *inputs: DataInput, cores: int = 1) -> UnitRequest:
    return UnitRequest(unit_id, cores=cores, inputs=inputs)


def place(units: list[UnitRequest], pilots: list[PilotOffer] = PILOTS) -> dict[str, str | None]:
    return dict(DataAwareScheduler().place(units, pilots))


def test_it_is_the_registered_data_aware_scheduler() -> None:
    assert registry.load("scheduler", "data_aware") is DataAwareScheduler
    assert "affinity" in DataAwareScheduler.capabilities
    assert "packing" not in DataAwareScheduler.capabilities


@pytest.mark.parametrize(
    ("replica", "pilot_labels", "expected"),
    [
        # (datacenter, machine) of the replica, then of the pilot
        (("dc-a", "m1"), ("dc-a", "m1"), True),
        ((None, "m1"), ("dc-b", "m1"), True),  # the machine decides, not the datacenter
        (("dc-a", "m1"), ("dc-a", "m2"), False),
        (("dc-a", None), ("dc-a", None), True),  # no machine on either side: the datacenter
        (("dc-a", None), ("dc-b", None), False),
        (("dc-a", "m1"), ("dc-a", None), False),  # a machine on one side only: not local
        (("dc-a", None), ("dc-a", "m1"), False),
        ((None, None), (None, None), False),  # no labels say nothing about locality
        (("dc-a", None), (None, None), False),
    ],
)
def test_a_replica_is_local_by_machine_else_by_datacenter(
    replica: tuple[str | None, str | None],
    pilot_labels: tuple[str | None, str | None],
    expected: bool,
) -> None:
    copy = Replica("pd", *replica)
    near = labelled("near", *pilot_labels, slots=1)
    # Offered first and idle, so it wins unless the replica is local to `near`.
    far = labelled("far", "dc-far", "m-far", slots=64)
    unit = reading("u", DataInput("pd://x/du", 100, (copy,)))

    assert is_local(copy, *pilot_labels) is expected
    assert (place([unit], [far, near])["u"] == "near") is expected


def test_each_unit_goes_where_its_bytes_are() -> None:
    big_on_m1, small_on_m2 = on("m1", 10_000), on("m2", 10)
    busy_p1 = [PilotOffer("p1", State.Running, 8, queued=6, machine="m1"), PILOTS[1]]
    units = [reading("a", big_on_m1), reading("b", small_on_m2), reading("c", big_on_m1)]

    # Free slots would favour p2; the bytes decide first.
    assert place(units, busy_p1) == {"a": "p1", "b": "p2", "c": "p1"}


def test_a_unit_with_split_inputs_goes_where_the_larger_part_is() -> None:
    units = [
        reading("more-on-m1", on("m1", 700), on("m2", 300)),
        reading("more-on-m2", on("m1", 300), on("m2", 301)),
        reading("several-on-m2", on("m1", 500), on("m2", 200), on("m2", 301, url="pd://y")),
    ]

    assert place(units) == {"more-on-m1": "p1", "more-on-m2": "p2", "several-on-m2": "p2"}


def test_an_input_with_copies_on_both_pilots_costs_nothing_on_either() -> None:
    everywhere = DataInput(
        "pd://x/both", 5_000, (Replica("s1", machine="m1"), Replica("s2", machine="m2"))
    )
    busy = [PilotOffer("p1", State.Running, 8, queued=5, machine="m1"), PILOTS[1]]

    assert place([reading("u", everywhere, on("m1", 1))], busy) == {"u": "p1"}
    assert place([reading("u", everywhere)], busy) == {"u": "p2"}


def test_two_copies_on_one_machine_save_their_bytes_once() -> None:
    twice_on_m1 = DataInput(
        "pd://x/twice", 100, (Replica("s1", machine="m1"), Replica("s2", machine="m1"))
    )

    assert place([reading("u", twice_on_m1, on("m2", 150))]) == {"u": "p2"}


def test_ties_go_to_the_pilot_with_the_highest_free_fraction_then_the_one_offered_first() -> None:
    pilots = [
        PilotOffer("p1", State.Running, 4, queued=1, machine="m1"),
        PilotOffer("p2", State.Running, 4, queued=0, machine="m2"),
        PilotOffer("p3", State.Running, 8, queued=2, running=3, machine="m3"),
    ]
    nowhere = on("m9", 100)  # costs the same on every pilot
    units = [reading(f"u{i}", nowhere) for i in range(6)]

    # (slots - load) / slots: p1 3/4, p2 4/4, p3 3/8 (3 free slots, like p1, but of 8);
    # each choice adds one unit to the chosen pilot's load.
    assert list(place(units, pilots).values()) == ["p2", "p1", "p2", "p1", "p2", "p3"]


def test_with_a_backlog_a_pilot_gets_units_in_proportion_to_its_slots() -> None:
    pilots = [pilot("one-slot", 1), pilot("three-slots", 3)]

    load = Counter(place(units_of(40), pilots).values())

    # The old rule (slots - queued) gave the 1-slot pilot 19 of 40 units.
    assert load == {"one-slot": 10, "three-slots": 30}


def test_the_free_fraction_counts_the_units_placed_in_the_same_call() -> None:
    pilots = [pilot("a", 8), pilot("b", 6)]
    units = [reading("wide", cores=4), reading("one"), reading("two")]

    # a: 8/8 -> 7/8 after "wide"; b (6/6) is freer for "one"; then a (7/8) beats b (5/6).
    assert place(units, pilots) == {"wide": "a", "one": "b", "two": "a"}


def test_inputs_of_unknown_size_do_not_pull_a_unit() -> None:
    unknown_on_m1 = on("m1", 0)
    busy_p1 = [PilotOffer("p1", State.Running, 8, queued=2, machine="m1"), PILOTS[1]]

    assert place([reading("u", unknown_on_m1)], busy_p1) == {"u": "p2"}
    assert place([reading("u", unknown_on_m1, on("m1", 1))], busy_p1) == {"u": "p1"}


def test_inputs_without_replicas_cost_the_same_everywhere() -> None:
    nowhere = DataInput("pd://x/lost", 1_000)
    busy_p1 = [PilotOffer("p1", State.Running, 8, queued=2, machine="m1"), PILOTS[1]]

    assert place([reading("u", nowhere)], busy_p1) == {"u": "p2"}


def test_units_without_inputs_go_to_the_pilot_with_the_highest_free_fraction() -> None:
    pilots = [
        PilotOffer("known", State.Running, 4, queued=1),
        PilotOffer("unknown", State.Pending, None),  # counts as one slot while its size is unknown
        PilotOffer("idle", State.Running, 4),
    ]

    # free fraction: known 3/4, unknown 1/1, idle 4/4; ties go to the pilot offered first.
    assert list(place(units_of(9), pilots).values()) == [
        "unknown", "idle", "known", "idle", "known", "idle", "known", "idle", "known"
    ]  # fmt: skip


def test_only_pilots_that_can_hold_the_unit_are_considered() -> None:
    pilots = [labelled("p1", "dc-a", "m1", slots=2), labelled("p2", "dc-a", "m2", slots=8)]

    assert place([reading("wide", on("m1", 10_000), cores=4)], pilots) == {"wide": "p2"}


def test_affinity_labels_filter_before_the_bytes_count() -> None:
    units = [
        UnitRequest("pinned", machine="m2", inputs=(on("m1", 10_000),)),
        UnitRequest("in-dc", datacenter="dc-a", inputs=(on("m1", 10),)),
        UnitRequest("elsewhere", machine="m9", inputs=(on("m1", 10),)),
    ]

    placement = place(units)

    assert placement == {"pinned": "p2", "in-dc": "p1", "elsewhere": None}
    assert "affinity_machine_label 'm9'" in DataAwareScheduler().waiting_reason(units[2], PILOTS)


def test_the_same_inputs_give_the_same_placement_whatever_the_seed() -> None:
    pilots = [labelled(f"p{i}", f"dc{i % 2}", f"m{i}", slots=4 + i) for i in range(5)]
    units = [
        reading(f"u{i}", on(f"m{i % 7}", i * 13 % 50), on(None, 20, datacenter=f"dc{i % 3}"))
        for i in range(200)
    ]

    first = DataAwareScheduler(seed=1).place(units, pilots)
    second = DataAwareScheduler(seed=2).place(units, pilots)

    assert first == second
    assert list(first) == [unit.id for unit in units]


def test_a_hundred_thousand_units_on_ten_pilots_are_all_placed() -> None:
    # A smoke test of the bulk path; timings are measured and reported, not asserted.
    pilots = [labelled(f"p{i}", f"dc{i % 2}", f"m{i}", slots=64) for i in range(10)]
    shared = [on(f"m{k}", 100 * (k + 1)) for k in range(10)]
    units = [
        reading(f"in{i}", shared[i % 10], shared[i * 7 % 10]) if i % 2 else reading(f"no{i}")
        for i in range(100_000)
    ]

    placement = DataAwareScheduler().place(units, pilots)

    assert len(placement) == len(units)
    load = Counter(placement.values())
    assert None not in load
    assert sum(load.values()) == len(units)


# -- binding: late -------------------------------------------------------------------------


def late() -> DataAwareScheduler:
    return DataAwareScheduler(binding="late")


def test_binding_is_an_option_early_by_default() -> None:
    assert DataAwareScheduler().late is False
    assert late().late is True
    with pytest.raises(BadDescription, match="binding"):
        DataAwareScheduler(binding="never")


def test_late_binding_places_only_into_open_slots() -> None:
    pilots = [
        PilotOffer("p1", State.Running, 4, running=3, busy=3, machine="m1"),  # 1 open
        PilotOffer("p2", State.Running, 2, queued=1, machine="m2"),  # 2 free, 1 queued: 1 open
    ]
    units = [reading(f"u{i}", on("m1", 500)) for i in range(4)]

    # Early binding queues all four where their bytes are; late binding starts what fits.
    assert set(place(units, pilots).values()) == {"p1"}
    assert late().place(units, pilots) == {"u0": "p1", "u1": "p2", "u2": None, "u3": None}


def test_late_binding_keeps_locality_among_the_pilots_with_room() -> None:
    pilots = [labelled("p1", "dc-a", "m1", slots=2), labelled("p2", "dc-a", "m2", slots=2)]
    units = [
        reading("a", on("m2", 900)),
        reading("b", on("m1", 900)),
        reading("c", on("m2", 900)),
        reading("d", on("m2", 900)),  # p2 is full by now: d starts on p1 rather than wait
        reading("e", on("m1", 900)),  # nothing open: waits
    ]

    assert late().place(units, pilots) == {"a": "p2", "b": "p1", "c": "p2", "d": "p1", "e": None}


def test_late_binding_remembers_the_cores_of_the_units_it_queued() -> None:
    scheduler = late()
    first = scheduler.place([reading("wide", cores=3)], [pilot("p", 4)])
    assert first == {"wide": "p"}

    # "wide" is still queued (not started): 4 free slots less its 3 leave room for one.
    queued = [PilotOffer("p", State.Running, 4, queued=1)]
    assert scheduler.place([reading("x"), reading("y")], queued) == {"x": "p", "y": None}
