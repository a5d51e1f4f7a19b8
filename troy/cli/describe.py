"""``troy plugins --describe NAME``: one plugin's kind, origin, contract, abilities and options.

The same option tables, as Markdown, are in docs/plugins.md ("Options of the
built-in plugins"); a test compares them with `markdown_options`.
"""

from __future__ import annotations

import inspect
from typing import Any, TextIO

from troy.model.errors import NoSuchPlugin, TroyError
from troy.plugins import registry
from troy.plugins.backends.base import Backend
from troy.plugins.coordination.base import Coordination
from troy.plugins.launchers.base import Launcher
from troy.plugins.options import Option, accepts
from troy.plugins.schedulers.base import SEED, Scheduler
from troy.plugins.stores.base import Store

#: Each kind's contract (its plugins subclass it).
CONTRACTS: dict[str, type] = {
    "backend": Backend,
    "scheduler": Scheduler,
    "store": Store,
    "coordination": Coordination,
    "launcher": Launcher,
}
#: Where users give a kind's options (a store's ``in_url`` options: its URL's query).
PLACES: dict[str, str] = {
    "backend": "resource URL query",
    "scheduler": "scheduler_options",
    "store": "Pilot-Data description",
    "coordination": "coordination URL query",
    "launcher": "nowhere yet",
}


def find(query: str) -> list[tuple[str, str]]:
    """The (kind, name) of each installed plugin ``query`` names: ``NAME`` or ``KIND.NAME``
    (as ``troy plugins --check`` names them)."""
    kind, dot, name = query.partition(".")
    colon = dot and kind in registry.KINDS
    if not colon:
        kind, name = "", query
    kinds = [kind] if colon else list(registry.KINDS)
    found = [(each, name) for each in kinds if name in registry.installed_names(each)]
    if not found:
        if colon:
            raise NoSuchPlugin(registry.KINDS[kind], name, registry.installed_names(kind))
        raise TroyError(f"no plugin named {name!r} is installed (troy plugins lists them)")
    return found


def option_specs(kind: str, plugin: Any) -> dict[str, Option]:
    """Every option ``plugin`` takes, by name (a scheduler's ``seed`` first)."""
    specs: dict[str, Option] = dict(plugin.option_specs)
    if kind == "scheduler":
        specs = {"seed": SEED, **specs}
    return specs


def secret_mark(option: Option) -> str:
    """``"; secret"`` for an option whose value troy never shows nor records, else ""."""
    return "; secret: never shown or recorded" if option.secret else ""


def place(kind: str, option: Option) -> str:
    """Where a user gives ``option`` of a plugin of ``kind``."""
    return "service_url query" if kind == "store" and option.in_url else PLACES[kind]


def default_text(value: Any) -> str:
    """An option's default as --describe and the docs show it."""
    if value is None:
        return "none"
    if isinstance(value, float) and value.is_integer():
        return f"{value:g}"
    return repr(value) if isinstance(value, str) else str(value)


def summary(plugin: Any) -> str:
    """The first line of the plugin class's docstring ("" if it has none)."""
    lines = (inspect.getdoc(plugin) or "").strip().splitlines()
    return lines[0] if lines else ""


def describe(kind: str, name: str) -> list[str]:
    """The lines ``troy plugins --describe`` prints for plugin ``name`` of ``kind``."""
    plugin = registry.load(kind, name)
    info = next(info for info in registry.installed(kind) if info.name == name)
    contract = CONTRACTS[kind]
    version = getattr(plugin, "contract_version", None)
    lines = [f"{name}: {kind} plugin ({info.group})"]
    if summary(plugin):
        lines.append(f"  {summary(plugin)}")
    lines += [
        f"  distribution  {info.distribution} {info.version}",
        f"  class         {info.target}",
        f"  contract      {contract.__module__}.{contract.__qualname__}"
        + (f" (written for version {version})" if version is not None else ""),
        f"  capabilities  {', '.join(sorted(plugin.capabilities)) or 'none'}",
    ]
    schemes = getattr(plugin, "schemes", None)
    if schemes is not None:
        lines.append(f"  URL schemes   {', '.join(schemes) or 'none (chosen by name)'}")
    specs = option_specs(kind, plugin)
    if not specs:
        lines.append("  options       none")
        return lines
    lines.append("  options")
    for option, spec in specs.items():
        lines.append(
            f"    {option}  ({place(kind, spec)}; {accepts(spec)};"
            f" default {default_text(spec.default)}{secret_mark(spec)})"
        )
        lines.append(f"        {spec.help}")
    return lines


def markdown_options(kind: str, plugin: Any) -> list[str]:
    """``plugin``'s options as a Markdown table (docs/plugins.md), or a line: it takes none."""
    specs = option_specs(kind, plugin)
    if not specs:
        return ["Takes no options."]
    lines = ["| option | given in | accepts | default | meaning |", "|---|---|---|---|---|"]
    for option, spec in specs.items():
        lines.append(
            f"| `{option}` | {place(kind, spec)}{' (secret)' if spec.secret else ''} |"
            f" {accepts(spec)} |"
            f" {default_text(spec.default)} | {spec.help} |"
        )
    return lines


def print_description(query: str, out: TextIO) -> int:
    """Print what ``query`` names (each plugin of that name when no kind is given)."""
    blocks = [describe(kind, name) for kind, name in find(query)]
    print("\n\n".join("\n".join(block) for block in blocks), file=out)
    return 0
