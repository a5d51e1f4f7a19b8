"""The one plugin registry: entry points, read with importlib.metadata.

Built-ins register through the same entry points as third-party packages.
Loading checks a plugin against its kind's contract (`troy.plugins.contracts`)
and fails loudly, naming the entry point and the distribution that ships it.

Names troy ships are protected: another distribution registering one in the
same group is ignored, with a warning naming it, unless the user chooses it in
``TROY_PLUGIN_OVERRIDE`` (``name=distribution`` pairs, comma-separated).  Two
other distributions registering one name are an error when that name is used.
"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
import inspect
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from troy.model.errors import BadDescription, BadPlugin, NoSuchPlugin, TroyError
from troy.plugins.contracts import problems
from troy.plugins.options import url_options
from troy.plugins.schedulers.base import Scheduler

log = logging.getLogger("troy.plugins")

KINDS: dict[str, str] = {
    "backend": "troy.backends",
    "scheduler": "troy.schedulers",
    "store": "troy.stores",
    "coordination": "troy.coordination",
    "launcher": "troy.launchers",
}
#: Where a distribution declares the fixtures its plugins' conformance suites need:
#: entry point ``"<kind>.<name>" = "module:Class"``.
CONFORMANCE_GROUP = "troy.conformance"
#: The distribution whose plugins are built in, and the variable that lets another win.
TROY = "troy"
OVERRIDE_VARIABLE = "TROY_PLUGIN_OVERRIDE"

#: The marks of `troy plugins`; only HEALTHY plugins are used.
HEALTHY, BROKEN, DUPLICATE, SHADOWED, OUTDATED = (
    "HEALTHY", "BROKEN", "DUPLICATE", "SHADOWED", "OUTDATED"
)  # fmt: skip


@dataclass(frozen=True)
class PluginInfo:
    """One installed plugin, as `troy plugins` lists it."""

    kind: str
    group: str
    name: str
    target: str
    distribution: str
    version: str


@dataclass(frozen=True)
class PluginHealth:
    """One entry point and whether troy can use it: its mark, and why when it cannot."""

    info: PluginInfo
    mark: str
    reason: str = ""
    #: SHADOWED because the user chose another in TROY_PLUGIN_OVERRIDE.
    overridden: bool = False

    @property
    def ok(self) -> bool:
        """HEALTHY, or SHADOWED by the user's own choice: nothing to fix."""
        return self.mark == HEALTHY or (self.mark == SHADOWED and self.overridden)


class _Unfit(Exception):
    """An entry point troy cannot use: the reason and its mark (BROKEN or OUTDATED)."""

    def __init__(self, reason: str, mark: str = BROKEN) -> None:
        super().__init__(reason)
        self.reason = reason
        self.mark = mark


def _group(kind: str) -> str:
    try:
        return KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown plugin kind {kind!r}; kinds: {', '.join(KINDS)}") from None


def canonical(distribution: str) -> str:
    """A distribution name as pip compares them: ``Troy_RR2`` is ``troy-rr2``."""
    return re.sub(r"[-_.]+", "-", distribution).lower()


def _distribution(entry_point: metadata.EntryPoint) -> tuple[str, str]:
    dist = entry_point.dist
    if dist is None:
        return "unknown", "unknown"
    return dist.metadata["Name"] or "unknown", dist.version


def _entry_points(group: str) -> list[metadata.EntryPoint]:
    """The group's entry points, one per (name, distribution), by name, troy's first."""
    seen: dict[tuple[str, str], metadata.EntryPoint] = {}
    for entry_point in metadata.entry_points(group=group):
        seen.setdefault((entry_point.name, canonical(_distribution(entry_point)[0])), entry_point)
    return sorted(seen.values(), key=lambda ep: (ep.name, not _is_troy(ep), _shipper(ep)))


def _is_troy(entry_point: metadata.EntryPoint) -> bool:
    return canonical(_distribution(entry_point)[0]) == TROY


def _shipper(entry_point: metadata.EntryPoint) -> str:
    return "{} {}".format(*_distribution(entry_point))


def _where(entry_point: metadata.EntryPoint) -> str:
    return (
        f"entry point '{entry_point.name} = {entry_point.value}' in group "
        f"'{entry_point.group}' of {_shipper(entry_point)}"
    )


def overrides() -> dict[str, str]:
    """``TROY_PLUGIN_OVERRIDE`` as {plugin name: canonical distribution name}.

    BadPlugin for a pair that is not ``name=distribution``.
    """
    chosen: dict[str, str] = {}
    for pair in os.environ.get(OVERRIDE_VARIABLE, "").split(","):
        if not pair.strip():
            continue
        name, equals, distribution = (part.strip() for part in pair.partition("="))
        if not (equals and name and distribution):
            raise BadPlugin(
                f"{OVERRIDE_VARIABLE}: expected name=distribution pairs separated by commas "
                f"(e.g. round_robin=troy-rr2), got {pair.strip()!r}"
            )
        chosen[name] = canonical(distribution)
    return chosen


