"""The batch allocation an agent runs in (SLURM, PBS/Torque, SGE, LSF), read from its environment.

`discover` reads only environment variables and the files they name; it never
calls the batch system's commands.  A value it cannot make sense of does not
stop the agent: it logs a warning naming the variable and reports "none",
the agent's own machine, as if there were no allocation.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

log = logging.getLogger(__name__)

AllocationKind = Literal["slurm", "pbs", "sge", "lsf", "condor", "none"]


@dataclass(frozen=True)
class Allocation:
    """The hosts and cores a batch system gave the job the agent runs in."""

    kind: AllocationKind
    #: (host, cores on it), in the batch system's order; the first is where the job started.
    nodes: tuple[tuple[str, int], ...]
    job_id: str | None = None
    #: The batch system's host file: PBS_NODEFILE, PE_HOSTFILE (SGE), LSB_DJOB_HOSTFILE (LSF).
    hostfile: str | None = None

    @property
    def cores(self) -> int:
        """Cores on all nodes together."""
        return sum(cores for _, cores in self.nodes)

    def cores_on(self, host: str) -> int:
        """Cores on ``host`` (short and full names match), else on the first node."""
        short = host.split(".", 1)[0]
        for name, cores in self.nodes:
            if name == host or name.split(".", 1)[0] == short:
                return cores
        return self.nodes[0][1]


class _Unreadable(ValueError):
    """A variable (or the file it names) that does not say what it should."""

    def __init__(self, variable: str, why: str) -> None:
        super().__init__(f"{variable}: {why}")
        self.variable = variable


def discover(environ: Mapping[str, str]) -> Allocation:
    """The allocation described by ``environ`` (pass ``os.environ``); kind "none" outside one."""
    readers: tuple[tuple[tuple[str, ...], Callable[[Mapping[str, str]], Allocation]], ...] = (
        (("SLURM_JOB_ID", "SLURM_JOBID"), _slurm),
        (("PBS_NODEFILE", "PBS_JOBID"), _pbs),
        (("PE_HOSTFILE",), _sge),
        (("LSB_MCPU_HOSTS", "LSB_JOBID"), _lsf),
        (("_CONDOR_JOB_AD",), _condor),
    )
    for markers, reader in readers:
        if any(environ.get(name) for name in markers):
            try:
                return reader(environ)
            except _Unreadable as exc:
                log.warning("ignoring the batch allocation, running as outside one: %s", exc)
                break
    return local()


def local() -> Allocation:
    """This machine alone: the cores this process may run on."""
    return Allocation("none", ((socket.gethostname(), len(os.sched_getaffinity(0))),))


def _required(environ: Mapping[str, str], *names: str) -> str:
    """The first of ``names`` that is set and not blank."""
    for name in names:
        value = environ.get(name, "").strip()
        if value:
            return value
    raise _Unreadable(names[0], "not set")


def _digits(text: str) -> bool:
    """Whether ``text`` is a plain decimal number (str.isdigit also takes "²")."""
    return text.isascii() and text.isdigit()


def _count(variable: str, text: str) -> int:
    """A positive core count."""
    if not _digits(text.strip()) or int(text) < 1:
        raise _Unreadable(variable, f"expected a positive core count, got {text!r}")
    return int(text)


def _read(variable: str, path: str) -> list[str]:
    """The non-blank lines of the file ``variable`` names."""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            lines = [line.strip() for line in file]
    except OSError as exc:
        raise _Unreadable(variable, f"cannot read {path}: {exc.strerror or exc}") from exc
    lines = [line for line in lines if line]
    if not lines:
        raise _Unreadable(variable, f"{path} lists no hosts")
    return lines


def _tally(pairs: list[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    """Cores per host, hosts in the order they first appear."""
    totals: dict[str, int] = {}
    for host, cores in pairs:
        totals[host] = totals.get(host, 0) + cores
    return tuple(totals.items())


# -- SLURM -----------------------------------------------------------------------
_CPUS_ENTRY = re.compile(r"(\d+)(?:\(x(\d+)\))?")


def expand_nodelist(nodelist: str) -> list[str]:
    """Host names in SLURM's compressed form: ``"n[01-03,07],gpu1"`` → n01 n02 n03 n07 gpu1.

    Ranges keep the zero padding of their first number; a name with several
    bracket groups (``"r[1-2]n[1-2]"``) stands for every combination.
    Raises ValueError on a malformed list.
    """
    names: list[str] = []
    for item in _split_top_level(nodelist):
        parts = re.split(r"(\[[^\[\]]*\])", item)
        choices: list[list[str]] = []
        for part in parts:
            if part.startswith("["):
                choices.append(_expand_ranges(part[1:-1], nodelist))
            elif "[" in part or "]" in part:
                raise ValueError(f"unbalanced brackets in {nodelist!r}")
            elif part:
                choices.append([part])
        names.extend("".join(combination) for combination in itertools.product(*choices))
    return names


def _split_top_level(nodelist: str) -> list[str]:
    """``nodelist`` cut at the commas outside brackets; no empty items allowed."""
    items: list[str] = []
    depth = 0
    current: list[str] = []
    for char in nodelist.strip():
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        if depth not in (0, 1):
            raise ValueError(f"unbalanced brackets in {nodelist!r}")
        if char == "," and depth == 0:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    if depth != 0 or any(not item.strip() for item in items):
        raise ValueError(f"malformed node list {nodelist!r}")
    return [item.strip() for item in items]


def _expand_ranges(ranges: str, nodelist: str) -> list[str]:
    """``"01-03,7"`` → 01 02 03 7."""
    numbers: list[str] = []
    for piece in ranges.split(","):
        low, dash, high = piece.strip().partition("-")
        if not _digits(low) or (dash and not _digits(high)):
            raise ValueError(f"bad range {piece!r} in {nodelist!r}")
        if not dash:
            numbers.append(low)
            continue
        if int(high) < int(low):
            raise ValueError(f"descending range {piece!r} in {nodelist!r}")
        numbers.extend(str(n).zfill(len(low)) for n in range(int(low), int(high) + 1))
    return numbers


def expand_cpus_per_node(text: str) -> list[int]:
    """SLURM's ``"2(x3),1"`` → [2, 2, 2, 1].  Raises ValueError on a malformed value."""
    counts: list[int] = []
    for entry in text.split(","):
        match = _CPUS_ENTRY.fullmatch(entry.strip())
        if match is None or int(match.group(1)) < 1 or match.group(2) == "0":
            raise ValueError(f"bad entry {entry!r} in {text!r}")
        counts.extend([int(match.group(1))] * int(match.group(2) or 1))
    return counts


