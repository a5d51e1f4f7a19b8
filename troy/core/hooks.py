"""The process-wide pluggy manager for troy's observer hooks."""

from __future__ import annotations

import importlib.metadata as metadata
import logging
import os
import threading
from typing import Any

import pluggy

from troy.core import hookspecs
from troy.model.errors import BadPlugin

log = logging.getLogger("troy.hooks")

hookimpl = pluggy.HookimplMarker("troy")

OBSERVER_GROUP = "troy.observers"

_lock = threading.Lock()
_manager: pluggy.PluginManager | None = None


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    """Register every observer of the entry-point group; a broken one is logged and skipped.

    An observer must never be able to stop troy: a failed import would otherwise
    leave callbacks and waits without their notifications.
    """
    for entry_point in metadata.entry_points(group=OBSERVER_GROUP):
        dist = entry_point.dist
        where = f"observer '{entry_point.name} = {entry_point.value}'" + (
            f" of {dist.metadata['Name']} {dist.version}" if dist is not None else ""
        )
        observer = None
        try:
            observer = entry_point.load()
            pm.register(observer, name=entry_point.name)
            pm.check_pending()
        except Exception as exc:
            if observer is not None and pm.is_registered(observer):
                pm.unregister(observer)  # or every later check would blame the next one
            log.error("%s is not used: %s: %s", where, type(exc).__name__, exc)


def manager() -> pluggy.PluginManager:
    """The hook manager; observers from entry points are loaded on first use."""
    global _manager
    with _lock:
        if _manager is None:
            pm = pluggy.PluginManager("troy")
            pm.add_hookspecs(hookspecs)
            if os.environ.get("TROY_NO_PLUGIN_AUTOLOAD", "") not in ("1", "true", "yes"):
                _load_entry_points(pm)
            _manager = pm
        return _manager


def register(observer: Any, name: str | None = None) -> None:
    """Register an observer; BadPlugin if a hook's name or signature fits no spec."""
    pm = manager()
    try:
        pm.register(observer, name)
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        if pm.is_registered(observer):
            pm.unregister(observer)
        raise BadPlugin(f"observer {observer!r} does not fit troy's hook specs: {exc}") from exc
    except ValueError as exc:  # already registered under that name
        raise BadPlugin(f"cannot register observer {observer!r}: {exc}") from exc


def unregister(observer: Any) -> None:
    """Remove an observer registered earlier."""
    manager().unregister(observer)


def has_observers(hook_name: str) -> bool:
    """True if any observer implements ``hook_name`` (so callers can skip the work)."""
    return bool(getattr(manager().hook, hook_name).get_hookimpls())


def notify(hook_name: str, **kwargs: Any) -> None:
    """Call a hook on every observer; one that raises is logged and the others still run."""
    for implementation in getattr(manager().hook, hook_name).get_hookimpls():
        try:
            implementation.function(*(kwargs[name] for name in implementation.argnames))
        except Exception:
            log.exception("observer %s of %s raised", implementation.plugin_name, hook_name)