@dataclass(frozen=True)
class _Choice:
    """The registrations of one name in one group, and which of them troy uses."""

    name: str
    registered: tuple[metadata.EntryPoint, ...]
    #: The one used; None when several others compete (a duplicate) or none is there.
    chosen: metadata.EntryPoint | None
    #: Why ``chosen`` wins over the others: "troy" (a built-in) or "override".
    why: str = ""


def _choose(name: str, registered: list[metadata.EntryPoint], chosen: Mapping[str, str]) -> _Choice:
    wanted = chosen.get(name)
    if wanted is not None:
        for entry_point in registered:
            if canonical(_distribution(entry_point)[0]) == wanted:
                return _Choice(name, tuple(registered), entry_point, "override")
    built_in = [ep for ep in registered if _is_troy(ep)]
    if built_in and len(registered) > 1:
        return _Choice(name, tuple(registered), built_in[0], "troy")
    if len(registered) == 1:
        return _Choice(name, tuple(registered), registered[0])
    return _Choice(name, tuple(registered), None)


def _choices(kind: str) -> list[_Choice]:
    by_name: dict[str, list[metadata.EntryPoint]] = {}
    for entry_point in _entry_points(_group(kind)):
        by_name.setdefault(entry_point.name, []).append(entry_point)
    chosen = overrides()
    return [_choose(name, registered, chosen) for name, registered in by_name.items()]


def _info(kind: str, entry_point: metadata.EntryPoint) -> PluginInfo:
    dist, version = _distribution(entry_point)
    return PluginInfo(kind, entry_point.group, entry_point.name, entry_point.value, dist, version)


def installed(kind: str) -> list[PluginInfo]:
    """Every plugin of one kind that is installed, by name (all registrations, used or not)."""
    return [_info(kind, ep) for ep in _entry_points(_group(kind))]


def installed_names(kind: str) -> list[str]:
    """Names of the installed plugins of one kind."""
    return sorted({ep.name for ep in _entry_points(_group(kind))})


def _load_checked(kind: str, entry_point: metadata.EntryPoint) -> type:
    """The entry point's class, checked against the contract; _Unfit says why not."""
    try:
        plugin = entry_point.load()
    except Exception as exc:
        raise _Unfit(f"failed to load: {type(exc).__name__}: {exc}") from exc
    found = problems(kind, plugin, entry_point.name)
    if found:
        outdated = [p for p in found if p.outdated]
        ordered = outdated + [p for p in found if not p.outdated]
        raise _Unfit("; ".join(p.text for p in ordered), OUTDATED if outdated else BROKEN)
    loaded: type = plugin
    return loaded


def _shadowed_reason(choice: _Choice, entry_point: metadata.EntryPoint) -> str:
    assert choice.chosen is not None
    if choice.why == "override":
        return f"{OVERRIDE_VARIABLE} chooses {_shipper(choice.chosen)}'s '{choice.name}'"
    dist = _distribution(entry_point)[0]
    return (
        f"troy ships '{choice.name}', so this one is ignored; "
        f"{OVERRIDE_VARIABLE}={choice.name}={dist} would use it instead"
    )


def _duplicate_reason(choice: _Choice, entry_point: metadata.EntryPoint) -> str:
    others = ", ".join(_shipper(ep) for ep in choice.registered if ep is not entry_point)
    dist = _distribution(entry_point)[0]
    return (
        f"'{choice.name}' is also registered by {others}; uninstall all but one, or choose "
        f"with {OVERRIDE_VARIABLE}={choice.name}={dist}"
    )


@cache
def load(kind: str, name: str) -> Any:
    """The plugin class registered as ``name`` for ``kind``; NoSuchPlugin or BadPlugin."""
    group = _group(kind)
    choice = next((c for c in _choices(kind) if c.name == name), None)
    if choice is None:
        raise NoSuchPlugin(group, name, installed_names(kind))
    if choice.chosen is None:
        shippers = ", ".join(_shipper(ep) for ep in choice.registered)
        raise BadPlugin(
            f"plugin '{name}' in group '{group}' is registered by more than one distribution "
            f"({shippers}); uninstall all but one, or choose one with "
            f"{OVERRIDE_VARIABLE}={name}=<distribution>"
        )
    for entry_point in choice.registered:
        if entry_point is not choice.chosen:
            log.warning(
                "%s is not used: %s", _where(entry_point), _shadowed_reason(choice, entry_point)
            )
    try:
        return _load_checked(kind, choice.chosen)
    except _Unfit as unfit:
        raise BadPlugin(f"{_where(choice.chosen)} {unfit.reason}") from unfit.__cause__


def health(kind: str) -> list[PluginHealth]:
    """Every registration of one kind, marked: used and fit (HEALTHY), or why not.

    Only the registration troy would use is loaded; a SHADOWED or DUPLICATE one is not.
    """
    marked = []
    for choice in _choices(kind):
        for entry_point in choice.registered:
            info = _info(kind, entry_point)
            if choice.chosen is None:
                marked.append(PluginHealth(info, DUPLICATE, _duplicate_reason(choice, entry_point)))
            elif entry_point is not choice.chosen:
                reason = _shadowed_reason(choice, entry_point)
                overridden = choice.why == "override"
                marked.append(PluginHealth(info, SHADOWED, reason, overridden))
            else:
                try:
                    _load_checked(kind, entry_point)
                except _Unfit as unfit:
                    marked.append(PluginHealth(info, unfit.mark, unfit.reason))
                else:
                    marked.append(PluginHealth(info, HEALTHY))
    return marked


