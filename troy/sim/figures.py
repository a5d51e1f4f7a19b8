"""The research figures of a result directory, drawn with matplotlib (the extra ``troy[plot]``).

`write_figures` reads ``units.csv`` and ``summary.json`` (troy.sim.figure_data
says which fields) and writes, in the same directory, PNG files with stable
names:

``gantt-<scheduler>-<mode>-<repetition>.png``
    per run: a row per pilot slot (``pilot/slot``), a bar per slot a unit took,
    coloured by its final state
``utilisation-<scheduler>-<mode>-<repetition>.png``
    per run: busy cores over time, as a share of the pilots' slots when known
``wait-cdf.png``
    the wait times' CDF, a line per scheduler and mode, repetitions pooled
``makespan.png``
    a bar per scheduler (modes side by side): the median makespan over the
    repetitions, error bars from the shortest to the longest
``comparison.png``
    with two or more schedulers or modes: each side by side in three panels,
    makespan (median over the repetitions), p50/p95/p99 wait (repetitions
    pooled) and utilisation (median)

and ``figures.json``, the data each of them plots, by file name (sorted keys,
floats as Python's repr), so that what a figure shows can be checked without
its pixels.  matplotlib is imported only here and only when drawing, with the
Agg canvas: never a display.  Without it, `write_figures` raises
`FiguresUnavailable` before reading anything.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from troy.model.errors import TroyError
from troy.sim.figure_data import (
    CdfLine,
    Compared,
    Gantt,
    MakespanBar,
    RunKey,
    Utilisation,
    comparison,
    gantt,
    makespans,
    modes_of,
    pilots_of,
    read_results,
    state_order,
    total_slots,
    utilisation,
    wait_cdf,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: What the command line prints when matplotlib is missing (`FiguresUnavailable`'s message).
SKIPPED = "figures skipped: matplotlib is not installed; pip install 'troy[plot]'"
#: Bar colours by final state (and, in `troy report`, a run sent back to run again);
#: other states (a unit still running) are drawn in `OTHER`.
COLORS = {"Done": "#2ca02c", "Failed": "#d62728", "Canceled": "#969696", "run again": "#ff7f0e"}
OTHER = "#1f77b4"
#: Rows beyond a pilot's slots.
EXTRA_LANE = "#fadada"
#: Most row labels on a Gantt chart's axis (every k-th row beyond).
MAX_LABELS = 60
DPI = 100


class FiguresUnavailable(TroyError):
    """matplotlib is not installed: no figures (the message is `SKIPPED`, one line)."""

    def __init__(self) -> None:
        super().__init__(SKIPPED)


def write_figures(
    directory: str | os.PathLike[str],
    drawn: Mapping[RunKey, tuple[Gantt, Utilisation]] | None = None,
) -> list[Path]:
    """Draw the figures of ``directory``'s result files into it; the files written, figures.json
    last.  ``drawn`` gives some runs' Gantt chart and utilisation instead of those made from
    units.csv (`troy report` draws every run of a unit, units.csv has the last).

    FiguresUnavailable without matplotlib (nothing is written);
    troy.sim.figure_data.ResultsError for a missing or bad result file.
    """
    try:
        import matplotlib  # noqa: F401  (only whether it is there)
    except ImportError as exc:
        raise FiguresUnavailable() from exc
    folder = Path(directory)
    results = read_results(folder)
    data: dict[str, dict[str, Any]] = {}
    written: list[Path] = []

    def save(name: str, figure: Figure, plotted: dict[str, Any]) -> None:
        path = folder / name
        figure.savefig(path, dpi=DPI, bbox_inches="tight", metadata={"Software": None})
        data[name] = plotted
        written.append(path)

    for key in results.runs:
        units = results.units.get(key, [])
        pilots = pilots_of(results, key)
        if drawn is not None and key in drawn:
            chart, use = drawn[key]
        else:
            chart = gantt(key, units, pilots)
            use = utilisation(key, units, total_slots(pilots))
        gantt_data = {"kind": "gantt", **asdict(key), **asdict(chart)}
        save(f"gantt-{key.stem}.png", draw_gantt(chart), gantt_data)
        use_data = {"kind": "utilisation", **asdict(key), **asdict(use)}
        save(f"utilisation-{key.stem}.png", draw_utilisation(use), use_data)
    lines = wait_cdf(results)
    if lines:
        cdf_data = {"kind": "wait-cdf", "lines": [asdict(line) for line in lines]}
        save("wait-cdf.png", draw_wait_cdf(lines), cdf_data)
    bars = makespans(results)
    if bars:
        makespan_data = {"kind": "makespan", "bars": [asdict(bar) for bar in bars]}
        save("makespan.png", draw_makespan(bars), makespan_data)
    compared = comparison(results)
    if len(compared) > 1:
        comparison_data = {"kind": "comparison", "runs": [asdict(each) for each in compared]}
        save("comparison.png", draw_comparison(compared), comparison_data)
    sidecar = folder / "figures.json"
    sidecar.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return [*written, sidecar]


def _figure(width: float, height: float, layout: Literal["constrained"] | None = None) -> Figure:
    """A figure on the Agg canvas (no pyplot, no display, no global state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI, layout=layout)
    FigureCanvasAgg(figure)
    return figure


