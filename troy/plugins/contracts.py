"""A plugin class against its kind's contract: what loading refuses and `troy plugins` marks.

Each contract (``troy.plugins.<kind>.base``) has a version "MAJOR.MINOR"
(``CONTRACT_VERSION``) and a changelog (``CONTRACT_CHANGES``).  A plugin says
which version it was written for in its class attribute ``contract_version``
(default: the current one).  A new MAJOR breaks plugins written for an older
one; a new MINOR only adds, with defaults, so a plugin written for an older
MINOR of the same MAJOR keeps working.  A plugin written for a newer contract
than this troy has needs a newer troy.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from troy.plugins.backends import base as backends
from troy.plugins.coordination import base as coordination
from troy.plugins.launchers import base as launchers
from troy.plugins.schedulers import base as schedulers
from troy.plugins.stores import base as stores


@dataclass(frozen=True)
class Contract:
    """One kind's contract: its base class, version, changelog and known capabilities."""

    kind: str
    base: type
    version: str
    changes: Mapping[str, str]
    #: Capabilities troy knows for this kind: name -> what declaring it promises.
    capabilities: Mapping[str, str]
    #: Methods troy may call without their optional arguments: a plugin's may leave them out.
    optional_arguments: frozenset[str] = frozenset()


CONTRACTS: dict[str, Contract] = {
    "backend": Contract(
        "backend",
        backends.Backend,
        backends.CONTRACT_VERSION,
        backends.CONTRACT_CHANGES,
        {"mpi": "its pilots can start MPI units (spmd_variation 'mpi')"},
    ),
    "scheduler": Contract(
        "scheduler",
        schedulers.Scheduler,
        schedulers.CONTRACT_VERSION,
        schedulers.CONTRACT_CHANGES,
        {
            "affinity": "honours affinity labels: a unit goes only to pilots whose labels match",
            "packing": "fills pilots one after another on purpose",
            "rebalance": "is also offered units queued and not started, and may move them",
            "reserves": "keeps room free on purpose for a unit that came earlier (backfilling)",
        },
        # Without a seed or options the manager makes a scheduler bare, as contract 1 did.
        frozenset({"__init__"}),
    ),
    "store": Contract(
        "store",
        stores.Store,
        stores.CONTRACT_VERSION,
        stores.CONTRACT_CHANGES,
        {"glob": "get filters by glob patterns"},
    ),
    "coordination": Contract(
        "coordination",
        coordination.Coordination,
        coordination.CONTRACT_VERSION,
        coordination.CONTRACT_CHANGES,
        {"multiprocess": "connections from other processes (or hosts) share one state"},
    ),
    "launcher": Contract(
        "launcher",
        launchers.Launcher,
        launchers.CONTRACT_VERSION,
        launchers.CONTRACT_CHANGES,
        {"mpi": "starts the ranks of MPI units"},
    ),
}


@dataclass(frozen=True)
class Problem:
    """One way a plugin class does not fit its contract; ``outdated``: a version mismatch."""

    text: str
    outdated: bool = False