def used(kind: str, name: str) -> PluginInfo:
    """The registration of ``name`` troy uses (loaded and checked); NoSuchPlugin or BadPlugin."""
    load(kind, name)
    choice = next(c for c in _choices(kind) if c.name == name)
    assert choice.chosen is not None  # load() raised otherwise
    return _info(kind, choice.chosen)


def conformance_fixtures(kind: str, name: str) -> type | None:
    """The class the distribution of plugin ``name`` declares for its conformance suite.

    The entry point ``"<kind>.<name>"`` in ``troy.conformance`` of the distribution
    whose plugin troy uses; None if it declares none.  BadPlugin if it fails to load.
    """
    shipper = canonical(used(kind, name).distribution)
    for entry_point in metadata.entry_points(group=CONFORMANCE_GROUP):
        if entry_point.name != f"{kind}.{name}":
            continue
        if canonical(_distribution(entry_point)[0]) != shipper:
            continue
        try:
            fixtures = entry_point.load()
        except Exception as exc:
            raise BadPlugin(
                f"{_where(entry_point)} failed to load: {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(fixtures, type):
            raise BadPlugin(f"{_where(entry_point)} is not a class")
        return fixtures
    return None


def refresh() -> None:
    """Forget what was loaded, so plugins installed since (e.g. by pip in this process) are seen."""
    load.cache_clear()
    importlib.invalidate_caches()


def scheme_of(url: str) -> str:
    """The scheme of a URL ("fork" for "fork://localhost"); "file" for a plain path.

    A URL whose scheme a URL cannot have (``my_store://...``: '_' is not allowed)
    is a BadDescription, not a plain path served by the file plugins.
    """
    scheme = urlsplit(url).scheme.lower()
    if not scheme:
        written = re.match(r"^([^/:?#]+)://", url)
        if written:
            raise BadDescription(
                "url",
                f"{url!r}: '{written.group(1)}' cannot be a URL scheme (letters, digits,"
                " '+', '-' and '.' only, starting with a letter)",
            )
    return scheme or "file"


def for_url(kind: str, url: str) -> Any:
    """The plugin class of ``kind`` that serves the URL's scheme."""
    scheme = scheme_of(url)
    names = installed_names(kind)
    if scheme in names:
        plugin = load(kind, scheme)
        if not plugin.schemes or scheme in plugin.schemes:
            return plugin
    for name in names:
        try:
            plugin = load(kind, name)
        except BadPlugin:
            continue  # a broken plugin must not hide the working ones; load() by name reports it
        if scheme in plugin.schemes:
            return plugin
    raise NoSuchPlugin(
        _group(kind), scheme, names, why=f"no {kind} plugin serves URL scheme '{scheme}' of {url}"
    )


def open_coordination(url: str, serve: bool = False) -> Any:
    """A connected coordination plugin for ``url`` (``serve``: see Coordination.__init__).

    The URL's query is checked against the plugin's options before it connects.
    A plugin that fails with anything but a troy error (a bug in it) is a
    BadPlugin naming it, not a traceback.
    """
    plugin = for_url("coordination", url)
    plugin.check_options(url_options(url))
    try:
        return plugin(url, serve=serve)
    except TroyError:
        raise
    except Exception as exc:
        raise BadPlugin(
            f"coordination '{plugin.name}' ({plugin.__module__}.{plugin.__qualname__}) failed to"
            f" open {url}: {type(exc).__name__}: {exc}"
        ) from exc


def make_scheduler(
    name: str,
    options: Mapping[str, Any] | None = None,
    seed: int | None = None,
    clock: Callable[[], float] | None = None,
) -> Scheduler:
    """The installed scheduler plugin ``name``, made with ``options``.

    The plugin checks the options first (BadDescription names a wrong one);
    ``seed``, if given, wins over ``options["seed"]``.  ``clock`` is passed only
    to a constructor that takes ``clock`` (e.g. ``backfill``; a simulation gives
    its virtual clock).  NoSuchPlugin for an unknown name; BadPlugin, naming the
    class, when its constructor fails.
    """
    plugin: type[Scheduler] = load("scheduler", name)
    given = dict(options or {})
    plugin.check_options(given)
    own = {key: value for key, value in given.items() if key != "seed"}
    if clock is not None and "clock" in inspect.signature(plugin).parameters:
        own["clock"] = clock
    chosen = seed if seed is not None else given.get("seed")
    try:
        # Nothing to pass: call it bare, as a plugin written for contract 1 expects.
        scheduler: Scheduler = plugin(chosen, **own) if (own or chosen is not None) else plugin()
    except TroyError:
        raise
    except Exception as exc:
        raise BadPlugin(
            f"scheduler '{name}' ({plugin.__module__}.{plugin.__qualname__}) failed to start: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    return scheduler