def _boxes(spans: Sequence[tuple[float, float, float, float]]) -> list[list[tuple[float, float]]]:
    """Rectangles (x0, x1, y0, y1) as the vertex lists of a PolyCollection."""
    return [[(x0, y0), (x1, y0), (x1, y1), (x0, y1)] for x0, x1, y0, y1 in spans]


def draw_gantt(chart: Gantt) -> Figure:
    """``chart`` drawn: one PolyCollection for all bars, whatever their number."""
    from matplotlib.collections import PolyCollection
    from matplotlib.patches import Patch

    rows = max(len(chart.rows), 1)
    figure = _figure(10.0, min(max(1.5 + 0.25 * rows, 3.0), 16.0))
    axes = figure.add_subplot()
    end = chart.end if chart.end > 0 else 1.0
    if chart.extra_rows:
        lanes = _boxes([(0.0, end, row - 0.5, row + 0.5) for row in chart.extra_rows])
        axes.add_collection(PolyCollection(lanes, facecolors=EXTRA_LANE, edgecolors="none"))
    height = 0.4 if rows <= 200 else 0.5
    boxes = _boxes([(b.start, b.end, b.row - height, b.row + height) for b in chart.bars])
    colors = [COLORS.get(bar.state, OTHER) for bar in chart.bars]
    edges = "white" if rows <= 50 else "none"
    axes.add_collection(PolyCollection(boxes, facecolors=colors, edgecolors=edges, linewidths=0.5))
    axes.set_xlim(0.0, end)
    axes.set_ylim(rows - 0.5, -0.5)  # row 0 on top
    every = math.ceil(len(chart.rows) / MAX_LABELS) if chart.rows else 1
    axes.set_yticks(range(0, len(chart.rows), every), chart.rows[::every], fontsize=8)
    axes.set_xlabel("seconds since the first submission")
    axes.set_ylabel("pilot/slot")
    axes.set_title(chart.title, fontsize=10)
    states = state_order(bar.state for bar in chart.bars)
    if states:
        handles = [Patch(facecolor=COLORS.get(state, OTHER), label=state) for state in states]
        axes.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), title="state")
    return figure


def draw_utilisation(use: Utilisation) -> Figure:
    """``use`` drawn as a step function."""
    figure = _figure(10.0, 4.0)
    axes = figure.add_subplot()
    if use.steps:
        times = [t for t, _ in use.steps]
        values = [v for _, v in use.steps]
        axes.step(times, values, where="post", color=OTHER)
        axes.fill_between(times, values, step="post", alpha=0.3, color=OTHER)
    axes.set_xlim(left=0.0)
    if use.slots is not None:
        axes.axhline(1.0, color="black", linewidth=0.8, linestyle="--")  # all slots busy
        axes.set_ylim(0.0, max([1.05, *(v * 1.05 for _, v in use.steps)]))
        axes.set_ylabel(f"busy share of the {use.slots} slots")
    else:
        axes.set_ylim(bottom=0.0)
        axes.set_ylabel("busy cores")
    axes.set_xlabel("seconds since the first submission")
    axes.set_title(use.title, fontsize=10)
    return figure


