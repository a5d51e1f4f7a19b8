"""``troy plugins``: installed plugins, marked; ``--check`` gates on them, ``--suite`` tests one.

Every line is marked HEALTHY (troy uses it), BROKEN (it does not load or does
not fit its contract), OUTDATED (written for another major version of its
contract), SHADOWED (another registration of its name wins: troy's own, or the
one TROY_PLUGIN_OVERRIDE chooses) or DUPLICATE (other distributions register
the name too, and none wins), with the reason below it.  The listing exits 0
whatever it shows; ``--check`` exits 1 when a line it shows is not HEALTHY
(one SHADOWED by the user's own TROY_PLUGIN_OVERRIDE is fine), and ``--check
NAME --suite`` exits with pytest's status.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from troy.model.errors import NoSuchPlugin, TroyError
from troy.plugins import registry
from troy.plugins.registry import PluginHealth


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``plugins`` subcommand."""
    plugins = sub.add_parser(
        "plugins",
        help="list installed plugins per entry-point group, each marked HEALTHY or why not",
    )
    plugins.add_argument(
        "new",
        nargs="*",
        metavar="new KIND NAME",
        help="write a pip-installable package for a new plugin of KIND named NAME "
        "(into --dir, default ./troy-NAME)",
    )
    plugins.add_argument(
        "--dir",
        type=Path,
        help="with new: the directory to write the package into (absent or empty)",
    )
    plugins.add_argument(
        "--check",
        nargs="*",
        metavar="NAME",
        help="exit 1 unless every plugin listed (those named: NAME or KIND.NAME; else all) "
        "is HEALTHY",
    )
    plugins.add_argument(
        "--suite",
        action="store_true",
        help="with --check NAME: run the kind's conformance suite (troy.testing) on the plugin",
    )
    plugins.add_argument(
        "-k",
        dest="keyword",
        metavar="EXPRESSION",
        help="with --suite: only the tests that match (as pytest -k)",
    )
    plugins.add_argument(
        "--describe",
        metavar="NAME",
        help="describe one plugin (NAME or KIND.NAME): kind, origin, contract, options",
    )
    plugins.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """List, check, or run a suite; the exit status as the module docstring says."""
    names: list[str] | None = args.check
    if args.new or args.dir is not None:
        return _new(args)
    if args.describe:
        if names is not None or args.suite or args.keyword:
            raise TroyError("--describe goes alone")
        from troy.cli.describe import print_description

        return print_description(args.describe, sys.stdout)
    if (args.suite or args.keyword) and names is None:
        raise TroyError("--suite and -k go with --check NAME")
    if args.keyword and not args.suite:
        raise TroyError("-k goes with --suite")
    out = sys.stdout
    if names is None:
        marked = _all()
        _print(marked, out)
        unhealthy = sum(not each.ok for each in marked)
        if unhealthy:
            print(
                f"{unhealthy} of {len(marked)} entry points need attention (reasons above); "
                "troy plugins --check exits 1 on them",
                file=out,
            )
        return 0
    marked = _select(names)
    if args.suite:
        return _suite(marked, names, args.keyword, out)
    _print(marked, out)
    counts: dict[str, int] = {}
    for each in marked:
        counts[each.mark] = counts.get(each.mark, 0) + 1
    tally = ", ".join(f"{n} {mark}" for mark, n in sorted(counts.items()))
    print(f"checked {len(marked)}: {tally}", file=out)
    return 0 if all(each.ok for each in marked) else 1


def _new(args: argparse.Namespace) -> int:
    """``troy plugins new KIND NAME``: 2 and one line on stderr for bad arguments."""
    from troy.cli.scaffold import ScaffoldError, create

    try:
        words = list(args.new)
        if len(words) != 3 or words[0] != "new":
            raise ScaffoldError("usage: troy plugins new KIND NAME [--dir D]")
        if args.check is not None or args.suite or args.keyword or args.describe:
            raise ScaffoldError("new goes alone (with --dir)")
        _, kind, name = words
        directory = args.dir if args.dir is not None else Path(f"troy-{name}")
        files = create(kind, name, directory)
    except ScaffoldError as exc:
        print(f"troy plugins new: {exc}", file=sys.stderr)
        return 2
    print(f"wrote the {kind} plugin {name!r} into {directory}:")
    for path in files:
        print(f"  {path}")
    state = (
        "its tests pass as generated; change place() into your strategy"
        if kind == "scheduler"
        else "its tests fail, each NotImplementedError saying what to implement, until you do"
    )
    print(f"{state}. Next, as its README.md says:")
    print(f"  pip install -e '{directory}[test]'")
    print(f"  pytest {directory / 'tests'}")
    print(f"  troy plugins --check {kind}.{name} --suite")
    return 0


