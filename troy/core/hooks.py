"""The process-wide pluggy manager for troy's observer hooks."""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import pluggy

from troy.core import hookspecs

log = logging.getLogger("troy.hooks")

hookimpl = pluggy.HookimplMarker("troy")

OBSERVER_GROUP = "troy.observers"

_lock = threading.Lock()
_manager: pluggy.PluginManager | None = None


def manager() -> pluggy.PluginManager:
    """The hook manager; observers from entry points are loaded on first use."""
    global _manager
    with _lock:
        if _manager is None:
            pm = pluggy.PluginManager("troy")
            pm.add_hookspecs(hookspecs)
            if os.environ.get("TROY_NO_PLUGIN_AUTOLOAD", "") not in ("1", "true", "yes"):
                pm.load_setuptools_entrypoints(OBSERVER_GROUP)
            _manager = pm
        return _manager


def register(observer: Any, name: str | None = None) -> None:
    """Register an observer; pluggy checks its hook signatures against the specs."""
    manager().register(observer, name)


def unregister(observer: Any) -> None:
    """Remove an observer registered earlier."""
    manager().unregister(observer)


def has_observers(hook_name: str) -> bool:
    """True if any observer implements ``hook_name`` (so callers can skip the work)."""
    return bool(getattr(manager().hook, hook_name).get_hookimpls())


def notify(hook_name: str, **kwargs: Any) -> None:
    """Call a hook on every observer; an observer's exception is logged, not raised."""
    try:
        getattr(manager().hook, hook_name)(**kwargs)
    except Exception:
        log.exception("observer of %s raised", hook_name)
