"""The troy observer hooks (pluggy): the documented contract for 1:N observers.

Observers are plain objects or modules with functions named like the specs
below, marked with ``troy.core.hooks.hookimpl``.  They are found through the
``troy.observers`` entry-point group (set ``TROY_NO_PLUGIN_AUTOLOAD=1`` to
turn that off) or registered with ``troy.core.hooks.register(obj)``.

Hooks are called from the manager's monitor thread, after the state change is
recorded and after the object's own callbacks ran.  They must return quickly
and must not raise (an exception is logged and otherwise ignored).
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("troy")


@hookspec
def troy_unit_state_changed(
    service_id: str, unit_id: str, state: str, detail: str, timestamp: float
) -> None:
    """A work unit of service ``service_id`` entered ``state`` at ``timestamp`` (epoch s).

    ``detail`` is the state_detail that came with it (may be empty).
    Called once per transition, in the order of transitions of that unit.
    """


@hookspec
def troy_pilot_state_changed(
    service_id: str, pilot_id: str, state: str, detail: str, timestamp: float
) -> None:
    """A pilot of pilot-job service ``service_id`` entered ``state`` at ``timestamp``."""
