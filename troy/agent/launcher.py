"""Start one work unit as a process: sandbox, environment, argv, redirections.

Units run without a shell.  ``$VAR`` and ``${VAR}`` in the executable, the
arguments and the input/output/error names are expanded from the unit's own
environment (the agent's environment plus the unit's ``environment``);
unknown variables are left as they are, like the shell's ``set +u`` would not.
Units that need it start through the pilot's launcher plugin (``troy.launchers``):
the one the pilot description's ``launcher`` names, else the allocation's
default, ``srun`` inside SLURM and ``mpirun`` elsewhere.  With the defaults,
MPI units, and single units in a SLURM allocation of several nodes, are wrapped.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from troy.agent.resources import Allocation
from troy.model.cores import unit_cores
from troy.plugins import registry
from troy.plugins.launchers.base import AllocationFacts, Launcher

_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


def expand(text: str, environment: Mapping[str, str]) -> str:
    """Replace ``$VAR``/``${VAR}`` with values from ``environment``; leave unknown ones."""
    if "$" not in text:
        return text

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return environment.get(name, match.group(0))

    return _VARIABLE.sub(substitute, text)


#: Stands for "no allocation": only its kind is looked at.
_OUTSIDE = Allocation("none", (("localhost", 1),))


def default_launcher(allocation: Allocation) -> str:
    """The launcher of a pilot that names none: ``srun`` inside SLURM, ``mpirun`` elsewhere."""
    return "srun" if allocation.kind == "slurm" else "mpirun"


def load_launcher(name: str | None, allocation: Allocation | None = None) -> Launcher:
    """The launcher plugin ``name`` (None: `default_launcher`), through the registry.

    Raises NoSuchPlugin for a name that is not installed, BadPlugin for a broken one.
    """
    plugin: type[Launcher] = registry.load(
        "launcher", name or default_launcher(allocation or _OUTSIDE)
    )
    return plugin()


@lru_cache(maxsize=16)
def allocation_facts(allocation: Allocation) -> AllocationFacts:
    """What a launcher is told of ``allocation``."""
    return AllocationFacts(allocation.kind, allocation.nodes, allocation.hostfile)


@dataclass
class Prepared:
    """A unit ready to start."""

    argv: list[str]
    sandbox: str
    #: The unit's whole environment, or None to inherit the agent's (no "environment" given).
    environment: dict[str, str] | None
    stdin: str | None
    stdout: str
    stderr: str


def prepare(
    unit_id: str,
    description: Mapping[str, Any],
    pilot_directory: str,
    base_environment: Mapping[str, str],
    allocation: Allocation | None = None,
    cores: int = 0,
    launcher: Launcher | None = None,
) -> Prepared:
    """Work out argv, sandbox, environment and redirections of one unit.

    ``base_environment`` must be the agent's own environment: a unit without an
    ``environment`` of its own (nor ``threads_per_process``, which sets
    ``OMP_NUM_THREADS`` unless its ``environment`` does, nor ``cores``) inherits it as it is,
    which spares copying and encoding it for every one of many short units.
    A unit with ``cores`` gets ``TROY_CORES``: ``cores``, the slots it was
    given (0: its `unit_cores`), which for a ranged unit says how many of them it
    got; troy's value wins over the unit's ``environment``.
    ``allocation`` is the agent's (None: outside any), ``launcher`` the
    pilot's (None: the allocation's default).  Raises LauncherMissing (an
    OSError) if the unit needs the launcher and it is not on the unit's PATH.
    """
    extra: Mapping[str, str] | None = description.get("environment")
    threads = description.get("threads_per_process")
    if threads and "OMP_NUM_THREADS" not in (extra or {}):
        extra = {**(extra or {}), "OMP_NUM_THREADS": str(threads)}
    if description.get("cores") is not None:
        extra = {**(extra or {}), "TROY_CORES": str(cores or unit_cores(description))}
    environment: Mapping[str, str] = base_environment
    if extra:
        environment = {**base_environment, **extra}
    named = description.get("working_directory")
    if named:
        sandbox = os.path.join(pilot_directory, expand(named, environment))
    else:
        sandbox = os.path.join(pilot_directory, unit_id)
    argv = [expand(description["executable"], environment)]
    argv.extend(expand(argument, environment) for argument in description.get("arguments") or ())
    facts = allocation_facts(allocation or _OUTSIDE)
    launcher = launcher or load_launcher(None, allocation)
    if launcher.applies(description, facts):
        launcher.require(environment.get("PATH", os.defpath))
        argv = launcher.wrap(argv, description, cores or unit_cores(description), facts)

    def in_sandbox(name: str | None, default: str | None) -> str | None:
        if not name:
            return None if default is None else os.path.join(sandbox, default)
        return os.path.join(sandbox, expand(name, environment))

    return Prepared(
        argv=argv,
        sandbox=sandbox,
        environment=dict(environment) if extra else None,
        stdin=in_sandbox(description.get("input"), None),
        stdout=in_sandbox(description.get("output"), "stdout") or "",
        stderr=in_sandbox(description.get("error"), "stderr") or "",
    )


_OUTPUT_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
_devnull: int | None = None


def _null_input() -> int:
    """One read-only /dev/null descriptor, shared by every unit without an input file."""
    global _devnull
    if _devnull is None:
        _devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    return _devnull


def start(prepared: Prepared) -> subprocess.Popen[bytes]:
    """Make the sandbox and start the process in a session (process group) of its own.

    Raises OSError (e.g. FileNotFoundError for a missing executable) on failure.
    """
    try:
        os.mkdir(prepared.sandbox)
    except FileExistsError:
        pass
    except FileNotFoundError:  # a named working_directory several levels deep
        os.makedirs(prepared.sandbox, exist_ok=True)
    opened: list[int] = []
    try:
        stdout = os.open(prepared.stdout, _OUTPUT_FLAGS, 0o644)
        opened.append(stdout)
        stderr = stdout
        if prepared.stderr != prepared.stdout:
            stderr = os.open(prepared.stderr, _OUTPUT_FLAGS, 0o644)
            opened.append(stderr)
        stdin = _null_input()
        if prepared.stdin is not None:
            stdin = os.open(prepared.stdin, os.O_RDONLY | os.O_CLOEXEC)
            opened.append(stdin)
        return subprocess.Popen(
            prepared.argv,
            cwd=prepared.sandbox,
            env=prepared.environment,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
            close_fds=True,
        )
    finally:
        for descriptor in opened:
            os.close(descriptor)


def describe_exit(returncode: int) -> str:
    """Human words for a process' exit status."""
    if returncode < 0:
        import signal

        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name}"
    return f"exit code {returncode}"
