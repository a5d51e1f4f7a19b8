"""``troy simulate`` and ``troy compare``: scheduler plugins on a workload, in a simulation.

Both read a workload file (troy.sim.workload), play it on the virtual clock
of troy.sim.engine with the installed scheduler plugins, unmodified, and
write units.csv, summary.csv, summary.json and run.json (troy.sim.results),
then the figures (troy.sim.figures) unless ``--no-figures``.
Everything is checked before anything runs: an unknown scheduler, a bad
option, a workload that does not parse.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from troy.cli.real_run import RealOptions, check_real, run_real
from troy.model.errors import BadDescription
from troy.sim.engine import VirtualClock, make_scheduler, simulate
from troy.sim.figure_data import Gantt, RunKey, Utilisation
from troy.sim.figures import FiguresUnavailable, write_figures
from troy.sim.model import Workload
from troy.sim.results import ResultWriter, Summary, summarize
from troy.sim.workload import load_workload


def parse_options(pairs: Sequence[str], where: str = "--option") -> dict[str, Any]:
    """``key=value`` pairs as options; a value is JSON if it parses (``seed=3``), else a string."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, equals, text = pair.partition("=")
        if not equals or not key.strip():
            raise BadDescription(where, f"expected KEY=VALUE, got {pair!r}")
        try:
            options[key.strip()] = json.loads(text)
        except ValueError:
            options[key.strip()] = text
    return options


@dataclass(frozen=True)
class Strategy:
    """A scheduler plugin with its options, under the label its rows carry."""

    label: str
    plugin: str
    options: dict[str, Any]


def strategies(text: str, pairs: Sequence[str]) -> list[Strategy]:
    """``--schedulers`` (``NAME`` or ``LABEL=NAME`` items) with ``LABEL.key=value`` options.

    A label lets one plugin be compared with itself under other options
    (``early=affinity,late=affinity --option late.binding=late``).
    """
    plugins: dict[str, str] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        label, equals, plugin = item.partition("=")
        label, plugin = (label.strip(), plugin.strip()) if equals else (item, item)
        if not label or not plugin or "." in label:
            raise BadDescription("--schedulers", f"expected NAME or LABEL=NAME, got {item!r}")
        if label in plugins:
            raise BadDescription("--schedulers", f"{label!r} is given twice; give it a label")
        plugins[label] = plugin
    if not plugins:
        raise BadDescription("--schedulers", f"expected scheduler names, got {text!r}")
    grouped: dict[str, list[str]] = {label: [] for label in plugins}
    for pair in pairs:
        label, dot, rest = pair.partition(".")
        if not dot or label not in grouped:
            raise BadDescription(
                "--option", f"expected SCHEDULER.KEY=VALUE for one of {', '.join(plugins)}, "
                f"got {pair!r}"
            )  # fmt: skip
        grouped[label].append(rest)
    return [
        Strategy(label, plugin, parse_options(grouped[label], f"--option {label}"))
        for label, plugin in plugins.items()
    ]


def run_simulations(
    path: str,
    schedulers: Sequence[Strategy],
    repeat: int,
    seed: int | None,
    out: str,
    stream: TextIO,
    real: RealOptions | None = None,
) -> list[Summary]:
    """Simulate each scheduler ``repeat`` times (and run it for real, with ``real``).

    Repetition r uses the workload drawn with the seed plus r, in the
    simulation and in the real run alike.
    """
    first = load_workload(path, seed)
    for each in schedulers:  # every plugin and option, before anything runs
        make_scheduler(each.plugin, each.options, _seed(each.options, first.seed), VirtualClock())
    if real is not None:
        check_real(first)
    writer = ResultWriter(out)
    real_runs: list[dict[str, Any]] = []
    for repetition in range(repeat):
        workload = first if repetition == 0 else load_workload(path, first.seed + repetition)
        for each in schedulers:
            clock = VirtualClock()
            seeded = _seed(each.options, workload.seed)
            scheduler = make_scheduler(each.plugin, each.options, seeded, clock)
            result = simulate(workload, scheduler, clock)
            summary = summarize(result.records, result.pilots, each.label, "sim", repetition)
            writer.add(result.records, summary)
            print(_line(summary), file=stream)
            if real is None:
                continue
            real_runs.append(_play_real(workload, each, repetition, out, real, writer, stream))
    run: dict[str, Any] = {
        "workload": path,
        # The file itself, so its figures can be made again when it changed or is gone.
        "workload_text": Path(path).read_text(encoding="utf-8", errors="replace"),
        "seed": first.seed,
        "repetitions": repeat,
        "seeds": [first.seed + r for r in range(repeat)],
        "schedulers": {each.label: each.options for each in schedulers},
        "plugins": {each.label: each.plugin for each in schedulers},
        "mode": "sim" if real is None else "sim+real",
    }
    if real is not None:
        run["real"] = {"timeout": real.timeout, "runs": real_runs}
    writer.close(run)
    print(f"  wrote units.csv, summary.csv, summary.json and run.json to {out}", file=stream)
    return writer.summaries