def _slurm(environ: Mapping[str, str]) -> Allocation:
    job_id = _required(environ, "SLURM_JOB_ID", "SLURM_JOBID")
    nodelist = _required(environ, "SLURM_JOB_NODELIST", "SLURM_NODELIST")
    try:
        hosts = expand_nodelist(nodelist)
    except ValueError as exc:
        raise _Unreadable("SLURM_JOB_NODELIST", str(exc)) from exc
    if environ.get("SLURM_JOB_CPUS_PER_NODE", "").strip():
        try:
            counts = expand_cpus_per_node(environ["SLURM_JOB_CPUS_PER_NODE"])
        except ValueError as exc:
            raise _Unreadable("SLURM_JOB_CPUS_PER_NODE", str(exc)) from exc
        if len(counts) != len(hosts):
            raise _Unreadable(
                "SLURM_JOB_CPUS_PER_NODE",
                f"{len(counts)} counts for the {len(hosts)} nodes of {nodelist!r}",
            )
    else:  # older or stripped-down environments: assume alike nodes
        cpus = _count("SLURM_CPUS_ON_NODE", _required(environ, "SLURM_CPUS_ON_NODE"))
        counts = [cpus] * len(hosts)
    return Allocation("slurm", _tally(list(zip(hosts, counts, strict=True))), job_id)


