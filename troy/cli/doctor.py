"""`troy doctor`: checks a setup and says what to fix, one line per check.

Each line is marked ``ok``, ``warn`` (works, but should be fixed) or
``fail`` (troy will not work, or not safely); the command exits 1 if any
line fails.  The checks:

- ``coordination``: the coordination URL (``--coordination``, else
  ``$TROY_COORDINATION``, else the troy home's) answers, opened read-only;
- ``private``: nobody else can read or write it: a ``file`` store's directory
  is the user's with mode 0700; a ``redis`` server off this host is reached
  over TLS (``rediss://``) with a password, one on this host at least with a
  password; a ``zmq`` broker has CURVE on;
- ``plugins``: every installed plugin is healthy (as ``troy plugins`` marks them);
- ``backend``: the default backend starts an agent that runs a unit: a real
  pilot on this host (``fork://localhost``) with one slot, its coordination in
  a temporary directory, a unit of ``/bin/true``; canceled and removed after,
  within ``--timeout`` seconds;
- ``environment``: the troy home (``$TROY_HOME``) is private, and the
  coordination ``$TROY_COORDINATION`` names answers (when ``--coordination``
  names another).
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from troy.model import config, secrets
from troy.model.errors import NoCoordination, TroyError
from troy.model.private import unsafe_directory

OK, WARN, FAIL = "ok", "warn", "fail"
#: Seconds the reachability check waits for a server that does not answer.
REACH_RETRY = 3.0


@dataclass(frozen=True)
class Finding:
    """One check's result: its mark (ok, warn, fail), what it checked, and what to do."""

    mark: str
    check: str
    message: str

    def line(self) -> str:
        return f"{self.mark:<5} {self.check:<13} {self.message}"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``doctor`` subcommand."""
    doctor = sub.add_parser("doctor", help="check this setup and say what to fix")
    doctor.add_argument(
        "--coordination",
        help="coordination URL to check (default: $TROY_COORDINATION, else ~/.troy's)",
    )
    doctor.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds the test pilot may take to run its unit (default: 60)",
    )
    doctor.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print one line per check; 1 if any failed."""
    out = sys.stdout
    failed = False
    for finding in findings(args.coordination, args.timeout, out):
        print(secrets.scrub(finding.line()), file=out, flush=True)
        failed = failed or finding.mark == FAIL
    return 1 if failed else 0


def findings(coordination: str | None, timeout: float, out: TextIO) -> Iterator[Finding]:
    """Every check's finding, in order (each as soon as it is known)."""
    from troy.core.service import absolute_url

    given = coordination is not None or bool(os.environ.get("TROY_COORDINATION"))
    url = absolute_url(coordination or config.default_coordination_url())
    yield from check_coordination(url, named=given)
    yield from check_plugins()
    yield check_backend(timeout)
    yield from check_environment(coordination)


# -- coordination -------------------------------------------------------------------------
def _shown(url: str) -> str:
    from troy.plugins import registry

    try:
        plugin = registry.for_url("coordination", url)
    except TroyError:
        return secrets.redact_url(url)
    return secrets.redact_url(url, plugin.secret_options())


def check_coordination(url: str, named: bool = True) -> Iterator[Finding]:
    """Whether the coordination at ``url`` answers, and whether it is private."""
    privacy = check_private(url)
    parts = urlsplit(url)
    if parts.scheme == "file" and unsafe_directory(unquote(parts.path)) is not None:
        # troy refuses a store others can write to: opening it would only say that again.
        yield Finding(WARN, "coordination", f"{_shown(url)} not opened: make it private first")
    else:
        yield check_reachable(url, named)
    yield privacy


