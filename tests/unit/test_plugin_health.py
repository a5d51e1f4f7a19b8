"""Which registration of a name troy uses, and `troy plugins` marking each one.

Each test writes throwaway distributions to a directory on sys.path, as pip
installs a third-party plugin package, and refreshes the registry.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fake_dists import write_distribution

import troy
from troy.cli import main
from troy.plugins import contracts, registry

SCHEDULERS = """
from troy.plugins.schedulers.base import Scheduler


class FirstFit(Scheduler):
    name = "first_fit"

    def place(self, units, pilots):
        return {u.id: next((p.id for p in pilots if p.can_hold(u.cores)), None) for u in units}


class RoundRobin2(FirstFit):
    name = "round_robin"


class Half(Scheduler):
    name = "half"


class Old(FirstFit):
    name = "old"
    contract_version = "1.0"


class Future(FirstFit):
    name = "future"
    contract_version = "2.9"


class IntVersion(FirstFit):
    name = "int_version"
    contract_version = 2


class Narrow(Scheduler):
    name = "narrow"

    def place(self, units):
        return {}


class Boasting(FirstFit):
    name = "boasting"
    capabilities = frozenset({"rebalancing"})
"""

COORDINATION = """
from troy.plugins.coordination.file import FileCoordination


class OtherFile(FileCoordination):
    name = "file"
