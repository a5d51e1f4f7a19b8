"""The troy error hierarchy: one root, one subclass per concern.

Every error a user can cause is a `TroyError`, so an application (or the
command line) can catch them all in one place and print the message, which
always names the field, file, plugin or object concerned.
"""

from __future__ import annotations

from collections.abc import Iterable


class TroyError(Exception):
    """Root of every error troy raises on purpose."""


class BadDescription(TroyError, ValueError):
    """A description field has a wrong type or an impossible value."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        #: The message without the field's name.
        self.reason = message
        super().__init__(f"{field}: {message}")


class UnknownAttribute(BadDescription, AttributeError):
    """A description was given an attribute it does not have (usually a typo)."""

    def __init__(self, kind: str, field: str, suggestion: str | None) -> None:
        self.suggestion = suggestion
        hint = f"; did you mean '{suggestion}'?" if suggestion else ""
        super().__init__(field, f"{kind} has no attribute '{field}'{hint}")


class NoSuchPlugin(TroyError, LookupError):
    """No plugin of that name (or for that URL scheme) is installed."""

    def __init__(self, group: str, name: str, installed: Iterable[str], why: str = "") -> None:
        self.group = group
        self.name = name
        self.installed = sorted(installed)
        listed = ", ".join(self.installed) or "none"
        reason = f" ({why})" if why else ""
        super().__init__(
            f"no plugin '{name}' in entry-point group '{group}'{reason}; installed: {listed}"
        )


class BadPlugin(TroyError):
    """A plugin was found but cannot be loaded or does not fit its contract."""


class NoSuchObject(TroyError, LookupError):
    """No service, pilot or unit with that id exists in the coordination store."""


class Timeout(TroyError, TimeoutError):
    """A wait ran out of time before the objects reached a final state."""


class BadBatchFile(TroyError):
    """A batch file for `troy run` is malformed; names the file, line and field."""

    def __init__(self, path: str, line: int | None, field: str | None, message: str) -> None:
        self.path = path
        self.line = line
        self.field = field
        where = path if line is None else f"{path}:{line}"
        what = f" {field}:" if field else ""
        super().__init__(f"{where}:{what} {message}")


class BadWorkload(BadBatchFile):
    """A workload file for `troy simulate` (or a trace it names) is malformed; as BadBatchFile."""


class BackendError(TroyError):
    """A backend could not launch, query or cancel a pilot."""


class CoordinationError(TroyError):
    """The coordination service is unreachable or refused an operation."""


class CoordinationRefused(CoordinationError):
    """The service refused this client, or its settings cannot work: retrying won't help.

    Wrong credentials or keys, a TLS mismatch, a password or certificate file
    that cannot be used.  Agents give up at once instead of waiting out an outage.
    """


class NoCoordination(CoordinationError, NoSuchObject):
    """There is no coordination at that address yet (only a manager makes one)."""


class SchedulerError(TroyError):
    """A scheduler broke its contract (e.g. placed a unit on an unknown pilot)."""


class StoreError(TroyError):
    """A Pilot-Data store could not put, get, list or delete data."""