def _quick(url: str) -> str:
    """``url`` with a short ``retry=`` for the plugins that take it (redis, zmq), unless given."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "tcp"):
        return url
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(key == "retry" for key, _ in query):
        return url
    query.append(("retry", f"{REACH_RETRY:g}"))
    return urlunsplit(parts._replace(query=urlencode(query)))


def check_reachable(url: str, named: bool = True) -> Finding:
    """``ok`` if the coordination answers (opened read-only, never served)."""
    from troy.plugins.registry import open_coordination

    shown = _shown(url)
    try:
        client = open_coordination(_quick(url))
    except NoCoordination as exc:
        if not named:
            return Finding(OK, "coordination", f"{shown}: none yet (the first run makes it)")
        return Finding(FAIL, "coordination", f"{exc}")
    except TroyError as exc:
        added = f"retry={REACH_RETRY:g}"  # troy doctor's, not the user's: not shown
        said = str(exc).replace(f"?{added}", "").replace(f"&{added}", "")
        return Finding(FAIL, "coordination", f"{shown} does not answer: {said}")
    try:
        services = len(client.list_records("service"))
    except TroyError as exc:
        return Finding(FAIL, "coordination", f"{shown} does not answer: {exc}")
    finally:
        client.close()
    return Finding(OK, "coordination", f"{shown} answers ({services} services recorded)")


def _loopback(host: str | None) -> bool:
    if not host or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_private(url: str) -> Finding:
    """Whether others can read or write the coordination at ``url`` (see the module docstring)."""
    parts = urlsplit(url)
    scheme = parts.scheme
    if scheme == "file":
        return _file_private(unquote(parts.path))
    if scheme in ("redis", "rediss"):
        return _redis_private(url)
    if scheme == "tcp":
        return _zmq_private(url)
    return Finding(WARN, "private", f"troy cannot tell whether {scheme}:// coordination is private")


def _file_private(root: str) -> Finding:
    if not os.path.isdir(root):
        return Finding(OK, "private", f"{root}: troy makes it private (0700) when it makes it")
    problem = unsafe_directory(root)
    if problem is not None:
        return Finding(FAIL, "private", f"{problem}: others could queue work there")
    mode = stat.S_IMODE(os.stat(root).st_mode)
    if mode & 0o077:
        return Finding(
            FAIL,
            "private",
            f"{root} has mode {mode:04o}: other users can read its records and their"
            f" secrets; chmod -R go-rwx {root}",
        )
    return Finding(OK, "private", f"{root} is yours alone (mode {mode:04o})")


def _redis_private(url: str) -> Finding:
    from troy.plugins.coordination.redis_connect import PASSWORD_ENV, PASSWORD_FILE

    parts = urlsplit(url)
    options = dict(parse_qsl(parts.query))
    password = (
        bool(parts.password) or PASSWORD_FILE in options or bool(os.environ.get(PASSWORD_ENV))
    )
    tls = parts.scheme == "rediss"
    host = parts.hostname
    how = f"password {'yes' if password else 'no'}, TLS {'yes' if tls else 'no'}"
    fixes = []
    if not password:
        fixes.append(f"give a password ({PASSWORD_FILE}=FILE or ${PASSWORD_ENV}; requirepass)")
    if _loopback(host):
        if fixes:
            return Finding(
                WARN, "private", f"redis on this host ({how}): any local user can use it; "
                + "; ".join(fixes),
            )  # fmt: skip
        return Finding(OK, "private", f"redis on this host ({how})")
    if not tls:
        fixes.append("use rediss:// (TLS) so the password and records are not sent in clear")
    if fixes:
        return Finding(FAIL, "private", f"redis on {host} ({how}): " + "; ".join(fixes))
    return Finding(OK, "private", f"redis on {host} ({how})")


def _zmq_private(url: str) -> Finding:
    parts = urlsplit(url)
    curve = dict(parse_qsl(parts.query)).get("curve", "on") != "off"
    if curve:
        return Finding(OK, "private", f"zmq broker at {parts.hostname}:{parts.port}: CURVE on")
    fix = "drop curve=off (CURVE authenticates and encrypts every client)"
    if _loopback(parts.hostname):
        return Finding(WARN, "private", f"zmq broker on this host with curve=off: {fix}")
    return Finding(
        FAIL, "private", f"zmq broker at {parts.hostname} with curve=off: anyone who reaches"
        f" the port is served; {fix}",
    )  # fmt: skip


# -- plugins --------------------------------------------------------------------------------
def check_plugins() -> Iterator[Finding]:
    """One ``ok`` line if every installed plugin is healthy, else a line per one that is not."""
    from troy.plugins import registry

    marked = [each for kind in registry.KINDS for each in registry.health(kind)]
    bad = [each for each in marked if not each.ok]
    if not bad:
        yield Finding(OK, "plugins", f"{len(marked)} plugins healthy")
        return
    for each in bad:
        mark = WARN if each.mark in (registry.SHADOWED, registry.DUPLICATE) else FAIL
        yield Finding(
            mark,
            "plugins",
            f"{each.info.kind} {each.info.name} from {each.info.distribution}"
            f" {each.info.version} is {each.mark}: {each.reason}"
            f" (troy plugins --check {each.info.kind}.{each.info.name})",
        )


# -- backend --------------------------------------------------------------------------------
def check_backend(timeout: float) -> Finding:
    """Start a one-slot pilot on this host, run ``/bin/true`` on it, cancel it, remove it all."""
    from troy.api.services import PilotJobService, WorkUnitService
    from troy.model.states import State

    started = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="troy-doctor-"))
    url = (scratch / "coordination").as_uri()
    pilots: PilotJobService | None = None
    units: WorkUnitService | None = None
    pilot = None
    try:
        pilots = PilotJobService(coordination=url)
        units = WorkUnitService(coordination=url)
        units.add(pilots)
        pilot = pilots.create("fork://localhost", {"number_of_processes": 1})
        unit = units.submit({"executable": "/bin/true"})
        with contextlib.suppress(TroyError):
            units.wait(timeout=timeout)
        seconds = time.monotonic() - started
        if unit.state == State.Done:
            return Finding(
                OK,
                "backend",
                f"local backend started an agent that ran a unit in {seconds:.1f} s",
            )
        why = pilot.state_detail or unit.state_detail or f"unit {unit.state}"
        return Finding(
            FAIL,
            "backend",
            f"local backend: the test pilot ran no unit in {timeout:g} s (pilot {pilot.state}:"
            f" {why}); its agent's log: {pilot.working_directory}/agent.err",
        )
    except TroyError as exc:
        return Finding(FAIL, "backend", f"local backend cannot start an agent: {exc}")
    finally:
        if pilots is not None:
            with contextlib.suppress(TroyError):
                pilots.cancel()
        for service in (units, pilots):
            if service is not None:
                service.close()
        shutil.rmtree(scratch, ignore_errors=True)
        if pilot is not None and pilot.state == State.Canceled:  # its sandbox, unless kept to read
            shutil.rmtree(pilot.working_directory, ignore_errors=True)


# -- environment ------------------------------------------------------------------------------
def check_environment(coordination: str | None) -> Iterator[Finding]:
    """The troy home is private; ``$TROY_COORDINATION`` answers (if not the one checked)."""
    home = config.troy_home()
    if home.is_dir():
        problem = unsafe_directory(home)
        mode = stat.S_IMODE(home.stat().st_mode)
        if problem is not None:
            yield Finding(FAIL, "environment", f"TROY_HOME {problem}")
        elif mode & 0o077:
            yield Finding(
                WARN,
                "environment",
                f"TROY_HOME {home} has mode {mode:04o}: others can read what troy keeps"
                f" there; chmod go-rwx {home}",
            )
        else:
            yield Finding(OK, "environment", f"TROY_HOME {home} is yours alone")
    else:
        yield Finding(OK, "environment", f"TROY_HOME {home}: none yet (the first run makes it)")
    named = os.environ.get("TROY_COORDINATION")
    if named and coordination is not None and named != coordination:
        reach = check_reachable(named)
        yield Finding(reach.mark, "environment", f"TROY_COORDINATION: {reach.message}")
