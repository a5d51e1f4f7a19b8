"""The plugin registry: entry points, contract checks, errors that name what is wrong.

A throwaway distribution (``troy-fake``) is written to a directory on sys.path,
exactly as pip would install a third-party plugin package.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import troy
from troy.plugins import registry

PLUGIN_MODULE = """
from troy.plugins.backends.base import Backend
from troy.plugins.schedulers.base import Scheduler


class FirstFitScheduler(Scheduler):
    name = "first_fit"

    def place(self, units, pilots):
        return {u.id: next((p.id for p in pilots if p.can_hold(u.cores)), None) for u in units}


class Unstartable(FirstFitScheduler):
    name = "unstartable"

    def __init__(self):
        raise RuntimeError("no licence server")


class Misnamed(FirstFitScheduler):
    name = "something_else"


class NotAScheduler:
    name = "not_a_scheduler"


class Abstract(Scheduler):
    name = "abstract"


class GopherBackend(Backend):
    name = "gopher"
    schemes = ("gopher",)

    def launch(self, launch):
        return {}

    def state(self, handle):
        raise NotImplementedError

    def cancel(self, handle):
        pass
"""

ENTRY_POINTS = """
[troy.schedulers]
first_fit = troyfake:FirstFitScheduler
misnamed = troyfake:Misnamed
unstartable = troyfake:Unstartable
not_a_scheduler = troyfake:NotAScheduler
abstract = troyfake:Abstract
broken = troyfake_missing_module:Nothing

