"""A recorded service as simulation records (troy.cli.real_records), on made-up views.

The same conversion on real runs is checked in tests/integration/test_report.py
and tests/integration/test_compare_real.py.
"""

from __future__ import annotations

from troy.cli.real_records import first_recorded, real_records
from troy.core.views import PilotView, RunView, ServiceView, UnitView
from troy.model.states import State

T0 = 1000.0


def pilot(pilot_id: str, running: float, ended: float | None, slots: int = 2) -> PilotView:
    history = [(State.New, T0), (State.Pending, T0 + 0.1), (State.Running, T0 + running)]
    if ended is not None:
        history.append((State.Canceled, T0 + ended))
    state = State.Canceled if ended is not None else State.Running
    return PilotView(pilot_id, "fork://localhost", "local", state, "", slots, "/", history)


def unit(
    unit_id: str,
    name: str,
    runs: list[RunView],
    transfers: list[dict[str, object]] | None = None,
    submit: float = 0.5,
) -> UnitView:
    history = [(State.New, T0 + submit)]
    for run in runs:
        history.append((State.Running, run.start))
        if run.end is not None:
            history.append((run.state, run.end))
    state = history[-1][0]
    last = runs[-1].pilot if runs else None
    return UnitView(unit_id, state, "", last, None, history, runs[-1].cores if runs else 1,
                    runs, name, list(transfers or []))  # fmt: skip


def test_times_tries_and_bytes_come_from_the_histories_and_staging() -> None:
    lost = RunView("pilot-a", T0 + 1.0, T0 + 2.0, State.New)
    again = RunView("pilot-b", T0 + 3.0, T0 + 5.0, State.Done)
    staged = [
        {"dir": "in", "bytes": 300, "local": False},
        {"dir": "in", "bytes": 200, "local": True},
        {"dir": "out", "bytes": 9999, "local": False},  # staging out is not an input
    ]
    view = ServiceView("wus-x", "workunit", T0, [pilot("pilot-a", 0.5, 2.0),
                                                 pilot("pilot-b", 0.5, None)])  # fmt: skip
    view.units = [unit("wu.1", "task.7", [lost, again], staged)]

    result = real_records(view, entries={"task.7": "task"}, pilot_ids={"pilot-b": "B"})

    assert first_recorded(view) == T0 == result.origin
    [record] = result.records
    assert (record.id, record.name, record.pilot) == ("task.7", "task", "B")
    assert (record.submit, record.start, record.end) == (0.5, 3.0, 5.0)
    assert (record.state, record.tries, record.bytes_in, record.bytes_moved) == (
        "Done",
        1,
        500,
        300,
    )
    # pilot-a: up from 0.5 to its end at 2.0, busy 1 s (the lost run); pilot-b: up to the last
    # unit end (5.0), busy 2 s; keyed by the ids the records use
    assert [(p.id, p.slots, p.busy, p.up) for p in result.pilots] == [
        ("pilot-a", 2, 1.0, 1.5),
        ("B", 2, 2.0, 4.5),
    ]


def test_a_unit_that_never_ran_and_one_still_running() -> None:
    view = ServiceView("wus-x", "workunit", T0, [pilot("p", 1.0, None)])
    view.units = [
        unit("wu.1", "", []),
        unit("wu.2", "", [RunView("p", T0 + 2.0, None, State.Running, 2)]),
        unit("wu.3", "", [RunView("p", T0 + 1.0, T0 + 4.0, State.Done)]),
    ]

    result = real_records(view, origin=T0)

    waiting, running, done = result.records
    assert (waiting.id, waiting.pilot, waiting.start, waiting.state) == ("wu.1", None, None, "New")
    assert (running.start, running.end, running.state, running.cores) == (2.0, None, "Running", 2)
    assert (done.start, done.end) == (1.0, 4.0)
    # the running run counts as busy up to the last end (4.0): 2 cores x 2 s, plus 3 s
    [use] = result.pilots
    assert (use.id, use.busy, use.up) == ("p", 7.0, 3.0)


def test_export_rows_say_slot_host_exit_code_and_staging() -> None:
    from troy.core.unit_rows import unit_rows
    from troy.model.unit_columns import COLUMNS, EXPORT_COLUMNS, RESEARCH_COLUMNS

    lost = RunView("p", T0 + 1.0, T0 + 2.0, State.New, 1, "node-a")
    again = RunView("p", T0 + 3.0, T0 + 5.0, State.Failed, 1, "node-b")
    beside = RunView("p", T0 + 1.5, T0 + 4.0, State.Done, 1, "node-a")
    staged = [
        {"dir": "in", "bytes": 300, "local": False},
        {"dir": "in", "bytes": 200, "local": True},
        {"dir": "out", "bytes": 70, "local": False},
    ]
    view = ServiceView("wus-x", "workunit", T0, [pilot("p", 0.5, None)])
    view.units = [
        unit("wu.1", "retried", [lost, again], staged),
        unit("wu.2", "", [beside], [{"dir": "in", "bytes": 5, "local": True}]),
        unit("wu.3", "", []),
    ]
    view.units[0].exit_code = 3

    retried, beside_it, never = unit_rows(view)

    assert list(retried) == list(EXPORT_COLUMNS)
    assert set(EXPORT_COLUMNS) | set(RESEARCH_COLUMNS) == set(COLUMNS)
    # wu.1's first run (1-2 s) takes slot 0; wu.2 (1.5-4 s) starts while it runs: slot 1;
    # wu.1's second run (3-5 s) finds slot 0 free again.
    assert (retried["slot"], beside_it["slot"], never["slot"]) == (0, 1, None)
    assert (retried["host"], retried["exit_code"], retried["tries"]) == ("node-b", 3, 1)
    assert (retried["submit"], retried["start"], retried["end"]) == (T0 + 0.5, T0 + 3.0, T0 + 5.0)
    assert (retried["wait"], retried["run"], retried["state"]) == (2.5, 2.0, "Failed")
    assert (retried["bytes_in"], retried["bytes_out"], retried["bytes_moved"]) == (500, 70, 300)
    assert (retried["local"], beside_it["local"], never["local"]) == (False, True, None)
    assert (never["pilot"], never["start"], never["wait"], never["host"]) == (None,) * 4


def test_a_pilot_up_before_the_service_counts_from_its_first_submission() -> None:
    # The pilot ran another service's units first: up from 10.0, not from 0.5.
    view = ServiceView("wus-x", "workunit", T0, [pilot("p", 0.5, None, slots=1)])
    view.units = [unit("wu.1", "", [RunView("p", T0 + 11.0, T0 + 14.0, State.Done)], submit=10.0)]

    [use] = real_records(view, origin=T0).pilots

    assert (use.busy, use.up) == (3.0, 4.0)
