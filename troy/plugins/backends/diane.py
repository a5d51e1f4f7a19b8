"""The `diane` backend: DIANE's master/worker model, with late binding.

In DIANE a master holds the task queue; workers, started anywhere as jobs,
register with it and each pulls its next task when it is free. A slow worker
therefore takes fewer tasks, and no worker holds a queue of work it may never
get to; the task of a lost worker is given to another.

In troy the master's queue is a coordination queue that every diane pilot of
one PilotJobService shares (``tasks/<pjs-id>``): the unit manager puts units
placed on any of them there, whichever the scheduler picked. A diane pilot is
one worker process with ``number_of_processes`` slots (1 for DIANE's classic
one-task worker); its agent claims one unit per free slot and never more
(``pull`` in the pilot record). Workers are started through the ``local``
backend for ``fork://``/``local://`` URLs and through ``saga`` otherwise
(``ssh://``, ``slurm://``, ...), so they run wherever those backends reach.
A worker that dies is noticed as any pilot is (its process gone, or its
heartbeat silent); the units it was running run again elsewhere
(troy.model.retry), and the units still queued were never its own.

Chosen by pj_type only ("diane", PILOTJOB_TYPE.DIANE): its URLs are the
other backends'.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import urlsplit

from troy.model.description import PilotJobDescription
from troy.model.states import State
from troy.plugins.backends.base import Backend, PilotLaunch

#: Schemes whose workers start as local processes; every other goes through saga.
_LOCAL_SCHEMES = ("fork", "local")


def worker_backend_name(rm: str) -> str:
    """The backend that starts a diane worker for resource URL ``rm``."""
    return "local" if urlsplit(rm).scheme.lower() in _LOCAL_SCHEMES else "saga"


def _worker_backend_class(name: str) -> type[Backend]:
    # Its siblings, imported when needed (saga's radical.saga is an optional extra).
    if name == "local":
        from troy.plugins.backends.local import LocalBackend

        return LocalBackend
    from troy.plugins.backends.saga import SagaBackend

    return SagaBackend


class DianeBackend(Backend):
    """Starts a pull-mode worker through the local or saga backend."""

    name: ClassVar[str] = "diane"
    schemes: ClassVar[tuple[str, ...]] = ()
    late_binding: ClassVar[bool] = True

    def __init__(self, rm: str, context: Any = None) -> None:
        super().__init__(rm, context)
        self.worker_backend = worker_backend_name(rm)
        self.inner: Backend = _worker_backend_class(self.worker_backend)(rm, context)

    def check(self, description: PilotJobDescription) -> None:
        self.inner.check(description)

    def launch(self, launch: PilotLaunch) -> dict[str, Any]:
        return {"worker_backend": self.worker_backend, "worker": self.inner.launch(launch)}

    def state(self, handle: dict[str, Any]) -> tuple[State, str]:
        return self.inner.state(handle["worker"])

    def cancel(self, handle: dict[str, Any]) -> None:
        self.inner.cancel(handle["worker"])