[troy.backends]
gopher = troyfake:GopherBackend
local = troyfake:GopherBackend
"""


@pytest.fixture
def fake_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    site = tmp_path / "site"
    (site / "troyfake").mkdir(parents=True)
    (site / "troyfake" / "__init__.py").write_text(PLUGIN_MODULE)
    info = site / "troy_fake-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: troy-fake\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(ENTRY_POINTS))
    monkeypatch.syspath_prepend(str(site))
    registry.refresh()
    yield site
    monkeypatch.undo()
    registry.refresh()


def test_built_ins_register_through_entry_points() -> None:
    assert registry.load("backend", "local").__name__ == "LocalBackend"
    assert registry.load("coordination", "file").__name__ == "FileCoordination"
    assert registry.load("scheduler", "round_robin").__name__ == "RoundRobinScheduler"
    assert registry.load("store", "file").__name__ == "FileStore"
    assert registry.load("launcher", "srun").__name__ == "SrunLauncher"
    assert registry.load("launcher", "mpirun").__name__ == "MpirunLauncher"
    assert registry.load("launcher", "none").__name__ == "DirectLauncher"
    infos = {(i.kind, i.name): i for i in registry.installed("backend")}
    assert infos[("backend", "local")].distribution == "troy"
    assert infos[("backend", "local")].version == troy.__version__


def test_missing_plugin_names_group_name_and_installed() -> None:
    with pytest.raises(troy.NoSuchPlugin) as error:
        registry.load("scheduler", "fastest")
    assert error.value.group == "troy.schedulers"
    assert error.value.name == "fastest"
    assert "round_robin" in error.value.installed
    assert "troy.schedulers" in str(error.value) and "round_robin" in str(error.value)


def test_url_scheme_selects_the_plugin() -> None:
    assert registry.for_url("backend", "fork://localhost").name == "local"
    assert registry.for_url("coordination", "/some/plain/path").name == "file"
    with pytest.raises(troy.NoSuchPlugin, match="scheme 'nope'"):
        registry.for_url("store", "nope://x")


def test_third_party_plugin_is_found_and_used(
    fake_distribution: Path, pilots: troy.PilotJobService, coordination_url: str
) -> None:
    assert registry.load("scheduler", "first_fit").__module__ == "troyfake"
    listed = {i.name: i for i in registry.installed("scheduler")}
    assert listed["first_fit"].distribution == "troy-fake"
    assert listed["first_fit"].version == "1.2.3"
    service = troy.WorkUnitService(coordination=coordination_url, scheduler="first_fit")
    assert service.scheduler == "first_fit"
    service.close()
    assert registry.for_url("backend", "gopher://host").name == "gopher"


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("misnamed", "must equal the entry-point name"),
        ("not_a_scheduler", "is not a subclass of troy.plugins.schedulers.base.Scheduler"),
        ("abstract", "does not implement place"),
        ("broken", "failed to load: ModuleNotFoundError"),
    ],
)
def test_plugin_that_breaks_its_contract_fails_loudly(
    fake_distribution: Path, name: str, words: str
) -> None:
    with pytest.raises(troy.BadPlugin) as error:
        registry.load("scheduler", name)
    message = str(error.value)
    assert words in message
    assert f"'{name} = troyfake" in message
    assert "troy-fake 1.2.3" in message


def test_broken_plugin_does_not_hide_working_ones(fake_distribution: Path) -> None:
    assert registry.for_url("backend", "gopher://host").name == "gopher"


def test_a_builtin_name_from_another_distribution_is_ignored(fake_distribution: Path) -> None:
    # troy-fake also registers 'local': troy's own wins (tests/unit/test_plugin_health.py has more).
    assert registry.load("backend", "local").__name__ == "LocalBackend"
    shipped = {(i.name, i.distribution) for i in registry.installed("backend")}
    assert {("local", "troy"), ("local", "troy-fake")} <= shipped


def test_unknown_scheduler_is_rejected_before_anything_is_recorded(
    coordination_url: str, tmp_path: Path
) -> None:
    with pytest.raises(troy.NoSuchPlugin, match="fastest"):
        troy.WorkUnitService(coordination=coordination_url, scheduler="fastest")
    assert not (tmp_path / "coordination" / "records" / "service").exists()


def test_a_scheduler_that_cannot_start_is_a_bad_plugin_and_nothing_is_recorded(
    fake_distribution: Path, coordination_url: str, tmp_path: Path
) -> None:
    with pytest.raises(troy.BadPlugin) as error:
        troy.WorkUnitService(coordination=coordination_url, scheduler="unstartable")
    assert "scheduler 'unstartable'" in str(error.value)
    assert "troyfake.Unstartable" in str(error.value)
    assert "RuntimeError: no licence server" in str(error.value)
    assert not (tmp_path / "coordination" / "records" / "service").exists()


def test_unknown_launcher_is_rejected_before_anything_is_recorded(
    pilots: troy.PilotJobService, tmp_path: Path
) -> None:
    with pytest.raises(troy.NoSuchPlugin) as error:
        pilots.create("fork://localhost", {"number_of_processes": 1, "launcher": "aprun"})
    assert error.value.group == "troy.launchers"
    assert error.value.name == "aprun"
    assert {"mpirun", "none", "srun"} <= set(error.value.installed)
    assert all(word in str(error.value) for word in ("troy.launchers", "mpirun", "none", "srun"))
    assert pilots.list() == []
    assert not (tmp_path / "coordination" / "records" / "pilot").exists()


def test_observer_with_a_wrong_signature_or_name_is_refused() -> None:
    from troy.core import hooks

    class Wrong:
        @hooks.hookimpl
        def troy_unit_state_changed(self, unit, colour):  # type: ignore[no-untyped-def]
            pass

    class Misspelled:
        @hooks.hookimpl
        def troy_unit_state_chnaged(self, unit_id):  # type: ignore[no-untyped-def]
            pass

    before = set(hooks.manager().get_plugins())
    with pytest.raises(troy.BadPlugin, match="colour"):
        hooks.register(Wrong())
    with pytest.raises(troy.BadPlugin, match="troy_unit_state_chnaged"):
        hooks.register(Misspelled())
    assert set(hooks.manager().get_plugins()) == before  # neither stayed registered


def test_a_raising_observer_does_not_silence_the_others() -> None:
    from troy.core import hooks

    heard: list[str] = []

    class Raising:
        @hooks.hookimpl
        def troy_pilot_state_changed(self, pilot_id: str) -> None:
            raise RuntimeError("observer bug")

    class Listening:
        @hooks.hookimpl
        def troy_pilot_state_changed(self, pilot_id: str, state: str) -> None:
            heard.append(f"{pilot_id} {state}")

    raising, listening = Raising(), Listening()
    hooks.register(raising)
    hooks.register(listening)
    try:
        hooks.notify(
            "troy_pilot_state_changed",
            service_id="pjs-x", pilot_id="pilot-x", state="Running", detail="", timestamp=0.0,
        )  # fmt: skip
    finally:
        hooks.unregister(raising)
        hooks.unregister(listening)
    assert heard == ["pilot-x Running"]


def test_observer_entry_point_that_fails_to_import_is_skipped(
    fake_distribution: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from troy.core import hooks

    (fake_distribution / "troyfake_observer.py").write_text(
        "from troy.core.hooks import hookimpl\n\n"
        "@hookimpl\n"
        "def troy_unit_state_changed(unit_id):\n"
        "    pass\n"
    )
    (fake_distribution / "troyfake_misspelled.py").write_text(
        "from troy.core.hooks import hookimpl\n\n"
        "@hookimpl\n"
        "def troy_unit_state_chnaged(unit_id):\n"
        "    pass\n"
    )
    info = fake_distribution / "troy_fake-1.2.3.dist-info" / "entry_points.txt"
    info.write_text(
        info.read_text()
        + "\n[troy.observers]\nbroken = troyfake_nowhere\n"
        + "misspelled = troyfake_misspelled\nworking = troyfake_observer\n"
    )
    monkeypatch.setattr(hooks, "_manager", None)  # load entry points afresh
    monkeypatch.delenv("TROY_NO_PLUGIN_AUTOLOAD", raising=False)
    loaded = {name for name, _ in hooks.manager().list_name_plugin()}
    assert "working" in loaded
    assert "broken" not in loaded and "misspelled" not in loaded
    assert hooks.has_observers("troy_unit_state_changed")
    assert "observer 'broken = troyfake_nowhere' of troy-fake 1.2.3 is not used" in caplog.text
    assert "observer 'misspelled = troyfake_misspelled'" in caplog.text
    assert "observer 'working" not in caplog.text  # a bad one is not blamed on the next

    class Good:
        @hooks.hookimpl
        def troy_pilot_state_changed(self, pilot_id: str) -> None:
            pass

    good = Good()
    hooks.register(good)  # works: nothing unchecked is left behind
    hooks.unregister(good)