def _all() -> list[PluginHealth]:
    return [each for kind in registry.KINDS for each in registry.health(kind)]


def _select(names: Sequence[str]) -> list[PluginHealth]:
    """The marked registrations of the plugins named (all if none); TroyError for a missing one."""
    marked = _all()
    if not names:
        return marked
    chosen: list[PluginHealth] = []
    for given in names:
        kind, dot, name = given.partition(".")
        if dot and kind in registry.KINDS:
            found = [m for m in marked if m.info.kind == kind and m.info.name == name]
            if not found:
                raise NoSuchPlugin(registry.KINDS[kind], name, registry.installed_names(kind))
        else:
            found = [m for m in marked if m.info.name == given]
            if not found:
                raise TroyError(
                    f"no plugin named '{given}' is installed (`troy plugins` lists them; "
                    f"KIND.NAME names one kind: {', '.join(registry.KINDS)})"
                )
        chosen.extend(m for m in found if m not in chosen)
    return chosen


def _print(marked: Sequence[PluginHealth], out: TextIO) -> None:
    name_width = max((len(m.info.name) for m in marked), default=0)
    shipper_width = max((len(f"{m.info.distribution} {m.info.version}") for m in marked), default=0)
    indent = " " * (2 + name_width + 1 + 9 + 1)
    for kind, group in registry.KINDS.items():
        of_kind = [m for m in marked if m.info.kind == kind]
        if not of_kind:
            continue
        print(f"{group}:", file=out)
        for each in of_kind:
            shipper = f"{each.info.distribution} {each.info.version}"
            print(
                f"  {each.info.name:<{name_width}} {each.mark:<9} {shipper:<{shipper_width}} "
                f"{each.info.target}",
                file=out,
            )
            if each.reason:
                print(f"{indent}{each.reason}", file=out)


def _suite(
    marked: Sequence[PluginHealth], names: Sequence[str], keyword: str | None, out: TextIO
) -> int:
    kinds = sorted({(m.info.kind, m.info.name) for m in marked})
    if len(names) != 1 or len(kinds) != 1:
        if len(names) == 1:
            which = " or ".join(f"{kind}.{name}" for kind, name in kinds)
            raise TroyError(f"'{names[0]}' names plugins of {len(kinds)} kinds: say {which}")
        raise TroyError("--suite tests one plugin: give exactly one NAME (or KIND.NAME)")
    kind, name = kinds[0]
    used = [m for m in marked if m.mark not in (registry.SHADOWED, registry.DUPLICATE)]
    _print(marked, out)
    if not used or used[0].mark != registry.HEALTHY:
        print(f"not running the {kind} suite: {kind} '{name}' is not HEALTHY", file=out)
        return 1
    if importlib.util.find_spec("pytest") is None:
        raise TroyError("--suite runs pytest, which is not installed: pip install pytest")
    from troy.testing.declared import suite_for

    suite = suite_for(kind, name)  # TroyError, saying what to declare, before pytest starts
    print(f"running {suite.__doc__}", file=out, flush=True)
    return _pytest(kind, name, suite.__name__, keyword)


MODULE = '''"""troy plugins --check {kind}.{name} --suite"""

import pytest

from troy.testing.declared import suite_for


@pytest.fixture(autouse=True)
def troy_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TROY_HOME", str(tmp_path / "troy-home"))
    monkeypatch.delenv("TROY_COORDINATION", raising=False)


{test_class} = suite_for({kind!r}, {name!r})
'''


def _pytest(kind: str, name: str, test_class: str, keyword: str | None) -> int:
    """Run the suite in a pytest of its own, in an empty directory, and return its status."""
    with tempfile.TemporaryDirectory(prefix="troy-suite-") as directory:
        root = Path(directory)
        (root / "pytest.ini").write_text("[pytest]\n")
        module = root / f"test_{kind}_{name}.py"
        module.write_text(MODULE.format(kind=kind, name=name, test_class=test_class))
        command = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider"]
        command += ["-c", str(root / "pytest.ini"), "--rootdir", str(root), module.name]
        if keyword:
            command += ["-k", keyword]
        sys.stdout.flush()
        return subprocess.run(command, cwd=root, check=False).returncode
