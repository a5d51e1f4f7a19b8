"""`troy logs PILOT`: a pilot agent's log, or the end of a unit's output, from coordination.

An agent publishes its log's last lines, and the ends of the stdout and
stderr of each unit that exits non-zero, into coordination records
(troy.agent.log_tail), so this works for a pilot on any host that shares
the coordination.  It only reads: coordination is opened read-only.

- ``troy logs PILOT``: the agent's last ``--lines`` lines (default 50);
  with ``--follow`` it goes on printing new lines every second until the
  pilot is final (or Ctrl-C).
- ``troy logs PILOT --unit UNIT``: the ends of that unit's stdout and stderr
  as the agent recorded them; for a unit that did not fail (nothing is
  recorded for those) its sandbox's files, when the sandbox is on this host.

Where the agent published nothing (one that died before it logged, or an
older troy), its ``agent.err`` in the pilot's directory is shown if this
host can read it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, TextIO

from troy.model import protocol
from troy.model.errors import NoSuchObject, TroyError
from troy.plugins.coordination.base import Coordination

#: Seconds between looks with ``--follow``.
FOLLOW_INTERVAL = 1.0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``logs`` subcommand."""
    logs = sub.add_parser("logs", help="a pilot agent's log, or a unit's output ends")
    logs.add_argument("pilot", metavar="PILOT", help="pilot id (pilot-...)")
    logs.add_argument("--unit", metavar="UNIT", help="show this unit's stdout and stderr ends")
    logs.add_argument(
        "--lines", type=int, default=50, metavar="N", help="last N lines (default: 50)"
    )
    logs.add_argument(
        "--follow", action="store_true", help="print new lines until the pilot is final"
    )
    logs.add_argument("--coordination", help="coordination URL")
    logs.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from troy.core.service import absolute_url
    from troy.model import config
    from troy.plugins.registry import open_coordination

    if args.lines < 0:
        raise TroyError(f"--lines must be 0 or more, not {args.lines}")
    if args.follow and args.unit:
        raise TroyError("--follow follows the agent's log; --unit shows a unit's output once")
    url = absolute_url(args.coordination or config.default_coordination_url())
    coordination = open_coordination(url)  # troy logs only reads
    try:
        record = coordination.get_record(protocol.pilot_key(args.pilot))
        if record is None:
            raise NoSuchObject(f"no pilot '{args.pilot}' in {coordination.public_url()}")
        out = sys.stdout
        if args.unit:
            return show_unit(coordination, record, args.unit, args.lines, out)
        if args.follow:
            return follow(coordination, record, args.lines, out)
        return show_agent(coordination, record, args.lines, out)
    finally:
        coordination.close()


def _last(lines: list[str], count: int) -> list[str]:
    return lines[-count:] if count else []


def show_agent(coordination: Coordination, pilot: dict[str, Any], lines: int, out: TextIO) -> int:
    """Print the agent's last ``lines`` lines (or its local agent.err); name failed units' tails."""
    published = coordination.get_record(protocol.agent_log_key(pilot["id"]))
    if published is None:
        local = _local_file(os.path.join(pilot["working_directory"], "agent.err"))
        if local is None:
            raise NoSuchObject(
                f"pilot {pilot['id']}'s agent published no log yet (it has not started, or"
                f" its troy is older), and its agent.err in {pilot['working_directory']}"
                " is not on this host"
            )
        print(f"(no published log: {pilot['working_directory']}/agent.err)", file=sys.stderr)
        for line in _last(local.splitlines(), lines):
            print(line, file=out)
        return 0
    for line in _last(list(published.get("lines") or []), lines):
        print(line, file=out)
    failed = [key.rpartition("/")[2] for key in _tail_keys(coordination, pilot["id"])]
    if failed:
        print(
            f"units that exited non-zero on {pilot['id']}: {', '.join(failed)}"
            f" (troy logs {pilot['id']} --unit UNIT)",
            file=sys.stderr,
        )
    return 0


def _tail_keys(coordination: Coordination, pilot_id: str) -> list[str]:
    return sorted(coordination.list_records(f"{protocol.pilot_key(pilot_id)}/tail"))


