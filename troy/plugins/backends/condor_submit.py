"""The condor backend's mappings, without HTCondor: URL to target, pilot to submit description,
job ad to pilot state.

Everything here is pure (no schedd, no bindings): `parse_condor_url` reads a
``condor://`` URL, `submit_description` turns a PilotLaunch and the
bootstrap's arguments into the dict that ``htcondor2.Submit`` takes,
`job_state` turns a job's ClassAd into a pilot state, and `pick_schedd`
chooses among a collector's schedd ads.

Values go through the submit language, which is line-based and expands
``$(NAME)`` macros: a value may not hold a line break, and a ``$`` that would
start a macro (``$(``, ``$ENV(``, ...) is written ``$(DOLLAR)``.  Arguments
and the environment use HTCondor's "new syntax" (the whole value in double
quotes, ``""`` for a double quote, single quotes around words with blanks,
``''`` for a single quote); ClassAd attributes (``+Name``) get ClassAd string
literals.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from troy.model.description import PilotJobDescription
from troy.model.errors import BackendError
from troy.model.states import State
from troy.plugins.backends.base import PilotLaunch

#: The collector port of an HTCondor pool when the URL names none.
DEFAULT_PORT = 9618
#: Universes a pilot may ask for with ``?universe=``.
UNIVERSES = ("vanilla", "grid")
#: Query parameters a condor:// URL may carry.
URL_PARAMETERS = ("schedd", "universe", "grid_resource")
#: How the RemoveReason of a pilot removed at its wall time starts (troy sets it).
WALL_TIME_REASON = "troy: wall time limit"
#: The agent's files in the pilot's working directory on the submit side.
AGENT_OUTPUT, AGENT_ERROR, AGENT_LOG = "agent.out", "agent.err", "agent.log"
#: HTCondor's JobStatus values.
IDLE, RUNNING, REMOVED, COMPLETED, HELD, TRANSFERRING_OUTPUT, SUSPENDED = range(1, 8)

# A "$" that the submit language would expand: "$(NAME)", "$ENV(...)", "$RANDOM_CHOICE(...)".
_MACRO_DOLLAR = re.compile(r"\$(?=[A-Za-z0-9_]*\()")
# "$$(" is a match-time macro, and no escape of it survives the submit language.
_MATCH_TIME = re.compile(r"\$\$[A-Za-z0-9_]*\(")


@dataclass(frozen=True)
class CondorTarget:
    """Where a condor:// URL submits, and into which universe."""

    url: str
    #: ``host:port`` of the pool's collector to ask for the schedd; None: the local schedd.
    collector: str | None
    #: The host named in the URL (matched against the schedds' Name and Machine).
    host: str | None
    #: The schedd's ``Name`` (``?schedd=``), or None to pick by host.
    schedd: str | None
    universe: str
    #: The grid universe's ``grid_resource`` (``?grid_resource=``).
    grid_resource: str | None


def parse_condor_url(rm: str) -> CondorTarget:
    """The target of ``condor://[HOST[:PORT]][?schedd=NAME&universe=U&grid_resource=R]``.

    No host: this host's own schedd, found through its HTCondor configuration
    (``CONDOR_CONFIG``).  A host: the pool's collector at HOST:PORT (default
    9618), asked for the schedd named ``schedd``, else the one on HOST, else
    its only schedd.  ``grid_resource`` selects the grid universe (``universe``
    may then be omitted); ``universe=grid`` needs it.
    """
    parts = urlsplit(rm)
    if parts.scheme.lower() != "condor":
        raise BackendError(f"the condor backend takes condor:// URLs, not {rm}")
    try:
        port = parts.port
    except ValueError as exc:
        raise BackendError(f"bad port in {rm}: {exc}") from exc
    host = parts.hostname or None
    if parts.path not in ("", "/"):
        raise BackendError(f"a condor:// URL has no path ({parts.path!r} in {rm})")
    if port is not None and host is None:
        raise BackendError(f"a port needs a host in {rm}")
    parameters: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name not in URL_PARAMETERS:
            allowed = ", ".join(URL_PARAMETERS)
            raise BackendError(f"{name}: unknown parameter in {rm} (a condor URL takes {allowed})")
        if not value.strip():
            raise BackendError(f"{name}: empty value in {rm}")
        parameters[name] = value.strip()
    grid_resource = parameters.get("grid_resource")
    universe = parameters.get("universe", "grid" if grid_resource else "vanilla").lower()
    if universe not in UNIVERSES:
        raise BackendError(
            f"universe: {universe!r} is not one troy submits to ({', '.join(UNIVERSES)}) in {rm}"
        )
    if universe == "grid" and not grid_resource:
        raise BackendError(f"grid_resource: the grid universe needs one in {rm}")
    if universe != "grid" and grid_resource:
        raise BackendError(f"grid_resource: only for the grid universe, not {universe!r}, in {rm}")
    if parameters.get("schedd") and host is None:
        raise BackendError(f"schedd: naming a schedd needs the pool's collector host in {rm}")
    collector = f"{host}:{port or DEFAULT_PORT}" if host else None
    return CondorTarget(rm, collector, host, parameters.get("schedd"), universe, grid_resource)


