"""A kind's conformance suite bound to one installed plugin, by its name.

``suite_for("scheduler", "longest_first")`` is what ``troy plugins --check NAME
--suite`` runs: the kind's ``...Suite`` with the fixtures that reach the plugin.
troy supplies the names (``scheduler_name``, ``launcher_name``, and
``backend_pj_type``, so a backend suite tests that backend and not another
serving the same scheme); everything else comes from the class the plugin's
distribution declares under the entry-point group ``troy.conformance``, named
``"<kind>.<name>"``::

    [project.entry-points."troy.conformance"]
    "store.memory" = "troy_demo.conformance:MemoryStoreFixtures"

That class defines the suite's must-override fixtures (``store_url``, ...) as
pytest fixtures, as a one-line subclass of the suite would.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from troy.model.errors import TroyError
from troy.plugins import registry

#: For each kind: its suite (module, class), and the fixtures a declaration must give.
SUITES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "backend": ("troy.testing.backends", "BackendSuite", ("backend_rm",)),
    "coordination": ("troy.testing.coordination", "CoordinationSuite", ("coordination_url",)),
    "launcher": ("troy.testing.launchers", "LauncherSuite", ()),
    "scheduler": ("troy.testing.schedulers", "SchedulerSuite", ()),
    "store": ("troy.testing.stores", "StoreSuite", ("store_url",)),
}
#: The fixtures troy fills in with the plugin's name.
NAMED = {"backend": "backend_pj_type", "launcher": "launcher_name", "scheduler": "scheduler_name"}


def _returning(fixture: str, value: str) -> Any:
    def fixture_function(self: object) -> str:
        return value

    return pytest.fixture(name=fixture)(fixture_function)


def suite_for(kind: str, name: str) -> type:
    """The ``kind`` suite for the installed plugin ``name``, as a test class.

    TroyError, saying what to declare, when the suite needs fixtures that the
    plugin's distribution does not declare.
    """
    module, suite_name, needed = SUITES[kind]
    suite = getattr(importlib.import_module(module), suite_name)
    declared = registry.conformance_fixtures(kind, name)
    if declared is None and needed:
        shipper = registry.used(kind, name).distribution
        if registry.canonical(shipper) == registry.TROY:
            raise TroyError(
                f"{kind} '{name}' is built in and troy declares no fixtures for its suite; "
                f"troy's own tests/conformance/ runs it"
            )
        raise TroyError(
            f"{kind} '{name}' declares no fixtures for the {kind} suite. Add to the "
            f"pyproject.toml of {shipper}:\n"
            f'  [project.entry-points."{registry.CONFORMANCE_GROUP}"]\n'
            f'  "{kind}.{name}" = "<module>:<class>"\n'
            f"where the class defines the pytest fixture{'s' if len(needed) > 1 else ''} "
            f"{', '.join(needed)} (see docs/plugins.md, 'Running a plugin's suite')"
        )
    bases: list[type] = [declared] if declared is not None else []
    if kind in NAMED:
        bases.append(type("Named", (), {NAMED[kind]: _returning(NAMED[kind], name)}))
    title = "".join(part.capitalize() for part in name.replace("-", "_").split("_"))
    test_class = type(f"Test{title}{kind.capitalize()}", (*bases, suite), {})
    origin = "" if declared is None else f" with {declared.__module__}:{declared.__qualname__}"
    test_class.__doc__ = f"{module}.{suite_name} on {kind} '{name}'{origin}"
    return test_class
