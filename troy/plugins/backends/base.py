"""The backend contract: get a pilot's agent running on a resource, and track it.

A backend is chosen by ``pj_type`` (its entry-point name or a PILOTJOB_TYPE)
or, when none is given, by the scheme of the resource URL (``schemes``).
It only starts, watches and stops the agent process; everything else (slots,
units, states of units) is the agent's job, through coordination.

A handle is a JSON-ready dict: it is stored in the pilot's record so that a
new process that reconnects to the service can still ask for the state of,
and cancel, a pilot that another process launched.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar

from troy.model.description import PilotJobDescription
from troy.model.states import State
from troy.plugins import options
from troy.plugins.options import Option

#: The version of this contract, MAJOR.MINOR; a plugin says which it was written for in
#: ``contract_version``.  A new MAJOR breaks older plugins; a new MINOR only adds, with defaults.
CONTRACT_VERSION = "1.1"
#: What each version changed (the registry quotes it when a plugin's version does not fit).
CONTRACT_CHANGES: dict[str, str] = {
    "1.0": "versioned from here on: launch, state, cancel; check and late_binding with defaults",
    "1.1": "option_specs and check_options: the options a backend takes in its resource URL's "
    "query are declared (default: none; an undeclared one is refused)",
}


@dataclass(frozen=True)
class PilotLaunch:
    """Everything a backend needs to start one pilot's agent."""

    pilot_id: str
    rm: str
    description: PilotJobDescription
    #: Where the agent runs and makes unit sandboxes (absolute, already resolved).
    working_directory: str
    #: argv that starts the agent; run it as is, in ``working_directory``.
    agent_command: list[str]
    #: Extra environment for the agent process.
    environment: dict[str, str] = field(default_factory=dict)


class Backend(ABC):
    """Launches agents on one kind of resource."""

    #: Entry-point name; also what ``pj_type`` names.
    name: ClassVar[str]
    #: URL schemes this backend is chosen for when no pj_type is given.
    schemes: ClassVar[tuple[str, ...]] = ()
    #: What it can do, e.g. {"mpi"}; conformance tests that need a capability skip without it.
    capabilities: ClassVar[frozenset[str]] = frozenset()
    #: The contract version it was written for (MAJOR.MINOR).
    contract_version: ClassVar[str] = CONTRACT_VERSION
    #: Late binding: its pilots' agents pull units, one per free slot, from a queue all
    #: such pilots of a pilot-job service share, instead of each holding its own queue.
    late_binding: ClassVar[bool] = False
    #: The options it takes in the resource URL's query (``?schedd=ap1``): name -> Option.
    option_specs: ClassVar[Mapping[str, Option]] = MappingProxyType({})

    @classmethod
    def check_options(cls, given: Mapping[str, Any]) -> dict[str, Any]:
        """The resource URL's options as used, defaults filled in; BadDescription names a wrong one.

        troy calls it with `troy.plugins.options.url_options` of the URL before it
        makes the backend, so a refused pilot leaves no trace.
        """
        return options.check_options("backend", cls.name, cls.option_specs, given, "resource URL ?")

    def __init__(self, rm: str, context: Any = None) -> None:
        self.rm = rm
        self.context = context

    def check(self, description: PilotJobDescription) -> None:
        """Refuse a description this resource cannot run (raise BackendError), before launch.

        Called before anything about the pilot is recorded; the default accepts all.
        """
        return None

    @abstractmethod
    def launch(self, launch: PilotLaunch) -> dict[str, Any]:
        """Start the agent; return a JSON-ready handle. Raise BackendError on failure."""

    @abstractmethod
    def state(self, handle: dict[str, Any]) -> tuple[State, str]:
        """The agent job's state as the resource sees it, and a detail.

        Pending while queued, Running while the agent process lives, and a final
        state once it has gone.  The agent reports its own end before it exits;
        a final state here is recorded only when that report is missing, so it
        says why the agent went: Failed with the reason (e.g. the agent's
        stderr) when it died, Done when the resource ended the job at its wall
        time, Canceled when the resource canceled it.  Unknown when this
        process cannot see the job (the agent's reports then tell its state).
        """

    @abstractmethod
    def cancel(self, handle: dict[str, Any]) -> None:
        """Stop the agent and every unit process it started; idempotent."""
