"""What the pilot, unit and data managers share: their service record and change delivery."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

from troy.core import hooks
from troy.core.tracked import Change
from troy.model import config, protocol
from troy.model.errors import NoSuchObject
from troy.model.states import State
from troy.plugins import data_records, registry


def absolute_url(url: str) -> str:
    """A coordination URL an agent in another directory can use (plain paths made absolute)."""
    if urlsplit(url).scheme:
        return url
    return Path(url).expanduser().absolute().as_uri()


class ServiceManager:
    """One service's record in coordination, opened new or reconnected by id.

    Subclasses name their kind of service; ``service_id=None`` makes a new
    service (its record written at once), an id reconnects to one that any
    process made with the same coordination URL (NoSuchObject if there is none
    of this kind).  `deliver` hands changes to callbacks and hooks.
    """

    #: The record's "kind", the id prefix, and how errors name the service.
    kind: ClassVar[str]
    id_prefix: ClassVar[str]
    noun: ClassVar[str]
    #: The observer hook told of state changes, and the keyword its object id goes in.
    state_hook: ClassVar[str | None] = None
    hook_id: ClassVar[str] = ""

    def __init__(
        self,
        service_id: str | None,
        coordination_url: str | None,
        record_fields: dict[str, Any] | None = None,
    ) -> None:
        self.coordination_url = absolute_url(coordination_url or config.default_coordination_url())
        self.coordination = registry.open_coordination(self.coordination_url, serve=True)
        data_records.remember_coordination_url(self.coordination_url)
        self.lock = threading.RLock()
        #: Notified whenever objects settle (their final state delivered).
        self.settled = threading.Condition(self.lock)
        self.record: dict[str, Any]
        if service_id is None:
            self.service_id = config.new_id(self.id_prefix)
            self.record = {
                "id": self.service_id,
                "kind": self.kind,
                "created": time.time(),
                **(record_fields or {}),
            }
            self.coordination.put_record(protocol.service_key(self.service_id), self.record)
        else:
            record = self.coordination.get_record(protocol.service_key(service_id))
            if record is None or record.get("kind") != self.kind:
                raise NoSuchObject(
                    f"no {self.noun} '{service_id}' in {self.coordination.public_url()}"
                )
            self.service_id = service_id
            self.record = record

    def deliver(self, changes: list[Change]) -> None:
        """Callbacks, then hooks, for each change in order; then wake whoever waits.

        An object settles when the final state it reached is delivered (a
        reinitialized pilot that is live again does not).
        """
        observed = self.state_hook is not None and hooks.has_observers(self.state_hook)
        settled = 0
        for obj, member, value, ts in changes:
            obj._fire(member, value)
            if member != "state":
                continue
            if observed:
                hooks.notify(
                    str(self.state_hook),
                    service_id=self.service_id,
                    **{self.hook_id: obj.id},
                    state=str(value),
                    detail=obj.state_detail,
                    timestamp=ts,
                )
            if State(value).is_final and obj.state.is_final and obj._settle():
                settled += 1
        if settled:
            with self.settled:
                self._settled(settled)
                self.settled.notify_all()

    def _settled(self, count: int) -> None:
        """Called (under the lock) with how many objects one delivery settled."""

    def close(self) -> None:
        """Stop using the coordination connection."""
        self.coordination.close()
