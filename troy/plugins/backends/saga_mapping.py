"""The saga backend's mappings, without radical.saga: URL to scheme, pilot to SAGA job, states back.

Everything here is pure (no job service, no files): `saga_scheme` checks a
resource URL, `job_attributes` turns a PilotLaunch and the bootstrap's
arguments into the attributes of a ``radical.saga.job.Description``, and
`job_state` turns a SAGA job state into a pilot state.
"""

from __future__ import annotations

import math
import re
import shlex
from typing import Any
from urllib.parse import urlsplit

from troy.model.description import PilotJobDescription
from troy.model.errors import BackendError, BadDescription
from troy.model.states import State
from troy.model.validators import ssh_name_problem
from troy.plugins.backends.base import PilotLaunch

_BATCH_SCHEMES = ("slurm", "pbs", "pbspro", "torque", "sge", "lsf")
#: Schemes whose jobs are started by a batch system (they need a queue on SLURM).
BATCH_SCHEMES = frozenset((*_BATCH_SCHEMES, *(f"{s}+ssh" for s in _BATCH_SCHEMES)))
#: Schemes the saga backend is chosen for when no pj_type is given.
SCHEMES = ("ssh", *sorted(BATCH_SCHEMES))
#: Schemes it takes when the pj_type names it (by scheme alone these are the local backend's).
LOCAL_SCHEMES = ("fork", "local")
#: The agent's files in the pilot's working directory.
AGENT_OUTPUT, AGENT_ERROR = "agent.out", "agent.err"
#: Description fields that go to the SAGA job under the same name when set.
_SAME_NAME = ("queue", "project", "candidate_hosts", "operating_system_type")
#: radical.saga's adaptors put these values into shell commands and job scripts as they
#: are (``mkdir -p %s && cd %s``, ``#SBATCH -p %s``, ``export K=%s``): only characters
#: no shell gives a meaning to may pass.  Arguments are quoted instead (job_attributes).
_SHELL_SAFE = re.compile(r"[A-Za-z0-9_./~+,=@%:-]+")
_SHELL_FIELDS = ("working_directory", "cpu_architecture", *_SAME_NAME)


def saga_scheme(rm: str) -> str:
    """The lowercase scheme of resource URL ``rm``; BackendError if the backend does not take it."""
    scheme = urlsplit(rm).scheme.lower()
    if scheme not in (*SCHEMES, *LOCAL_SCHEMES):
        raise BackendError(
            f"the saga backend does not take '{scheme}://' URLs ({rm}); it takes"
            f" fork, {', '.join(SCHEMES)}"
        )
    return scheme


def check_description(rm: str, description: PilotJobDescription) -> None:
    """Refuse (BackendError) a description the resource manager of ``rm`` cannot run."""
    if saga_scheme(rm).startswith("slurm") and not description.queue:
        raise BackendError(
            f"a slurm pilot needs a queue (the SLURM partition) in its description ({rm})"
        )
    parts = urlsplit(rm)
    problem = ssh_name_problem(parts.hostname, parts.username)
    if problem is not None:
        raise BadDescription(
            "resource", f"{problem} ({rm!r:.120}); the saga backend hands it to ssh"
        )
    for field in _SHELL_FIELDS:
        value = getattr(description, field)
        for item in value if isinstance(value, list) else [value]:
            if item is not None:
                shell_safe(field, str(item))


def shell_safe(field: str, value: str) -> str:
    """``value`` if radical.saga may put it into a shell command unquoted; else BadDescription."""
    if not _SHELL_SAFE.fullmatch(value):
        raise BadDescription(
            field,
            f"the saga backend passes it to a shell unquoted (radical.saga), so it may hold"
            f" only letters, digits and ._-/~+,=@%: ; got {value!r:.80}",
        )
    return value


def files_url(rm: str) -> str:
    """Where the resource's files are reached from here: sftp:// for ssh forms, else local."""
    parts = urlsplit(rm)
    scheme = parts.scheme.lower()
    if scheme == "ssh" or scheme.endswith("+ssh"):
        return f"sftp://{parts.netloc}"
    return "file://localhost"


def job_attributes(launch: PilotLaunch, arguments: list[str]) -> dict[str, Any]:
    """The SAGA job description's attributes that run ``/bin/sh arguments`` for this pilot.

    A batch URL's job carries the pilot's resources (processes, wall time in
    whole minutes rounded up, queue, project, ...); fork and ssh start one
    process, the agent, which sizes its slots itself.
    """
    attributes: dict[str, Any] = {
        "name": launch.pilot_id,
        "executable": "/bin/sh",
        # SAGA joins arguments into a shell command line as they are: quote them here.
        "arguments": [shlex.quote(argument) for argument in arguments],
        # The default directory (under $TROY_HOME) is checked too: it reaches the same shell.
        "working_directory": shell_safe("working_directory", launch.working_directory),
        "output": AGENT_OUTPUT,
        "error": AGENT_ERROR,
    }
    if launch.environment:
        attributes["environment"] = {
            shell_safe("environment", name): shell_safe(f"environment.{name}", value)
            for name, value in launch.environment.items()
        }
    if saga_scheme(launch.rm) not in BATCH_SCHEMES:
        return attributes
    pilot = launch.description
    processes = pilot.number_of_processes or 1
    attributes["number_of_processes"] = processes
    attributes["total_cpu_count"] = pilot.total_cpu_count or processes
    if pilot.processes_per_host:
        attributes["processes_per_host"] = pilot.processes_per_host
    if pilot.wall_time_limit:
        attributes["wall_time_limit"] = math.ceil(pilot.wall_time_limit)
    for name in _SAME_NAME:
        value = getattr(pilot, name)
        if value:
            attributes[name] = value
    if pilot.total_physical_memory:
        attributes["total_physical_memory"] = pilot.total_physical_memory
    if pilot.total_cpu_time:
        attributes["total_cpu_time"] = int(pilot.total_cpu_time)
    if pilot.cpu_architecture:
        attributes["system_architecture"] = {"cpu": pilot.cpu_architecture}
    return attributes


def job_state(saga_state: str) -> tuple[State, str]:
    """The pilot state, and a detail, for a SAGA job state (``str(job.state)``).

    New, Pending and Suspended are Pending; Running is Running; Failed, and
    Done (the agent reports its own end, and this is read only when it did
    not), are Failed; Canceled is Canceled (the backend makes it Done when the
    job's wall time had passed: SLURM reports a timeout as a cancel).
    """
    if saga_state in ("New", "Pending"):
        return State.Pending, ""
    if saga_state == "Suspended":
        return State.Pending, "suspended by the resource manager"
    if saga_state == "Running":
        return State.Running, ""
    if saga_state == "Failed":
        return State.Failed, "agent job failed"
    if saga_state == "Done":
        return State.Failed, "agent job ended without the agent reporting its end"
    if saga_state == "Canceled":
        return State.Canceled, "the resource manager canceled the agent job"
    return State.Unknown, ""
