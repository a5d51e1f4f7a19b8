"""The pages say what troy ships, and every ```python block in them is marked right.

Where a page enumerates troy's built-in plugins of a kind (a table, the headings of
a section, the sample output of ``troy plugins``), the names must be exactly those
troy registers as entry points in its pyproject.toml: a page that names a plugin troy
does not ship, or leaves one out, fails here with the page, the kind and the names.
The example plugin packages (examples/troy-demo, examples/troy-lpt) register their
own plugins; those count as theirs, never as troy's.  When a page gains a list, add
it to ``LISTS``.  A ``NoSuchPlugin`` message shown in a page ("...; installed: a, b")
must list every plugin troy ships of that group, and the version the pages name
("troy 0.1.0") must be troy's.

The ```python blocks run in tests/integration/test_doc_examples.py; here only their
markers are checked (see tests/doc_pages.py for the conventions).
"""

from __future__ import annotations

import importlib.metadata as metadata
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from doc_pages import (
    ARGUMENTS_FROM_ABOVE,
    MARKER,
    MARKERS,
    OUTPUT_VARIES,
    PAGES,
    ROOT,
    blocks,
    names,
    prose,
    relative,
    section,
    section_blocks,
    tables,
)

from troy.plugins.registry import KINDS

DOCS = ROOT / "docs"
GROUPS = tuple(KINDS.values())


def entry_points(pyproject: Path) -> dict[str, dict[str, str]]:
    """The entry points a pyproject.toml registers: group -> name -> target."""
    declared = tomllib.loads(pyproject.read_text())["project"].get("entry-points", {})
    return {group: dict(points) for group, points in declared.items()}


TROY = entry_points(ROOT / "pyproject.toml")
DEMO = entry_points(ROOT / "examples" / "troy-demo" / "pyproject.toml")
#: Distribution name -> its entry points, for every package whose plugins a page may show.
LPT = entry_points(ROOT / "examples" / "troy-lpt" / "pyproject.toml")
DISTRIBUTIONS = {"troy": TROY, "troy-demo": DEMO, "troy-lpt": LPT}
DECLARED_IN = {
    "troy": "pyproject.toml",
    "troy-demo": "examples/troy-demo/pyproject.toml",
    "troy-lpt": "examples/troy-lpt/pyproject.toml",
}
VERSION = metadata.version("troy")


@dataclass(frozen=True)
class Listing:
    """The plugins of one group that a page names in one place."""

    where: str  # e.g. "docs/scheduling.md, '## Built-in strategies' table"
    group: str
    names: tuple[str, ...]
    distribution: str = "troy"
    #: name -> target (module:Class), where the page shows it.
    targets: tuple[tuple[str, str], ...] = ()


def _column(table: list[list[str]], header: str) -> list[str]:
    index = table[0].index(header)
    return [row[index] for row in table[1:]]


def _table(page: Path, heading: str, header: str) -> list[list[str]]:
    """The first table under ``heading`` with a column headed ``header``."""
    for table in tables(section(page, heading)):
        if header in table[0]:
            return table
    raise AssertionError(f"{relative(page)}: no table with a column {header!r} under {heading!r}")


def table_by_group(page: Path, heading: str, group_header: str, names_header: str) -> list[Listing]:
    """A table with a row per entry-point group and a column of its built-ins."""
    table = _table(page, heading, group_header)
    where = f"{relative(page)}, the table under {heading!r}"
    rows = zip(_column(table, group_header), _column(table, names_header), strict=True)
    return [
        Listing(where, group.strip("`"), tuple(names(cell)))
        for group, cell in rows
        if group.strip("`") in GROUPS
    ]


def first_column(page: Path, heading: str, header: str, group: str) -> list[Listing]:
    """A table with a row per built-in of one group, its name in the first column."""
    table = _table(page, heading, header)
    where = f"{relative(page)}, the table under {heading!r}"
    return [Listing(where, group, tuple(n for row in table[1:] for n in names(row[0])))]


def header_row(page: Path, heading: str, group: str) -> list[Listing]:
    """A table with a column per built-in of one group, the first header cell empty."""
    table = _table(page, heading, "")
    where = f"{relative(page)}, the header of the table under {heading!r}"
    return [Listing(where, group, tuple(n for cell in table[0][1:] for n in names(cell)))]


def subheadings(page: Path, heading: str, group: str) -> list[Listing]:
    """A section with a subsection per built-in, titled with its name in backticks."""
    titles = [text for _, text in section(page, heading) if re.match(r"^#{2,6} `[^`]+`$", text)]
    where = f"{relative(page)}, the subheadings of {heading!r}"
    return [Listing(where, group, tuple(title.split("`")[1] for title in titles))]