def submit_value(field: str, text: str) -> str:
    """``text`` as the submit language reads it back: macros escaped, no line breaks."""
    if "\n" in text or "\r" in text:
        raise BackendError(f"{field}: a line break cannot go through the HTCondor submit language")
    if _MATCH_TIME.search(text):
        raise BackendError(
            f"{field}: '$$(' cannot go through the HTCondor submit language ({text[:80]!r})"
        )
    return _MACRO_DOLLAR.sub("$(DOLLAR)", text)


def _quote_word(text: str) -> str:
    """One argument or NAME=value in the new syntax, before the outer double quotes."""
    if text == "" or re.search(r"[\s']", text):
        text = "'" + text.replace("'", "''") + "'"
    return text.replace('"', '""')


def quote_arguments(arguments: Sequence[str], field: str = "arguments") -> str:
    """The submit ``arguments`` value (new syntax) that gives the job exactly ``arguments``."""
    return submit_value(field, '"' + " ".join(_quote_word(a) for a in arguments) + '"')


def quote_environment(environment: Mapping[str, str], field: str = "environment") -> str:
    """The submit ``environment`` value (new syntax) that sets exactly ``environment``."""
    entries = []
    for name, value in environment.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise BackendError(f"{field}.{name}: not a variable name HTCondor passes on")
        entries.append(_quote_word(f"{name}={value}"))
    return submit_value(field, '"' + " ".join(entries) + '"')