def follow(
    coordination: Coordination,
    pilot: dict[str, Any],
    lines: int,
    out: TextIO,
    interval: float = FOLLOW_INTERVAL,
) -> int:
    """Print the agent's last ``lines`` lines, then each new one, until the pilot is final."""
    from troy.core.views import pilot_view

    seen: int | None = None
    while True:
        view = pilot_view(coordination, pilot["id"])
        final = view is not None and view.state.is_final
        published = coordination.get_record(protocol.agent_log_key(pilot["id"])) or {}
        kept = list(published.get("lines") or [])
        count = int(published.get("n") or 0)
        if seen is None or count < seen:  # the first look, or a new agent (reinitialized)
            new = _last(kept, lines)
        else:
            fresh = count - seen
            if fresh > len(kept):
                print(f"... {fresh - len(kept)} lines not kept ...", file=out)
            new = kept[len(kept) - min(fresh, len(kept)) :] if fresh > 0 else []
        for line in new:
            print(line, file=out)
        out.flush()
        seen = count
        if final:
            state = view.state if view is not None else "?"
            print(f"(pilot {pilot['id']} is {state})", file=sys.stderr)
            return 0
        time.sleep(interval)


def show_unit(
    coordination: Coordination, pilot: dict[str, Any], unit_id: str, lines: int, out: TextIO
) -> int:
    """Print the ends of a unit's stdout and stderr: as recorded, else from its local sandbox."""
    recorded = coordination.get_record(protocol.unit_tail_key(pilot["id"], unit_id))
    if recorded is not None:
        heading = f"exit code {recorded.get('exit')}, attempt {recorded.get('a', 0)}"
        _print_output(unit_id, heading, recorded.get("stdout", ""), recorded.get("stderr", ""),
                      lines, out)  # fmt: skip
        return 0
    sandbox, description = _sandbox(coordination, pilot["id"], unit_id)
    if sandbox is None:
        raise NoSuchObject(
            f"no output of unit '{unit_id}' from pilot {pilot['id']}: its agent records the"
            " output ends of units that exit non-zero, and it did not run there"
        )
    stdout = _local_file(os.path.join(sandbox, description.get("output") or "stdout"))
    stderr = _local_file(os.path.join(sandbox, description.get("error") or "stderr"))
    if stdout is None and stderr is None:
        raise NoSuchObject(
            f"unit '{unit_id}' did not fail, so its output is only in its sandbox, {sandbox}"
            " on its pilot's host, which this host cannot read"
        )
    _print_output(unit_id, f"from {sandbox}", stdout or "", stderr or "", lines, out)
    return 0


def _print_output(
    unit_id: str, heading: str, stdout: str, stderr: str, lines: int, out: TextIO
) -> None:
    for name, text in (("stdout", stdout), ("stderr", stderr)):
        print(f"== {unit_id} {name} ({heading}) ==", file=out)
        for line in _last(text.splitlines(), lines):
            print(line, file=out)


def _sandbox(
    coordination: Coordination, pilot_id: str, unit_id: str
) -> tuple[str | None, dict[str, Any]]:
    """Where ``unit_id`` last ran on ``pilot_id``, and its description; (None, {}) if it did not."""
    service, _, _ = unit_id.rpartition(".")
    if not service:
        return None, {}
    try:
        events, _ = coordination.read(protocol.service_key(service), None)
    except TroyError:
        return None, {}
    sandbox: str | None = None
    description: dict[str, Any] = {}
    for event in events:
        if event.get("id") != unit_id:
            continue
        if event.get("ev") == "unit":
            description = dict(event.get("d") or {})
        elif event.get("ev") == "state" and event.get("sandbox") and event.get("pilot") == pilot_id:
            sandbox = str(event["sandbox"])
    return sandbox, description


def _local_file(path: str) -> str | None:
    """The text of a file on this host, or None if it cannot be read."""
    try:
        with open(path, "rb") as file:
            return file.read().decode(errors="replace")
    except OSError:
        return None