# -- PBS / Torque ------------------------------------------------------------------
def _pbs(environ: Mapping[str, str]) -> Allocation:
    path = _required(environ, "PBS_NODEFILE")
    # One line per slot, the host repeated.
    hosts = _tally([(line.split()[0], 1) for line in _read("PBS_NODEFILE", path)])
    return Allocation("pbs", hosts, environ.get("PBS_JOBID") or None, path)


# -- SGE -----------------------------------------------------------------------------
def _sge(environ: Mapping[str, str]) -> Allocation:
    path = _required(environ, "PE_HOSTFILE")
    pairs = []
    for line in _read("PE_HOSTFILE", path):
        fields = line.split()  # host slots queue processor-range
        if len(fields) < 2:
            raise _Unreadable("PE_HOSTFILE", f"{path}: expected 'host slots ...', got {line!r}")
        pairs.append((fields[0], _count("PE_HOSTFILE", fields[1])))
    return Allocation("sge", _tally(pairs), environ.get("JOB_ID") or None, path)


# -- LSF -----------------------------------------------------------------------------
def _lsf(environ: Mapping[str, str]) -> Allocation:
    words = _required(environ, "LSB_MCPU_HOSTS").split()  # "hostA 4 hostB 2"
    if len(words) % 2:
        raise _Unreadable("LSB_MCPU_HOSTS", f"expected 'host cores' pairs, got {words!r}")
    pairs = [
        (host, _count("LSB_MCPU_HOSTS", cores))
        for host, cores in zip(words[::2], words[1::2], strict=True)
    ]
    hostfile = environ.get("LSB_DJOB_HOSTFILE") or None
    return Allocation("lsf", _tally(pairs), environ.get("LSB_JOBID") or None, hostfile)


_REQUEST_CPUS = re.compile(r"^\s*RequestCpus\s*=\s*(\d+)\s*$", re.MULTILINE | re.IGNORECASE)


def _condor(environ: Mapping[str, str]) -> Allocation:
    """An HTCondor slot (a glide-in): one machine, the cores the job asked for."""
    path = _required(environ, "_CONDOR_JOB_AD")
    try:
        with open(path, encoding="utf-8", errors="replace") as ad:
            text = ad.read()
    except OSError as exc:
        raise _Unreadable("_CONDOR_JOB_AD", f"cannot read {path}: {exc.strerror}") from exc
    found = _REQUEST_CPUS.search(text)
    cores = int(found.group(1)) if found else len(os.sched_getaffinity(0))
    cluster = re.search(r"^\s*ClusterId\s*=\s*(\d+)", text, re.MULTILINE)
    return Allocation(
        "condor",
        ((socket.gethostname(), max(1, cores)),),
        cluster.group(1) if cluster else None,
    )


# -- the agent's slots -----------------------------------------------------------------
def pilot_slots(allocation: Allocation, requested: int | None, host: str) -> int:
    """How many slots an agent on ``host`` has; ``requested`` is the pilot's number_of_processes.

    Outside an allocation: ``requested``, else the local cores.  Inside one the
    allocation decides: all its cores for a single node or for SLURM (whose
    other nodes are reached through srun), else the cores of the agent's own
    node.  A smaller ``requested`` wins; a larger one is cut down, with a warning.
    """
    if allocation.kind == "none":
        return requested or allocation.cores
    if len(allocation.nodes) == 1 or allocation.kind == "slurm":
        available = allocation.cores
    else:
        available = allocation.cores_on(host)
    if requested is None or requested == available:
        return available
    if requested > available:
        job = f" (job {allocation.job_id})" if allocation.job_id else ""
        log.warning(
            "number_of_processes is %d but the %s allocation%s has %d cores for this agent;"
            " using %d slots",
            requested,
            allocation.kind,
            job,
            available,
            available,
        )
        return available
    return requested