#: name, health mark (troy plugins shows one per line), distribution, version, target.
PLUGINS_LINE = re.compile(
    r"^  (\S+)\s+(?:HEALTHY|BROKEN|DUPLICATE|SHADOWED|OUTDATED)\s+(\S+) (\S+)\s+(\S+:\S+)"
)


def troy_plugins_output(page: Path, heading: str) -> list[Listing]:
    """The sample output of ``troy plugins`` under a heading: a Listing per group and
    distribution, with the targets.  (The version shown for troy is checked with every
    other "troy X.Y.Z" in the pages.)"""
    [block] = [
        block
        for block in section_blocks(page, heading)
        if block.language == "console" and "$ troy plugins\n" in block.text
    ]
    where = f"{block.where}, the output of `troy plugins`"
    rows: dict[tuple[str, str], list[tuple[str, str]]] = {}
    group = None
    for line in block.text.split("$ troy plugins\n", 1)[1].splitlines():
        if line.startswith("$"):
            break
        if line.startswith("    "):
            continue  # the reason under a plugin that is not healthy
        if line.endswith(":") and not line.startswith(" "):
            group = line[:-1]
            for distribution in DISTRIBUTIONS:
                rows.setdefault((group, distribution), [])
            continue
        match = PLUGINS_LINE.match(line)
        assert group and match, f"{where}: cannot read the line {line!r}"
        name, distribution, _, target = match.groups()  # the version: see below
        rows.setdefault((group, distribution), []).append((name, target))
    shown = {distribution for (_, distribution), listed in rows.items() if listed}
    assert shown <= set(DISTRIBUTIONS), f"{where}: plugins of unknown {shown - set(DISTRIBUTIONS)}"
    return [
        Listing(where, group, tuple(n for n, _ in listed), distribution, tuple(listed))
        for (group, distribution), listed in rows.items()
        if listed or distribution in shown
    ]


def demo_readme() -> list[Listing]:
    """examples/troy-demo/README.md: a row per plugin the demo package registers."""
    page = ROOT / "examples" / "troy-demo" / "README.md"
    [table] = [table for table in tables(prose(page)) if table[0][:2] == ["group", "name"]]
    where = f"{relative(page)}, its table of plugins"
    listed: dict[str, list[str]] = {group: [] for group in DEMO}
    for row in table[1:]:
        listed.setdefault(row[0].strip("`"), []).extend(names(row[1]))
    return [Listing(where, group, tuple(n), "troy-demo") for group, n in listed.items()]


#: Every place in the pages that enumerates shipped plugins.
LISTS: dict[str, Callable[[], list[Listing]]] = {
    "plugins.md what troy ships": lambda: table_by_group(
        DOCS / "plugins.md", "What troy ships", "entry-point group", "built-ins"
    ),
    "architecture.md plugin kinds": lambda: table_by_group(
        DOCS / "architecture.md", "Plugin kinds", "entry-point group", "built-ins"
    ),
    "getting-started.md troy plugins": lambda: troy_plugins_output(
        DOCS / "getting-started.md", "`troy plugins`"
    ),
    "plugins.md demo troy plugins": lambda: troy_plugins_output(
        DOCS / "plugins.md", "A complete third-party package"
    ),
    "scheduling.md table": lambda: first_column(
        DOCS / "scheduling.md", "Built-in strategies", "name", "troy.schedulers"
    ),
    "scheduling.md headings": lambda: subheadings(
        DOCS / "scheduling.md", "Built-in strategies", "troy.schedulers"
    ),
    "backends.md table": lambda: first_column(
        DOCS / "backends.md", "Backends: where pilots run", "backend", "troy.backends"
    ),
    "coordination.md table": lambda: header_row(
        DOCS / "coordination.md", "When to choose which", "troy.coordination"
    ),
    "data.md stores": lambda: first_column(DOCS / "data.md", "Stores", "store", "troy.stores"),
    "plugins.md launchers": lambda: first_column(
        DOCS / "plugins.md", "Launcher (`troy.plugins.launchers.base`)", "name", "troy.launchers"
    ),
    "troy-demo README": demo_readme,
}


def _differences(listing: Listing) -> list[str]:
    registered = DISTRIBUTIONS[listing.distribution].get(listing.group, {})
    shipper = f"{listing.distribution} ({DECLARED_IN[listing.distribution]})"
    problems = []
    extra = [name for name in listing.names if name not in registered]
    missing = sorted(set(registered) - set(listing.names))
    twice = sorted({name for name in listing.names if listing.names.count(name) > 1})
    if extra:
        problems.append(f"names {', '.join(extra)}, which {shipper} does not register")
    if missing:
        problems.append(f"omits {', '.join(missing)}, which {shipper} registers")
    if twice:
        problems.append(f"names {', '.join(twice)} more than once")
    for name, target in listing.targets:
        if name in registered and registered[name] != target:
            problems.append(f"shows {name} as {target}, registered as {registered[name]}")
    return problems