def _play_real(
    workload: Workload,
    strategy: Strategy,
    repetition: int,
    out: str,
    real: RealOptions,
    writer: ResultWriter,
    stream: TextIO,
) -> dict[str, Any]:
    """Run ``workload`` for real with ``strategy``; what run.json says of that run."""
    options, name = strategy.options, strategy.label
    given = options if "seed" in options else {**options, "seed": workload.seed}
    directory = os.path.join(out, "real", str(repetition), name)
    coordination = real.coordination or Path(out, "real", "coordination").absolute().as_uri()
    played = run_real(workload, strategy.plugin, given, directory, coordination, real.timeout)
    summary = summarize(played.result.records, played.result.pilots, name, "real", repetition)
    writer.add(played.result.records, summary)
    print(_line(summary), file=stream)
    if played.timed_out:
        print(f"  {played.timed_out} units were not final after {real.timeout:g} s: canceled",
              file=stream)  # fmt: skip
    return {
        "scheduler": name,
        "repetition": repetition,
        "service": played.service,
        "coordination": played.coordination,
        "directory": directory,
    }


def _seed(options: dict[str, Any], workload_seed: int) -> int | None:
    """None when a ``seed`` option is given (that one is used), else the workload's seed."""
    return None if "seed" in options else workload_seed


def _line(summary: Summary) -> str:
    wait = "-" if summary.mean_wait is None else f"{summary.mean_wait:.3f} s"
    use = "-" if summary.utilisation is None else f"{100 * summary.utilisation:.0f}%"
    return (
        f"{summary.scheduler:<16} {summary.mode:<4} rep {summary.repetition}:"
        f" makespan {summary.makespan:.3f} s,"
        f" mean wait {wait}, utilisation {use}, {summary.done}/{summary.units} Done,"
        f" {summary.bytes_moved} bytes moved"
    )


def write_figures_of(
    out: str, stream: TextIO, drawn: Mapping[RunKey, tuple[Gantt, Utilisation]] | None = None
) -> None:
    """Draw the figures of ``out``'s result files (troy.sim.figures), or say why not."""
    try:
        paths = write_figures(out, drawn)
    except FiguresUnavailable as exc:
        print(f"  {exc}", file=stream)
        return
    names = [path.name for path in paths]
    listed = ", ".join(names) if len(names) <= 6 else f"{len(names) - 1} figures and figures.json"
    print(f"  wrote {listed} to {out}", file=stream)


def cmd_simulate(args: argparse.Namespace, stream: TextIO) -> int:
    strategy = Strategy(args.scheduler, args.scheduler, parse_options(args.option))
    summaries = run_simulations(args.workload, [strategy], 1, args.seed, args.out, stream)
    if args.figures:
        write_figures_of(args.out, stream)
    return 0 if all(s.failed == 0 for s in summaries) else 1


def cmd_compare(args: argparse.Namespace, stream: TextIO) -> int:
    schedulers = strategies(args.schedulers, args.option)
    if args.repeat < 1:
        raise BadDescription("--repeat", f"expected at least 1, got {args.repeat}")
    if args.timeout <= 0:
        raise BadDescription("--timeout", f"expected seconds > 0, got {args.timeout:g}")
    real = RealOptions(args.coordination, args.timeout) if args.real else None
    summaries = run_simulations(
        args.workload, schedulers, args.repeat, args.seed, args.out, stream, real
    )
    if args.figures:
        write_figures_of(args.out, stream)
    return 0 if all(s.failed == 0 for s in summaries) else 1


def add_parsers(sub: Any) -> None:
    """The ``simulate`` and ``compare`` subcommands."""
    simulate_parser = sub.add_parser(
        "simulate", help="play a workload file with one scheduler plugin, in a simulation"
    )
    simulate_parser.add_argument("workload", help="workload file (YAML or JSON)")
    simulate_parser.add_argument("--scheduler", default="round_robin", help="scheduler plugin")
    simulate_parser.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE",
        help="a scheduler option (repeatable); VALUE is JSON if it parses",
    )  # fmt: skip
    simulate_parser.add_argument("--seed", type=int, help="replaces the workload's seed")
    simulate_parser.add_argument("--out", default=".", help="directory for the files")
    simulate_parser.add_argument(
        "--no-figures", dest="figures", action="store_false",
        help="do not draw the figures (PNG files and figures.json; they need troy[plot])",
    )  # fmt: skip
    simulate_parser.set_defaults(research=cmd_simulate)
    compare_parser = sub.add_parser(
        "compare", help="simulate a workload with several scheduler plugins, side by side"
    )
    compare_parser.add_argument("workload", help="workload file (YAML or JSON)")
    compare_parser.add_argument(
        "--schedulers", required=True,
        help="comma-separated scheduler plugin names, or LABEL=NAME (one plugin, other options)",
    )  # fmt: skip
    compare_parser.add_argument(
        "--option", action="append", default=[], metavar="SCHEDULER.KEY=VALUE",
        help="an option of one of the schedulers (repeatable)",
    )  # fmt: skip
    compare_parser.add_argument("--repeat", type=int, default=1, help="repetitions (seed + r)")
    compare_parser.add_argument("--seed", type=int, help="replaces the workload's seed")
    compare_parser.add_argument("--out", default=".", help="directory for the files")
    compare_parser.add_argument(
        "--real", action="store_true",
        help="also run each scheduler for real, on local pilots built from the workload",
    )  # fmt: skip
    compare_parser.add_argument(
        "--timeout", type=float, default=3600.0,
        help="seconds a real run may take before its units are canceled (default 3600)",
    )  # fmt: skip
    compare_parser.add_argument(
        "--coordination",
        help="coordination URL of the real runs (default: file://OUT/real/coordination)",
    )
    compare_parser.add_argument(
        "--no-figures", dest="figures", action="store_false",
        help="do not draw the figures (PNG files and figures.json; they need troy[plot])",
    )  # fmt: skip
    compare_parser.set_defaults(research=cmd_compare)
