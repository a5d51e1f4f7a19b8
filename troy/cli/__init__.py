"""The `troy` command: run batch files, look at services, list plugins."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from troy.cli.progress import FINAL_ORDER, Progress
from troy.model.errors import TroyError
from troy.model.states import State


def _counts(units: Sequence[object]) -> dict[State, int]:
    counts: dict[State, int] = {}
    for unit in units:
        state = unit.state  # type: ignore[attr-defined]
        counts[state] = counts.get(state, 0) + 1
    return counts


def _format_counts(counts: dict[State, int]) -> str:
    return ", ".join(f"{counts.get(s, 0)} {s}" for s in FINAL_ORDER) + "".join(
        f", {counts[s]} {s}" for s in counts if s not in FINAL_ORDER
    )


def _relative_to(url: str, directory: str) -> str:
    """A plain relative path in a batch file means relative to the file, like pilot directories."""
    from urllib.parse import urlsplit

    if urlsplit(url).scheme or os.path.isabs(os.path.expanduser(url)):
        return url
    return os.path.join(os.path.abspath(directory), url)


def _check_plugins(batch: Any, coordination: str | None) -> None:
    """Raise NoSuchPlugin/BackendError now for any plugin the run would need and lacks."""
    from troy.core.pilot_manager import backend_class
    from troy.plugins import registry
    from troy.plugins.options import url_options

    registry.load("scheduler", batch.scheduler)
    if coordination:
        registry.for_url("coordination", coordination).check_options(url_options(coordination))
    for spec in batch.pilots:
        plugin = backend_class(spec.resource, spec.pj_type)
        plugin.check_options(url_options(spec.resource))
        plugin(spec.resource)


def cmd_run(args: argparse.Namespace) -> int:
    from troy.cli import batch_run
    from troy.cli.batchfile import load_batch_file

    resume: str | bool | None = args.resume
    if isinstance(resume, str) and args.file is None and os.path.isfile(resume):
        args.file, resume = resume, True  # `troy run --resume FILE`
    batch = load_batch_file(args.file) if args.file else None
    coordination = args.coordination
    if batch is not None and batch.coordination and not coordination:
        coordination = _relative_to(batch.coordination, os.path.dirname(args.file))
    if batch is not None:
        _check_plugins(batch, coordination)  # before anything is started or recorded
    out = sys.stdout
    if resume is not None:
        service_id = resume if isinstance(resume, str) else None
        run = batch_run.resume(service_id, args.file, coordination, out)
    elif batch is None:
        raise TroyError("troy run needs a batch file, or --resume SERVICE_ID")
    else:
        run = batch_run.start(batch, coordination, out)
    return _follow(run, out, quiet=args.quiet)


def _follow(run: Any, out: TextIO, quiet: bool = False) -> int:
    """Wait for every unit of a run, with progress; cancel its pilots; print the summary."""
    units_service, pilots_service = run.units, run.pilots
    started = run.started
    interrupted = False
    progress = Progress(len(units_service.list()), sys.stderr, quiet=quiet)
    try:
        while True:
            try:
                units_service.wait(timeout=0.2)
                break
            except TroyError:
                progress.show(_counts(units_service.list()))
                failed = [p for p in pilots_service.list() if p.state == State.Failed]
                if failed and all(p.state.is_final for p in pilots_service.list()):
                    # every pilot is gone: waiting longer would hang
                    units_service.cancel()
    except KeyboardInterrupt:
        interrupted = True
        units_service.cancel()
    finally:
        progress.close(_counts(units_service.list()))
        pilots_service.cancel()
    units = units_service.list()
    counts = _counts(units)
    ends = [u.history[-1][1] for u in units if u.state.is_final and u.history]
    makespan = (max(ends) - started) if ends else 0.0
    print(f"{len(units)} units: {_format_counts(counts)}; makespan {makespan:.2f} s", file=out)
    for pilot in pilots_service.list():
        if pilot.state == State.Failed:
            print(f"pilot {pilot.id} failed: {pilot.state_detail}", file=out)
    shown = 0
    for unit in units:
        if unit.state != State.Done and shown < 5:
            shown += 1
            print(f"  {unit.id}: {unit.state} {unit.state_detail}".rstrip(), file=out)
    sandboxes = sorted({os.path.dirname(u.sandbox) for u in units if u.sandbox})
    for directory in sandboxes:
        print(f"unit sandboxes are under {directory}", file=out)
    units_service.close()
    pilots_service.close()
    if interrupted:
        return 130
    return 0 if counts.get(State.Done, 0) == len(units) else 1


def _when(timestamp: float | None) -> str:
    if not timestamp:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def cmd_status(args: argparse.Namespace) -> int:
    from troy.core import views
    from troy.core.service import absolute_url
    from troy.model import config
    from troy.model.errors import NoCoordination
    from troy.plugins.registry import open_coordination

    url = absolute_url(args.coordination or config.default_coordination_url())
    try:
        coordination = open_coordination(url)  # troy status only reads: it never serves
    except NoCoordination:
        if args.coordination or os.environ.get("TROY_COORDINATION"):
            raise  # a coordination named on purpose: a typo must not look like an empty one
        print(f"no services in {url} (troy has run nothing here yet)")
        return 0
    try:
        if not args.service:
            services = views.list_services(coordination)
            if not services:
                print(f"no services in {coordination.public_url()}")
                return 0
            print(f"{'SERVICE':<20} {'KIND':<9} CREATED")
            for record in services:
                kind = record.get("kind", "?")
                print(f"{record['id']:<20} {kind:<9} {_when(record.get('created'))}")
            return 0
        view = views.service_view(coordination, args.service)
        print(f"{view.id} ({view.kind} service, created {_when(view.created)})")
        for pilot in view.pilots:
            slots = "?" if pilot.slots is None else str(pilot.slots)
            detail = f" ({pilot.detail})" if pilot.detail else ""
            print(f"  pilot {pilot.id} {pilot.state}{detail} on {pilot.rm}: {slots} slots", end="")
            if view.kind == "workunit":  # only a unit service knows which units are busy
                busy = sum(
                    u.cores for u in view.units if u.pilot == pilot.id and u.state == State.Running
                )
                free = "?" if pilot.slots is None else str(max(pilot.slots - busy, 0))
                print(f", {busy} in use, {free} free", end="")
            print()
        if view.kind == "workunit":
            from troy.cli.batch_run import describe_scheduler

            print(
                f"  scheduler {describe_scheduler(view.scheduler or '?', view.scheduler_options)}"
            )
            counts = view.counts()
            print(f"  {len(view.units)} units: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
            if args.units:
                print("    UNIT STATE [exit=CODE] pilot=PILOT STATE@TIME...")
                for unit in view.units:
                    times = " ".join(f"{s}@{t:.3f}" for s, t in unit.history)
                    extra = f" exit={unit.exit_code}" if unit.exit_code is not None else ""
                    print(f"    {unit.id} {unit.state}{extra} pilot={unit.pilot or '-'} {times}")
        return 0
    finally:
        coordination.close()


def cmd_report(args: argparse.Namespace) -> int:
    from troy.cli import report
    from troy.cli.real_records import write_results
    from troy.cli.research import write_figures_of
    from troy.core import views
    from troy.core.service import absolute_url
    from troy.model import config
    from troy.model.errors import NoSuchObject
    from troy.plugins.registry import open_coordination
    from troy.sim.figure_data import RunKey

    coordination = open_coordination(  # like troy status: only reads
        absolute_url(args.coordination or config.default_coordination_url())
    )
    try:
        seen = [views.service_view(coordination, s) for s in dict.fromkeys(args.services)]
        where = coordination.public_url()
    finally:
        coordination.close()
    for view in seen:
        if view.kind != "workunit":
            kind = "pilot-job" if view.kind == "pilotjob" else view.kind
            raise NoSuchObject(
                f"'{view.id}' is a {kind} service, not a work-unit service;"
                " troy report needs a work-unit (wus-...) service id"
            )
    now = time.time()
    made = [report.make_report(view, now, args.buckets) for view in seen]
    # One run: labelled by its scheduler, as troy compare labels a run; several: by service.
    labels = [view.scheduler or "?" for view in seen] if len(seen) == 1 else [v.id for v in seen]
    for each in made:
        report.write_report(each, args.output)
    with report.writing(args.output):
        write_results(list(zip(labels, seen, strict=True)), args.output, where)
    for each in made:
        for line in report.summary_lines(each.summary):
            print(line)
        print(f"  json         {each.json_path}")
    print(f"  tables       units.csv, summary.csv, summary.json, run.json in {args.output}")
    if args.csv:
        report.write_csv(made, args.csv)
        print(f"  csv          {args.csv} (one row per unit)")
    if args.json:
        report.write_json(made, args.json)
        print(f"  json export  {args.json} (summaries and one row per unit)")
    if args.figures:
        drawn = {
            RunKey(label, "real", 0): (
                report.gantt_of(each.view, each.timeline, RunKey(label, "real", 0)),
                report.utilisation_of(each.view, each.timeline, RunKey(label, "real", 0)),
            )
            for label, each in zip(labels, made, strict=True)
        }
        write_figures_of(args.output, sys.stdout, drawn)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="troy", description="troy: pilot jobs for many tasks")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the pilots and units of a YAML/JSON batch file")
    run.add_argument("file", nargs="?", help="batch file")
    run.add_argument(
        "--resume",
        nargs="?",
        const=True,
        metavar="SERVICE_ID",
        help="finish a run that was cut off: the last run of FILE, or the run of SERVICE_ID",
    )
    run.add_argument(
        "--coordination",
        help="coordination URL (default: the file's, else $TROY_COORDINATION, else ~/.troy)",
    )
    run.add_argument(
        "--quiet",
        action="store_true",
        help="no progress display (on a terminal) or progress lines (elsewhere) on stderr",
    )
    run.set_defaults(func=cmd_run)
    status = sub.add_parser("status", help="list services, or show one service's pilots and units")
    status.add_argument("service", nargs="?", help="service id")
    status.add_argument("--coordination", help="coordination URL")
    status.add_argument("--units", action="store_true", help="list every unit with its timings")
    status.set_defaults(func=cmd_status)
    report = sub.add_parser(
        "report", help="summarise work-unit services, plot them and export one row per unit"
    )
    report.add_argument(
        "services", nargs="+", metavar="SERVICE", help="work-unit service id (several: compared)"
    )
    report.add_argument("--coordination", help="coordination URL")
    report.add_argument("--output", default=".", help="directory for the files (default: .)")
    report.add_argument("--buckets", type=int, default=20, help="time slices (default: 20)")
    report.add_argument("--csv", metavar="FILE", help="write one row per unit to FILE (CSV)")
    report.add_argument(
        "--json", metavar="FILE", help="write the summaries and one row per unit to FILE (JSON)"
    )
    report.add_argument(
        "--no-figures", dest="figures", action="store_false",
        help="do not draw the figures (PNG files and figures.json; they need troy[plot])",
    )  # fmt: skip
    report.set_defaults(func=cmd_report)
    from troy.cli import cancel, dashboard, doctor, logs, plugins, research

    cancel.add_parser(sub)
    logs.add_parser(sub)
    plugins.add_parser(sub)
    doctor.add_parser(sub)
    dashboard.add_parser(sub)

    research.add_parsers(sub)
    for command in ("simulate", "compare"):
        sub.choices[command].set_defaults(func=_research)
    return parser


def _research(args: argparse.Namespace) -> int:
    code: int = args.research(args, sys.stdout)
    return code


def _scrub_logging() -> None:
    """Every log line troy's command prints goes through troy.model.secrets.scrub."""
    import logging

    from troy.model.secrets import ScrubFilter

    for handler in (*logging.getLogger().handlers, logging.lastResort):
        if handler is not None and not any(isinstance(f, ScrubFilter) for f in handler.filters):
            handler.addFilter(ScrubFilter())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; user mistakes print one line, never a traceback.

    Whatever it prints about an error is scrubbed of every secret this process
    met (troy.model.secrets.scrub): the last line of defence behind the
    redacted URLs in troy's own messages.
    """
    from troy.model.secrets import scrub

    args = build_parser().parse_args(argv)
    _scrub_logging()
    try:
        code: int = args.func(args)
    except TroyError as exc:
        print(scrub(f"troy: error: {exc}"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `troy plugins | head`: the reader left, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception:  # a bug: its traceback, but without a secret a library put in it
        import traceback

        print(scrub(traceback.format_exc()), end="", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
