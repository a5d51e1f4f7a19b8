"""What the agent accepts from its control stream: cancel and terminate requests, checked.

The control stream (``pilot/<id>/control``, troy.model.protocol) is written by
the manager, but whoever can write the coordination can append anything to it.
`control_request` turns any event into a request or None (not one this agent
acts on); a malformed request is logged and ignored, never an exception that
would stop the agent.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from troy.agent.queue_items import MAX_ATTEMPT, printable, usable_id

log = logging.getLogger("troy.agent")

#: Units one cancel request may name.
MAX_CANCEL = 1_000_000


@dataclass(frozen=True)
class Cancel:
    """Cancel these units (running, waiting, or still to be claimed)."""

    units: frozenset[str]


@dataclass(frozen=True)
class Terminate:
    """End the pilot if its attempt is ``attempt`` or later; ``lost``: the manager gave it up."""

    attempt: int
    reason: str
    lost: bool


def control_request(event: Any) -> Cancel | Terminate | None:
    """The request ``event`` makes; None for anything else (logged if it is a broken request)."""
    if not isinstance(event, Mapping):
        log.warning("ignored a control event that is not a JSON object: %.80r", event)
        return None
    kind = event.get("ev")
    if kind == "cancel":
        units = event.get("units")
        if (
            not isinstance(units, list)
            or len(units) > MAX_CANCEL
            or not all(isinstance(unit, str) for unit in units)
        ):
            log.warning("ignored a cancel request without a list of unit ids: %.120r", event)
            return None
        return Cancel(frozenset(unit for unit in units if usable_id(unit)))
    if kind == "terminate":
        attempt = event.get("a", 0)
        reason = event.get("reason") or "pilot canceled"
        if (
            type(attempt) is not int
            or not 0 <= attempt <= MAX_ATTEMPT
            or not isinstance(reason, str)
        ):
            log.warning("ignored a malformed terminate request: %.120r", event)
            return None
        return Terminate(attempt, printable(reason), event.get("fate") == "lost")
    return None
