"""An observer: counts unit state changes per state (entry point in troy.observers)."""

import threading
from collections import Counter

from troy.core.hooks import hookimpl

#: Unit state changes seen in this process, by state name.
seen: Counter[str] = Counter()
_lock = threading.Lock()  # each service calls hooks on its own monitor thread


@hookimpl
def troy_unit_state_changed(state: str) -> None:  # may take any subset of the spec's arguments
    with _lock:
        seen[state] += 1
