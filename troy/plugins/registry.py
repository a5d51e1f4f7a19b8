"""The one plugin registry: entry points, loaded through stevedore.

Built-ins register through the same entry points as third-party packages.
Loading checks a plugin against its kind's contract and fails loudly, naming
the entry point and the distribution that ships it.
"""

from __future__ import annotations

import importlib.metadata as metadata
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar
from urllib.parse import urlsplit

from troy.model.errors import BadPlugin, NoSuchPlugin, TroyError
from troy.plugins.backends.base import Backend
from troy.plugins.coordination.base import Coordination
from troy.plugins.launchers.base import Launcher
from troy.plugins.options import url_options
from troy.plugins.schedulers.base import Scheduler
from troy.plugins.stores.base import Store

KINDS: dict[str, str] = {
    "backend": "troy.backends",
    "scheduler": "troy.schedulers",
    "store": "troy.stores",
    "coordination": "troy.coordination",
    "launcher": "troy.launchers",
}
#: The contract (base class) each kind's plugins must subclass.
_CONTRACTS: dict[str, type] = {
    "backend": Backend,
    "scheduler": Scheduler,
    "store": Store,
    "coordination": Coordination,
    "launcher": Launcher,
}

T = TypeVar("T")


@dataclass(frozen=True)
class PluginInfo:
    """One installed plugin, as `troy plugins` lists it."""

    kind: str
    group: str
    name: str
    target: str
    distribution: str
    version: str


def _contract(kind: str) -> type:
    return _CONTRACTS[kind]


def _group(kind: str) -> str:
    try:
        return KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown plugin kind {kind!r}; kinds: {', '.join(KINDS)}") from None


def _entry_points(group: str) -> list[metadata.EntryPoint]:
    """The group's entry points, one per (name, distribution), sorted by name."""
    seen: dict[tuple[str, str], metadata.EntryPoint] = {}
    for entry_point in metadata.entry_points(group=group):
        seen.setdefault((entry_point.name, _distribution(entry_point)[0]), entry_point)
    return sorted(seen.values(), key=lambda ep: ep.name)


def _distribution(entry_point: metadata.EntryPoint) -> tuple[str, str]:
    dist = entry_point.dist
    if dist is None:  # stevedore's cached entry points do not carry their distribution
        for candidate in metadata.entry_points(group=entry_point.group):
            if (candidate.name, candidate.value) == (entry_point.name, entry_point.value):
                dist = candidate.dist
                break
    if dist is None:
        return "unknown", "unknown"
    return dist.metadata["Name"] or "unknown", dist.version


def installed(kind: str) -> list[PluginInfo]:
    """Every plugin of one kind that is installed, by name."""
    group = _group(kind)
    infos = []
    for ep in _entry_points(group):
        dist, version = _distribution(ep)
        infos.append(PluginInfo(kind, group, ep.name, ep.value, dist, version))
    return infos


def installed_names(kind: str) -> list[str]:
    """Names of the installed plugins of one kind."""
    return sorted({ep.name for ep in _entry_points(_group(kind))})


def _check(kind: str, entry_point: metadata.EntryPoint, plugin: Any) -> type:
    contract = _contract(kind)
    dist, version = _distribution(entry_point)
    where = f"entry point '{entry_point.name} = {entry_point.value}' of {dist} {version}"
    if not isinstance(plugin, type) or not issubclass(plugin, contract):
        raise BadPlugin(
            f"{where} in group '{entry_point.group}' is not a subclass of "
            f"{contract.__module__}.{contract.__name__}"
        )
    abstract = getattr(plugin, "__abstractmethods__", None)
    if abstract:
        missing = ", ".join(sorted(abstract))
        raise BadPlugin(f"{where} does not implement {missing}")
    if getattr(plugin, "name", None) != entry_point.name:
        raise BadPlugin(
            f"{where}: class attribute name={getattr(plugin, 'name', None)!r} "
            f"must equal the entry-point name"
        )
    return plugin


@cache
def load(kind: str, name: str) -> Any:
    """The plugin class registered as ``name`` for ``kind``; NoSuchPlugin or BadPlugin."""
    from stevedore import driver
    from stevedore.exception import MultipleMatches, NoMatches

    group = _group(kind)

    def fail(_manager: Any, entry_point: metadata.EntryPoint, error: BaseException) -> None:
        dist, version = _distribution(entry_point)
        raise BadPlugin(
            f"entry point '{entry_point.name} = {entry_point.value}' in group '{group}' "
            f"of {dist} {version} failed to load: {type(error).__name__}: {error}"
        ) from error

    try:
        manager: Any = driver.DriverManager(
            namespace=group, name=name, invoke_on_load=False, on_load_failure_callback=fail
        )
    except NoMatches:
        raise NoSuchPlugin(group, name, installed_names(kind)) from None
    except MultipleMatches:
        shippers = sorted(
            "{} {}".format(*_distribution(ep))
            for ep in metadata.entry_points(group=group)
            if ep.name == name
        )
        raise BadPlugin(
            f"plugin '{name}' in group '{group}' is registered by more than one distribution "
            f"({', '.join(shippers)}); uninstall all but one"
        ) from None
    entry_point = manager.extensions[0].entry_point
    return _check(kind, entry_point, manager.driver)


def refresh() -> None:
    """Forget what was loaded, so plugins installed since (e.g. by pip in this process) are seen."""
    from stevedore import ExtensionManager

    load.cache_clear()
    ExtensionManager.ENTRY_POINT_CACHE.clear()


def scheme_of(url: str) -> str:
    """The scheme of a URL ("fork" for "fork://localhost"); "file" for a plain path."""
    scheme = urlsplit(url).scheme.lower()
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
    """
    plugin = for_url("coordination", url)
    plugin.check_options(url_options(url))
    return plugin(url, serve=serve)


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