"""

Install = Callable[..., Path]


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Install]:
    """Installs a distribution: install(name, version, modules, entry_points)."""
    site = tmp_path / "site"

    written: list[str] = []

    def installer(name: str, version: str, modules: dict[str, str], entry_points: str) -> Path:
        write_distribution(site, name, version, modules, entry_points)
        written.extend(modules)
        registry.refresh()
        return site

    monkeypatch.syspath_prepend(str(site))
    yield installer
    monkeypatch.undo()
    for module in written:  # the next test writes its own
        sys.modules.pop(module, None)
    registry.refresh()


def marks(kind: str) -> dict[tuple[str, str], registry.PluginHealth]:
    return {(m.info.name, m.info.distribution): m for m in registry.health(kind)}


@pytest.fixture
def rr2(install: Install) -> Path:
    """troy-rr2 0.2 registers the built-in names round_robin (scheduler) and file (coordination)."""
    return install(
        "troy-rr2",
        "0.2",
        {"troy_rr2": SCHEDULERS + COORDINATION},
        """
        [troy.schedulers]
        round_robin = troy_rr2:RoundRobin2
        [troy.coordination]
        file = troy_rr2:OtherFile
        """,
    )


def test_a_package_registering_a_builtin_name_is_ignored_with_a_warning(
    rr2: Path, coordination_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="troy.plugins"):
        assert registry.load("scheduler", "round_robin").__module__.startswith("troy.plugins")
        units = troy.WorkUnitService()  # the defaults: round_robin, file coordination
        units.close()
        assert registry.for_url("coordination", coordination_url).__name__ == "FileCoordination"
    assert "'round_robin = troy_rr2:RoundRobin2' in group 'troy.schedulers' of troy-rr2 0.2" in (
        caplog.text
    )
    assert "TROY_PLUGIN_OVERRIDE=round_robin=troy-rr2" in caplog.text
    shadowed = marks("scheduler")[("round_robin", "troy-rr2")]
    assert shadowed.mark == registry.SHADOWED
    assert "troy ships 'round_robin'" in shadowed.reason
    assert marks("scheduler")[("round_robin", "troy")].mark == registry.HEALTHY
    assert marks("coordination")[("file", "troy-rr2")].mark == registry.SHADOWED


def test_troy_status_works_beside_a_package_registering_file(
    rr2: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status"]) == 0
    assert "no services in" in capsys.readouterr().out


def test_the_listing_shows_the_shadowed_registration_and_exits_0(
    rr2: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if "troy_rr2:RoundRobin2" in line)
    assert line.split()[:4] == ["round_robin", "SHADOWED", "troy-rr2", "0.2"]
    assert "TROY_PLUGIN_OVERRIDE=round_robin=troy-rr2 would use it instead" in out
    assert re.search(r"^2 of \d+ entry points need attention", out, re.MULTILINE)


def test_the_override_chooses_the_other_distribution(
    rr2: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TROY_PLUGIN_OVERRIDE", "round_robin=troy_RR2")  # names compare as pip's
    registry.refresh()
    assert registry.load("scheduler", "round_robin").__name__ == "RoundRobin2"
    assert registry.load("coordination", "file").__name__ == "FileCoordination"  # not named
    built_in = marks("scheduler")[("round_robin", "troy")]
    assert built_in.mark == registry.SHADOWED
    assert "TROY_PLUGIN_OVERRIDE chooses troy-rr2 0.2's 'round_robin'" in built_in.reason
    assert marks("scheduler")[("round_robin", "troy-rr2")].mark == registry.HEALTHY
    assert main(["plugins", "--check", "round_robin"]) == 0  # the user's own choice: fine


def test_a_malformed_override_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TROY_PLUGIN_OVERRIDE", "round_robin")
    registry.refresh()
    assert main(["plugins"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "TROY_PLUGIN_OVERRIDE" in err and "'round_robin'" in err
    registry.refresh()


def test_two_other_packages_with_one_name_are_duplicates_naming_each_other(
    install: Install, monkeypatch: pytest.MonkeyPatch
) -> None:
    for dist in ("troy-a", "troy-b"):
        module = dist.replace("-", "_")
        entry_points = f"[troy.schedulers]\nfirst_fit = {module}:FirstFit\n"
        install(dist, "1.0", {module: SCHEDULERS}, entry_points)
    with pytest.raises(troy.BadPlugin) as error:
        registry.load("scheduler", "first_fit")
    assert "troy-a 1.0, troy-b 1.0" in str(error.value)
    first = marks("scheduler")[("first_fit", "troy-a")]
    assert first.mark == registry.DUPLICATE
    assert "also registered by troy-b 1.0" in first.reason
    assert marks("scheduler")[("first_fit", "troy-b")].mark == registry.DUPLICATE

    monkeypatch.setenv("TROY_PLUGIN_OVERRIDE", "first_fit=troy-b")
    registry.refresh()
    assert registry.load("scheduler", "first_fit").__module__ == "troy_b"


@pytest.fixture
def fakes(install: Install) -> Path:
    names = ["half", "old", "future", "int_version", "narrow", "boasting"]
    classes = {"half": "Half", "old": "Old", "future": "Future", "int_version": "IntVersion"}
    classes |= {"narrow": "Narrow", "boasting": "Boasting"}
    lines = "".join(f"{name} = troy_fake_schedulers:{classes[name]}\n" for name in names)
    return install(
        "troy-fake-schedulers",
        "0.3",
        {"troy_fake_schedulers": SCHEDULERS},
        "[troy.schedulers]\n" + lines,
    )


def test_a_missing_method_is_broken_and_check_names_it(
    fakes: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plugins", "--check", "half", "round_robin"]) == 1
    out = capsys.readouterr().out
    assert "half" in out and "BROKEN" in out and "does not implement place" in out
    assert "checked 2: 1 BROKEN, 1 HEALTHY" in out
    assert main(["plugins"]) == 0  # the listing shows problems; --check is the gate


def test_a_major_version_mismatch_is_outdated_naming_both_versions_and_what_changed(
    fakes: Path,
) -> None:
    with pytest.raises(troy.BadPlugin) as error:
        registry.load("scheduler", "old")
    message = str(error.value)
    assert "was written for scheduler contract 1.0; this troy has 2.1" in message
    assert "2.0: " in message and "2.1: " in message  # the changelog since its version
    assert "troy-fake-schedulers 0.3" in message
    old = marks("scheduler")[("old", "troy-fake-schedulers")]
    assert old.mark == registry.OUTDATED and "1.0" in old.reason and "2.1" in old.reason
    future = marks("scheduler")[("future", "troy-fake-schedulers")]
    assert future.mark == registry.OUTDATED and "needs a newer troy" in future.reason


def test_an_older_minor_and_an_int_version_load(
    fakes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    newer = replace(
        contracts.CONTRACTS["scheduler"],
        version="2.1",
        changes={**contracts.CONTRACTS["scheduler"].changes, "2.1": "an optional hook"},
    )
    monkeypatch.setitem(contracts.CONTRACTS, "scheduler", newer)
    registry.refresh()
    assert registry.load("scheduler", "int_version").contract_version == 2  # "2.0"
    marked = marks("scheduler")
    assert marked[("int_version", "troy-fake-schedulers")].mark == registry.HEALTHY
    assert marked[("round_robin", "troy")].mark == registry.HEALTHY  # declares 2.0


def test_a_signature_or_capability_that_does_not_fit_is_broken(fakes: Path) -> None:
    with pytest.raises(troy.BadPlugin, match=r"place\(self, units\) does not fit .*pilots"):
        registry.load("scheduler", "narrow")
    boasting = marks("scheduler")[("boasting", "troy-fake-schedulers")]
    assert boasting.mark == registry.BROKEN
    assert "'rebalancing'" in boasting.reason and "rebalance" in boasting.reason


def test_check_of_every_installed_plugin_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "--check"]) == 0
    out = capsys.readouterr().out
    assert "round_robin" in out and "BROKEN" not in out


def test_an_unknown_name_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "--check", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("troy: error: no plugin named 'nosuch'") and err.count("\n") == 1
    assert main(["plugins", "--check", "store.nosuch"]) == 2
    assert "'troy.stores'" in capsys.readouterr().err


CRASHING = """
    from troy.plugins.coordination.file import FileCoordination

    class Crashing(FileCoordination):
        name = "crashing"
        schemes = ("crashing",)

        def __init__(self, url, *, serve=False):
            raise RuntimeError("the author's bug")
"""


def test_a_coordination_that_crashes_on_open_is_a_bad_plugin_not_a_traceback(
    install: Install, capsys: pytest.CaptureFixture[str]
) -> None:
    install(
        "troy-crashing",
        "0.1",
        {"troy_crashing": CRASHING},
        "[troy.coordination]\ncrashing = troy_crashing:Crashing\n",
    )

    with pytest.raises(troy.BadPlugin, match=r"coordination 'crashing' .* failed to open"):
        registry.open_coordination("crashing://x")
    assert main(["status", "--coordination", "crashing://x"]) == 2
    err = capsys.readouterr().err
    assert "RuntimeError: the author's bug" in err and "Traceback" not in err


def test_a_url_whose_scheme_cannot_be_one_is_refused_not_served_as_a_path() -> None:
    # urlsplit finds no scheme in "my_store://x" ('_' is not allowed in one), which
    # would make it a plain path for the file plugins.
    with pytest.raises(troy.BadDescription, match="'my_store' cannot be a URL scheme"):
        registry.for_url("store", "my_store:///data")
    assert registry.scheme_of("/plain/path") == "file"
    assert registry.scheme_of("relative/dir") == "file"
    assert registry.scheme_of("redis://localhost:6390") == "redis"
