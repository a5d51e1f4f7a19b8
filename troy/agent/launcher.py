"""Start one work unit as a process: sandbox, environment, argv, redirections.

Units run without a shell.  ``$VAR`` and ``${VAR}`` in the executable, the
arguments and the input/output/error names are expanded from the unit's own
environment (the agent's environment plus the unit's ``environment``);
unknown variables are left as they are, like the shell's ``set +u`` would not.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any

_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


def expand(text: str, environment: Mapping[str, str]) -> str:
    """Replace ``$VAR``/``${VAR}`` with values from ``environment``; leave unknown ones."""
    if "$" not in text:
        return text

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return environment.get(name, match.group(0))

    return _VARIABLE.sub(substitute, text)


@dataclass
class Prepared:
    """A unit ready to start."""

    argv: list[str]
    sandbox: str
    environment: dict[str, str]
    stdin: str | None
    stdout: str
    stderr: str


def prepare(
    unit_id: str,
    description: Mapping[str, Any],
    pilot_directory: str,
    base_environment: Mapping[str, str],
) -> Prepared:
    """Work out argv, sandbox, environment and redirections of one unit."""
    environment = dict(base_environment)
    environment.update(description.get("environment") or {})
    named = description.get("working_directory")
    if named:
        sandbox = os.path.join(pilot_directory, expand(named, environment))
    else:
        sandbox = os.path.join(pilot_directory, unit_id)
    environment["TROY_UNIT_ID"] = unit_id
    environment["TROY_SANDBOX"] = sandbox
    argv = [expand(description["executable"], environment)]
    argv.extend(expand(argument, environment) for argument in description.get("arguments") or ())

    def in_sandbox(name: str | None, default: str | None) -> str | None:
        if not name:
            return None if default is None else os.path.join(sandbox, default)
        return os.path.join(sandbox, expand(name, environment))

    return Prepared(
        argv=argv,
        sandbox=sandbox,
        environment=environment,
        stdin=in_sandbox(description.get("input"), None),
        stdout=in_sandbox(description.get("output"), "stdout") or "",
        stderr=in_sandbox(description.get("error"), "stderr") or "",
    )


def start(prepared: Prepared) -> subprocess.Popen[bytes]:
    """Make the sandbox and start the process in a session (process group) of its own.

    Raises OSError (e.g. FileNotFoundError for a missing executable) on failure.
    """
    os.makedirs(prepared.sandbox, exist_ok=True)
    stdin: IO[bytes] | int = subprocess.DEVNULL
    stdout = open(prepared.stdout, "ab")  # noqa: SIM115 - closed below, after the fork
    try:
        stderr = (
            stdout if prepared.stderr == prepared.stdout else open(prepared.stderr, "ab")  # noqa: SIM115
        )
        try:
            if prepared.stdin is not None:
                stdin = open(prepared.stdin, "rb")  # noqa: SIM115
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
            if stderr is not stdout:
                stderr.close()
            if not isinstance(stdin, int):
                stdin.close()
    finally:
        stdout.close()


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