def draw_wait_cdf(lines: Sequence[CdfLine]) -> Figure:
    """A step line per scheduler and mode, from 0 below the shortest wait."""
    figure = _figure(8.0, 5.0)
    axes = figure.add_subplot()
    for line in lines:
        times = [line.points[0][0], *(t for t, _ in line.points)]
        fractions = [0.0, *(f for _, f in line.points)]
        label = f"{line.scheduler} ({line.mode}, {line.waits} waits)"
        axes.step(times, fractions, where="post", label=label)
    axes.set_ylim(0.0, 1.02)
    axes.set_xlabel("wait: seconds from submission to (last) start")
    axes.set_ylabel("fraction of units")
    axes.set_title("wait-time CDF, repetitions pooled", fontsize=10)
    axes.grid(True, alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    return figure


def draw_makespan(bars: Sequence[MakespanBar]) -> Figure:
    """A bar per scheduler (modes side by side): the median, with the min-max range."""
    modes = modes_of(bars)
    schedulers = list(dict.fromkeys(bar.scheduler for bar in bars))
    width = 0.8 / len(modes)
    figure = _figure(max(6.0, 1.2 * len(schedulers) + 2.0), 4.5)
    axes = figure.add_subplot()
    for offset, mode in enumerate(modes):
        chosen = [bar for bar in bars if bar.mode == mode]
        places = [schedulers.index(bar.scheduler) - 0.4 + width * (offset + 0.5) for bar in chosen]
        heights = [bar.median for bar in chosen]
        below = [bar.median - bar.low for bar in chosen]
        above = [bar.high - bar.median for bar in chosen]
        errors = [below, above]
        axes.bar(places, heights, width, yerr=errors, capsize=4, label=mode)
    axes.set_xticks(range(len(schedulers)), schedulers)
    axes.set_ylabel("makespan (s): median, range over repetitions")
    axes.set_title("makespan per scheduler", fontsize=10)
    if len(modes) > 1:
        axes.legend(title="mode")
    return figure


def draw_comparison(compared: Sequence[Compared]) -> Figure:
    """Three panels, a group per scheduler and mode: makespan, wait percentiles, utilisation."""
    labels = [f"{each.scheduler} ({each.mode})" for each in compared]
    places = list(range(len(compared)))
    figure = _figure(max(10.0, 2.4 * len(compared) + 3.0), 4.5, "constrained")
    spans, waits, uses = figure.subplots(1, 3)
    spans.bar(places, [each.makespan for each in compared], 0.6, color=OTHER)
    spans.set_title("makespan (s), median", fontsize=10)
    width = 0.8 / 3
    for offset, (name, color) in enumerate(
        (("p50", "#2ca02c"), ("p95", "#ff7f0e"), ("p99", "#d62728"))
    ):
        values = [getattr(each, f"{name}_wait") or 0.0 for each in compared]
        where = [place - 0.4 + width * (offset + 0.5) for place in places]
        waits.bar(where, values, width, label=name, color=color)
    waits.set_title("wait (s), repetitions pooled", fontsize=10)
    waits.legend(fontsize=8)
    shares = [100 * (each.utilisation or 0.0) for each in compared]
    uses.bar(places, shares, 0.6, color=COLORS["Done"])
    uses.set_ylim(0.0, max([100.0, *shares]) * 1.05)
    uses.set_title("utilisation (% of the slots), median", fontsize=10)
    for axes in (spans, waits, uses):
        axes.set_xticks(places, labels, rotation=30, ha="right", fontsize=8)
    figure.suptitle("runs compared", fontsize=10)
    return figure