def parse_version(value: object) -> tuple[int, int]:
    """``"2.1"`` as (2, 1); an int (``2``, as schedulers declared it before 2.0) as (2, 0).

    ValueError for anything else.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value, 0
    if isinstance(value, str):
        parts = value.split(".")
        if len(parts) == 2 and all(part.isdigit() for part in parts):
            return int(parts[0]), int(parts[1])
    raise ValueError(f"contract_version must be 'MAJOR.MINOR' (e.g. '2.0'), not {value!r}")


def version_problem(kind: str, declared: object) -> Problem | None:
    """Why a plugin written for contract ``declared`` cannot be used by this troy, or None."""
    contract = CONTRACTS[kind]
    try:
        major, minor = parse_version(declared)
    except ValueError as exc:
        return Problem(str(exc))
    current = parse_version(contract.version)
    if major == current[0] and minor <= current[1]:
        return None
    written = f"was written for {kind} contract {major}.{minor}; this troy has {contract.version}"
    if (major, minor) > current:
        return Problem(f"{written}: it needs a newer troy", outdated=True)
    changed = [
        f"{version}: {what}"
        for version, what in sorted(contract.changes.items(), key=lambda i: parse_version(i[0]))
        if parse_version(version) > (major, minor)
    ]
    return Problem(f"{written} ({'; '.join(changed)})", outdated=True)


def problems(kind: str, plugin: Any, name: str) -> list[Problem]:
    """Every way ``plugin`` (registered as ``name``) does not fit the ``kind`` contract."""
    contract = CONTRACTS[kind]
    base = contract.base
    if not isinstance(plugin, type) or not issubclass(plugin, base):
        return [Problem(f"is not a subclass of {base.__module__}.{base.__name__}")]
    found: list[Problem] = []
    version = version_problem(kind, getattr(plugin, "contract_version", contract.version))
    if version is not None:
        found.append(version)
    abstract = sorted(getattr(plugin, "__abstractmethods__", ()))
    if abstract:
        found.append(Problem(f"does not implement {', '.join(abstract)}"))
    declared = getattr(plugin, "name", None)
    if declared != name:
        found.append(
            Problem(f"has class attribute name={declared!r}; it must equal the entry-point name")
        )
    found.extend(Problem(text) for text in _signature_problems(contract, plugin))
    found.extend(Problem(text) for text in _capability_problems(contract, plugin))
    return found


def _capability_problems(contract: Contract, plugin: type) -> list[str]:
    declared: object = getattr(plugin, "capabilities", frozenset())
    if not isinstance(declared, frozenset | set) or not all(isinstance(c, str) for c in declared):
        return [f"capabilities must be a frozenset of strings, not {declared!r}"]
    unknown = sorted(set(declared) - set(contract.capabilities))
    if not unknown:
        return []
    known = ", ".join(sorted(contract.capabilities)) or "none"
    words = ", ".join(map(repr, unknown))
    return [
        f"declares capabilities troy does not know: {words} (known for a {contract.kind}: {known})"
    ]


_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _callable_of(owner: type, attribute: str) -> tuple[str, Callable[..., Any]] | None:
    """(how it is bound, the function) for a method of ``owner``; None if no method."""
    raw = inspect.getattr_static(owner, attribute)
    if isinstance(raw, classmethod):
        return "classmethod", raw.__func__
    if isinstance(raw, staticmethod):
        return "staticmethod", raw.__func__
    if inspect.isfunction(raw):
        return "method", raw
    return None


def _parameters(binding: str, function: Callable[..., Any]) -> list[inspect.Parameter]:
    """The parameters a caller passes: without ``self`` or ``cls``."""
    parameters = list(inspect.signature(function).parameters.values())
    return parameters if binding == "staticmethod" else parameters[1:]


def _signature_problems(contract: Contract, plugin: type) -> list[str]:
    base = contract.base
    found = []
    for attribute, value in vars(base).items():
        if attribute.startswith("_") and attribute != "__init__":
            continue
        wanted = _callable_of(base, attribute)
        if wanted is None or inspect.getattr_static(plugin, attribute) is value:
            continue  # not a method, or not overridden
        given = _callable_of(plugin, attribute)
        if given is None:
            found.append(f"{attribute} is not a method, as the contract's is")
            continue
        if wanted[0] == "classmethod" and given[0] != "classmethod":
            found.append(f"{attribute} must be a classmethod, as the contract's is")
            continue
        try:
            optional = attribute in contract.optional_arguments
            mismatch = _mismatch(_parameters(*wanted), _parameters(*given), optional)
        except (TypeError, ValueError):
            continue  # no signature to compare (a builtin)
        if mismatch:
            found.append(
                f"{attribute}{_plain(given[1])} does not fit the contract's "
                f"{attribute}{_plain(wanted[1])}: {mismatch}"
            )
    return found


def _plain(function: Callable[..., Any]) -> str:
    """The signature without annotations: ``(self, units, pilots)``."""
    signature = inspect.signature(function)
    parameters = [
        p.replace(annotation=inspect.Parameter.empty) for p in signature.parameters.values()
    ]
    return str(signature.replace(parameters=parameters, return_annotation=inspect.Signature.empty))


def _mismatch(
    wanted: list[inspect.Parameter], given: list[inspect.Parameter], optional: bool = False
) -> str:
    """Why a method taking ``given`` cannot be called as troy calls one taking ``wanted``.

    ``optional``: troy may leave out the optional arguments, so ``given`` need not take them.
    """
    kinds = {p.kind for p in given}
    any_positional = inspect.Parameter.VAR_POSITIONAL in kinds
    any_keyword = inspect.Parameter.VAR_KEYWORD in kinds
    if optional:
        wanted = [p for p in wanted if p.default is inspect.Parameter.empty]
    positional_wanted = [p for p in wanted if p.kind in _POSITIONAL]
    positional_given = [p for p in given if p.kind in _POSITIONAL]
    if len(positional_given) < len(positional_wanted) and not any_positional:
        missing = ", ".join(p.name for p in positional_wanted[len(positional_given) :])
        return f"it does not take {missing}"
    by_name = {p.name for p in given if p.kind is not inspect.Parameter.POSITIONAL_ONLY}
    for parameter in wanted:
        by_keyword = parameter.kind is inspect.Parameter.KEYWORD_ONLY or (
            parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
            and parameter.default is not inspect.Parameter.empty
        )
        if by_keyword and parameter.name not in by_name and not any_keyword:
            return f"it does not take the keyword argument {parameter.name}"
    wanted_names = {p.name for p in wanted}
    for index, parameter in enumerate(positional_given):
        if parameter.default is inspect.Parameter.empty and index >= len(positional_wanted):
            return f"it requires {parameter.name}, which troy does not pass"
    for parameter in given:
        if (
            parameter.kind is inspect.Parameter.KEYWORD_ONLY
            and parameter.default is inspect.Parameter.empty
            and parameter.name not in wanted_names
        ):
            return f"it requires {parameter.name}, which troy does not pass"
    return ""
