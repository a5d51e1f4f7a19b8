"""Callbacks on pilots and work units: the TROY `Callback` and its bookkeeping."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("troy.callbacks")

#: Members a callback can watch.
MEMBERS = ("state", "state_detail")

CallbackFunction = Callable[[Any, str, Any], Any]


class Callback:
    """Base class for callback objects; override `cb`.

    ``cb(obj, member, value)`` is called once per change of ``member`` on the
    watched pilot or unit, in the order the changes happened.  Return exactly
    False to remove the callback; any other value keeps it.
    """

    def cb(self, obj: Any, member: str, value: Any) -> Any:
        """Called on each change; the default does nothing and keeps the callback."""
        return True


class CallbackRegistry:
    """The callbacks set on one object, per member."""

    __slots__ = ("_by_member",)

    def __init__(self) -> None:
        self._by_member: dict[str, list[Callback | CallbackFunction]] = {}

    @staticmethod
    def check_member(member: str) -> str:
        from troy.model.errors import TroyError

        if member not in MEMBERS:
            raise TroyError(f"cannot watch member {member!r}; members: {', '.join(MEMBERS)}")
        return member

    def add(self, member: str, cb: Callback | CallbackFunction) -> None:
        self.check_member(member)
        if not isinstance(cb, Callback) and not callable(cb):
            from troy.model.errors import TroyError

            raise TroyError(f"callback for {member!r} must be a Callback or a callable")
        self._by_member.setdefault(member, []).append(cb)

    def remove(self, member: str) -> None:
        self.check_member(member)
        self._by_member.pop(member, None)

    def __bool__(self) -> bool:
        return any(self._by_member.values())

    def fire(self, obj: Any, member: str, value: Any) -> None:
        """Call every callback on ``member``; drop those that return exactly False."""
        callbacks = self._by_member.get(member)
        if not callbacks:
            return
        keep = []
        for callback in list(callbacks):
            function = callback.cb if isinstance(callback, Callback) else callback
            try:
                result = function(obj, member, value)
            except Exception:  # a broken callback must not stop the others or the monitor
                log.exception("callback %r on %s raised; it is kept", callback, member)
                result = None
            if result is not False:
                keep.append(callback)
        self._by_member[member] = keep