def _of(listing: Listing) -> str:
    return "" if listing.distribution == "troy" else f" of {listing.distribution}"


@pytest.mark.parametrize("place", LISTS)
def test_the_pages_list_exactly_the_plugins_that_ship(place: str) -> None:
    listings = LISTS[place]()
    assert listings, f"{place}: found no list of plugins"
    problems = [
        f"{listing.where}: {listing.group}{_of(listing)}: {problem}"
        for listing in listings
        for problem in _differences(listing)
    ]
    assert not problems, "\n".join(problems)


NO_SUCH_PLUGIN = re.compile(
    r"no plugin '[^']*' in entry-point group '([a-z.]+)'.*; installed: ([\w, ]+)"
)


def test_sample_errors_list_what_is_installed() -> None:
    """A NoSuchPlugin message shown in a page lists every plugin troy ships of that
    group, and others only from the example packages."""
    problems = []
    for page in PAGES:
        for number, line in enumerate(page.read_text().splitlines(), 1):
            for group, listed in NO_SUCH_PLUGIN.findall(line):
                shown = [name.strip() for name in listed.split(",")]
                missing = sorted(set(TROY[group]) - set(shown))
                alien = [
                    name
                    for name in shown
                    if not any(name in points.get(group, {}) for points in DISTRIBUTIONS.values())
                ]
                if missing:
                    problems.append(
                        f"{relative(page)}:{number}: {group}: omits {', '.join(missing)}"
                    )
                if alien:
                    problems.append(
                        f"{relative(page)}:{number}: {group}: names {', '.join(alien)}, which "
                        "neither troy nor an example package registers"
                    )
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("place", ["plugins.md what troy ships", "architecture.md plugin kinds"])
def test_the_overviews_cover_every_kind(place: str) -> None:
    covered = {listing.group for listing in LISTS[place]()}
    assert covered == set(GROUPS), f"{place}: rows for {sorted(covered)}, kinds are {GROUPS}"


def test_troy_as_installed_registers_what_its_pyproject_declares() -> None:
    installed: dict[str, dict[str, str]] = {}
    for entry_point in metadata.distribution("troy").entry_points:
        if entry_point.group.startswith("troy."):
            installed.setdefault(entry_point.group, {})[entry_point.name] = entry_point.value
    declared = {group: points for group, points in TROY.items() if group.startswith("troy.")}
    assert installed == declared, "the installed troy is out of date: pip install -e ."


def test_the_pages_name_the_version_of_troy_they_describe() -> None:
    stale = [
        f"{relative(page)}:{number}: troy {version}"
        for page in PAGES
        for number, line in enumerate(page.read_text().splitlines(), 1)
        for version in re.findall(r"\btroy (\d+\.\d+\.\d+)\b", line)
        if version != VERSION
    ]
    assert not stale, f"troy is {VERSION}; these pages say otherwise:\n" + "\n".join(stale)


def test_every_python_block_runs_or_says_why_not() -> None:
    problems = []
    for page in PAGES:
        lines = page.read_text().splitlines()
        python = []
        for block in blocks(page):
            if block.language == "python":
                python.append(block)
            if block.marker is None:
                comment = lines[block.line - 2] if block.line > 1 else ""
                if comment.startswith("<!--"):
                    problems.append(f"{block.where}: cannot read the marker {comment!r}")
                continue
            name, value = block.marker
            if block.language == "console" and name == OUTPUT_VARIES and value:
                continue
            if block.language != "python":
                problems.append(f"{block.where}: a marker {name!r} on a {block.language} block")
            elif name not in MARKERS:
                problems.append(f"{block.where}: unknown marker {name!r} (known: {MARKERS})")
            elif not value:
                problems.append(f"{block.where}: the marker {name!r} needs its reason or value")
            elif name == "arguments" and (
                value != ARGUMENTS_FROM_ABOVE or len(python) < 2 or python[-2].marker
            ):
                problems.append(
                    f"{block.where}: 'arguments: {ARGUMENTS_FROM_ABOVE}' needs a python block "
                    "above it that runs"
                )
        for number, line in enumerate(lines, 1):
            if MARKER.match(line) and not any(b.line == number + 1 for b in blocks(page)):
                problems.append(f"{relative(page)}:{number}: a marker not right above a fence")
    assert not problems, "\n".join(problems)
