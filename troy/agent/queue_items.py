"""What the agent accepts from its queue: every claimed item is checked here before it runs.

Whoever can write the coordination can put anything into a pilot's queue: a
value that is not a JSON object, an item without an id, a description with a
NUL character, ``cores: 10**9``, a 10 MB argument.  `to_job` turns any value
into a `Job` or raises `BadQueueItem`, which says what was wrong and which
unit it was for, if that much can be read: the agent reports such a unit
Failed with the reason (so the manager's wait ends), drops an item without a
usable id or service with one warning, and goes on with the next item.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from troy.agent.slots import Job
from troy.model.cores import unit_core_range
from troy.model.description import WorkUnitDescription
from troy.model.errors import BadDescription, TroyError

#: Bytes of one queue item as JSON: far more than any real unit, far less than a memory hog.
#: (An argument list over the system's ARG_MAX, about 2 MB on Linux, cannot start anyway.)
MAX_ITEM_BYTES = 4 * 2**20
#: Earlier tries an item may carry (troy.model.retry allows a handful).
MAX_TRIES = 1_000
#: The highest attempt number an item may carry.
MAX_ATTEMPT = 10**6
#: Characters of a rejection's reason (it goes into the unit's state_detail).
MAX_REASON = 500
#: Unit and service ids: what troy makes, and what a coordination name may hold.
_ID = re.compile(r"[A-Za-z0-9._-]{1,200}")
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False, check_circular=False)


class BadQueueItem(TroyError, ValueError):
    """A claimed queue item the agent cannot run.

    ``unit_id`` and ``service`` are set when the item names them well enough to
    report the unit Failed; ``attempt`` is the item's attempt (0 if unreadable).
    """

    def __init__(
        self, reason: str, unit_id: str | None = None, service: str | None = None, attempt: int = 0
    ) -> None:
        self.reason = printable(reason)
        self.unit_id = unit_id
        self.service = service
        self.attempt = attempt
        about = f"queue item for unit {unit_id}" if unit_id else "queue item"
        super().__init__(f"{about}: {self.reason}")

    @property
    def reportable(self) -> bool:
        """True if the unit can be reported Failed (its id and service are usable)."""
        return self.unit_id is not None and self.service is not None


def to_job(item: Any) -> Job:
    """The job a claimed queue item stands for; BadQueueItem says why there is none.

    An item is ``{"id", "service", "d", "a"?, "t"?}`` (troy.model.protocol);
    ``d`` must be a valid work-unit description, as the manager would accept it.
    Other keys are ignored (a newer manager may add some).
    """
    if not isinstance(item, Mapping):
        raise BadQueueItem(f"expected a JSON object, got {_shown(item)}")
    unit_id = usable_id(item.get("id"))
    if unit_id is None:
        raise BadQueueItem(f"no usable 'id' (got {_shown(item.get('id'))})")
    service = usable_id(item.get("service"))
    attempt = item.get("a", 0)
    if type(attempt) is not int or not 0 <= attempt <= MAX_ATTEMPT:
        raise BadQueueItem(
            f"'a' must be an attempt number from 0 to {MAX_ATTEMPT}, got {_shown(attempt)}",
            unit_id,
            service,
        )
    if service is None:
        raise BadQueueItem(
            f"no usable 'service' (got {_shown(item.get('service'))})", unit_id, None, attempt
        )

    def bad(reason: str) -> BadQueueItem:
        return BadQueueItem(reason, unit_id, service, attempt)

    tries = item.get("t", [])
    if not isinstance(tries, list) or len(tries) > MAX_TRIES:
        raise bad(f"'t' must be a list of at most {MAX_TRIES} earlier tries, got {_shown(tries)}")
    if not all(isinstance(entry, dict) for entry in tries):
        raise bad("'t' must hold JSON objects (earlier tries)")
    values = item.get("d")
    if not isinstance(values, Mapping):
        raise bad(f"'d' must be a work-unit description (a JSON object), got {_shown(values)}")
    try:
        description = WorkUnitDescription(values)
        description.validate()
        fewest, most = unit_core_range(description.as_dict())
    except BadDescription as exc:
        field = exc.field if len(exc.field) <= 80 else f"{exc.field[:60]}..."
        raise bad(f"bad description: {field}: {exc.reason}") from None
    except RecursionError:
        raise bad("bad description: nested too deep") from None
    size = _size(item)
    if size is None:
        raise bad("not a JSON value (nested too deep, or a number JSON cannot hold)")
    if size > MAX_ITEM_BYTES:
        raise bad(f"{size} bytes, over the agent's limit of {MAX_ITEM_BYTES} bytes")
    return Job(unit_id, service, description.as_dict(), attempt, fewest, list(tries), most)


def unexpected(item: Any, error: Exception) -> BadQueueItem:
    """The rejection of an item whose check failed with ``error`` (a bug, not the item's fault)."""
    unit_id = service = None
    if isinstance(item, Mapping):
        unit_id, service = usable_id(item.get("id")), usable_id(item.get("service"))
    return BadQueueItem(f"agent error while checking it: {error!r}", unit_id, service)


def usable_id(value: Any) -> str | None:
    """``value`` if it is a usable unit or service id (what troy makes, a coordination name)."""
    return value if isinstance(value, str) and _ID.fullmatch(value) else None


def _size(item: Mapping[str, Any]) -> int | None:
    """Bytes of ``item`` as JSON; None if JSON cannot hold it."""
    try:
        return len(_ENCODER.encode(item))
    except (TypeError, ValueError, RecursionError):
        return None


def printable(text: str) -> str:
    """``text`` cut to MAX_REASON characters, with NUL and lone surrogates escaped."""
    text = text.encode("utf-8", "backslashreplace").decode().replace("\0", "\\x00")
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


def _shown(value: Any) -> str:
    """A short, printable picture of ``value`` for a reason (never the whole of a huge one)."""
    kind = type(value).__name__
    if isinstance(value, str | bytes | list | dict | tuple) and len(value) > 40:
        return f"a {kind} of length {len(value)}"
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an int too long to print, deep nesting
        return f"a {kind}"
    return f"{kind} {text[:80].encode('utf-8', 'backslashreplace').decode()}"