def classad_string(text: str, field: str) -> str:
    """A ClassAd string literal of ``text`` (for ``+Attribute`` and expressions)."""
    escaped = (
        text.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return submit_value(field, f'"{escaped}"')


def requirements(description: PilotJobDescription) -> str | None:
    """The job's ``requirements``: candidate hosts (Machine), cpu_architecture (Arch), OS (OpSys).

    ClassAd ``==`` on strings ignores case, so ``x86_64`` matches ``X86_64``.
    """
    clauses = []
    hosts = description.candidate_hosts or []
    if hosts:
        machines = " || ".join(
            f"TARGET.Machine == {classad_string(h, 'candidate_hosts')}" for h in hosts
        )
        clauses.append(f"({machines})")
    if description.cpu_architecture:
        arch = classad_string(description.cpu_architecture, "cpu_architecture")
        clauses.append(f"(TARGET.Arch == {arch})")
    if description.operating_system_type:
        opsys = classad_string(description.operating_system_type, "operating_system_type")
        clauses.append(f"(TARGET.OpSys == {opsys})")
    return " && ".join(clauses) or None


def _path(field: str, path: str) -> str:
    if "," in path or re.search(r"\s", path):
        raise BackendError(f"{field}: HTCondor file lists cannot hold {path!r} (comma or blank)")
    return submit_value(field, path)


def submit_description(
    launch: PilotLaunch,
    arguments: Sequence[str],
    target: CondorTarget,
    wheels: Sequence[Path] = (),
) -> dict[str, str]:
    """The submit description of the pilot's glide-in: ``/bin/sh arguments`` on an execute node.

    The job starts in the execute node's scratch directory
    (``should_transfer_files = YES``) and ``initialdir`` is the pilot's working
    directory on the submit side, where ``agent.out``/``agent.err``/``agent.log``
    come back; ``wheels`` (ship mode: troy's and the plugin packages') are
    transferred into the scratch directory, where the bootstrap finds them.
    The agent makes its unit sandboxes in the working directory's absolute
    path on the execute node.
    """
    pilot = launch.description
    submit = {
        "universe": target.universe,
        "executable": "/bin/sh",
        "transfer_executable": "false",
        "arguments": quote_arguments(arguments),
        "initialdir": submit_value("working_directory", launch.working_directory),
        "output": AGENT_OUTPUT,
        "error": AGENT_ERROR,
        "log": AGENT_LOG,
        "should_transfer_files": "YES",
        "when_to_transfer_output": "ON_EXIT",
        "request_cpus": str(pilot.total_cpu_count or pilot.number_of_processes or 1),
        "batch_name": submit_value("pilot_id", launch.pilot_id),
        "+TroyPilotId": classad_string(launch.pilot_id, "pilot_id"),
    }
    if target.grid_resource:
        submit["grid_resource"] = submit_value("grid_resource", target.grid_resource)
    if pilot.total_physical_memory:
        submit["request_memory"] = str(pilot.total_physical_memory)
    if pilot.wall_time_limit:
        limit = pilot.wall_time_limit
        submit["+MaxRuntime"] = str(math.ceil(limit * 60))
        # The current run's start (EnteredCurrentStatus where a universe has no start date).
        started = (
            "ifThenElse(isUndefined(JobCurrentStartDate), EnteredCurrentStatus,"
            " JobCurrentStartDate)"
        )
        submit["periodic_remove"] = f"(JobStatus == 2) && (time() - {started} > MaxRuntime)"
        reason = f"{WALL_TIME_REASON} of {limit:g} min reached"
        submit["+PeriodicRemoveReason"] = classad_string(reason, "wall_time_limit")
    expression = requirements(pilot)
    if expression:
        submit["requirements"] = expression
    if wheels:
        submit["transfer_input_files"] = ",".join(_path("wheel", str(wheel)) for wheel in wheels)
    if launch.environment:
        submit["environment"] = quote_environment(launch.environment)
    return submit


def ad_text(ad: Mapping[str, Any], name: str) -> str:
    """A string attribute of a ClassAd, stripped; "" when it is missing or not a string."""
    value = ad.get(name)
    return value.strip() if isinstance(value, str) else ""


def _integer(ad: Mapping[str, Any], name: str) -> int | None:
    value = ad.get(name)
    # Exactly int: classad2 reads undefined and error as Value members, an IntEnum (2 and 1).
    return value if type(value) is int else None


def job_state(ad: Mapping[str, Any]) -> tuple[State, str]:
    """The pilot state, and a detail, for a job's ClassAd (a classad2.ClassAd or a dict).

    Idle, Held (with its HoldReason) and Suspended are Pending; Running and
    Transferring output are Running; Removed is Done at the wall time (troy's
    periodic_remove says so in RemoveReason), else Canceled; Completed is
    Failed, with the exit code, since the agent reports its own end and this
    is read only when it did not.
    """
    status = _integer(ad, "JobStatus")
    if status == IDLE:
        return State.Pending, "idle: waiting for a matching slot"
    if status in (RUNNING, TRANSFERRING_OUTPUT):
        return State.Running, ""
    if status == HELD:
        return State.Pending, f"held: {ad_text(ad, 'HoldReason') or 'no reason given'}"
    if status == SUSPENDED:
        return State.Pending, "suspended by HTCondor"
    if status == REMOVED:
        reason = ad_text(ad, "RemoveReason")
        if reason.startswith(WALL_TIME_REASON):
            return State.Done, reason.removeprefix("troy: ")
        return State.Canceled, f"the agent job was removed: {reason or 'no reason given'}"
    if status == COMPLETED:
        if ad.get("ExitBySignal") is True:
            how = f"killed by signal {_integer(ad, 'ExitSignal')}"
        else:
            how = f"exit code {_integer(ad, 'ExitCode')}"
        return State.Failed, f"agent job ended without the agent reporting its end ({how})"
    return State.Unknown, f"unknown JobStatus {ad.get('JobStatus')!r}"


def pick_schedd(ads: list[Any], host: str | None, where: str) -> Any:
    """The schedd ad among a collector's ``ads`` that runs on ``host``, else the only one."""
    if not ads:
        raise BackendError(f"the collector at {where} knows no schedd")
    if host:
        wanted = host.lower()

        def on_host(ad: Any) -> bool:
            names = [ad_text(ad, "Name").lower(), ad_text(ad, "Machine").lower()]
            return any(n == wanted or n.startswith(wanted + ".") for n in names if n)

        matching = [ad for ad in ads if on_host(ad)]
        if len(matching) == 1:
            return matching[0]
        if matching:
            ads = matching
    if len(ads) == 1:
        return ads[0]
    names = ", ".join(sorted(ad_text(ad, "Name") for ad in ads))
    raise BackendError(
        f"the collector at {where} knows several schedds ({names}): name one with ?schedd=NAME"
    )
