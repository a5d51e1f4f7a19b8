"""`troy plugins --check NAME --suite`: a kind's conformance suite on one installed plugin."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_dists import write_distribution

from troy.cli import main
from troy.plugins import registry

STORES = """
from troy.plugins.stores.base import Store


class ScratchStore(Store):
    name = "scratch"
    schemes = ("scratch",)

    def put(self, unit_id, paths):
        return []

    def get(self, unit_id, destination, patterns=("*",)):
        return []

    def list(self, unit_id):
        return []

    def delete(self, unit_id):
        pass

    def size(self, unit_id):
        return 0

    def unit_url(self, unit_id):
        return f"scratch://{unit_id}"
"""


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """troy-scratch 0.1 registers a store and declares no conformance fixtures."""
    site = tmp_path / "site"
    write_distribution(
        site,
        "troy-scratch",
        "0.1",
        {"troy_scratch": STORES},
        "[troy.stores]\nscratch = troy_scratch:ScratchStore\n",
    )
    monkeypatch.syspath_prepend(str(site))
    registry.refresh()
    yield site
    monkeypatch.undo()
    sys.modules.pop("troy_scratch", None)
    registry.refresh()


def test_the_scheduler_suite_runs_on_any_installed_scheduler(
    capfd: pytest.CaptureFixture[str],
) -> None:
    # -k keeps it short: the option tests only (the whole suite takes about 2 s).
    assert main(["plugins", "--check", "round_robin", "--suite", "-k", "Option"]) == 0
    out = capfd.readouterr().out
    assert "running troy.testing.schedulers.SchedulerSuite on scheduler 'round_robin'" in out
    assert " passed, " in out and " deselected in " in out  # pytest's summary
    assert "failed" not in out


def test_a_plugin_that_declares_no_fixtures_is_told_what_to_add(
    scratch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plugins", "--check", "scratch", "--suite"]) == 2
    err = capsys.readouterr().err
    assert "store 'scratch' declares no fixtures for the store suite" in err
    assert "pyproject.toml of troy-scratch" in err
    assert '[project.entry-points."troy.conformance"]' in err
    assert '"store.scratch" = "<module>:<class>"' in err
    assert "store_url" in err


def test_a_name_of_two_kinds_must_be_qualified(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "--check", "file", "--suite"]) == 2
    err = capsys.readouterr().err
    assert "say coordination.file or store.file" in err and err.count("\n") == 1


def test_suite_goes_with_one_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "--suite"]) == 2
    assert main(["plugins", "--check", "--suite"]) == 2
    assert main(["plugins", "--check", "round_robin", "random", "--suite"]) == 2
    assert "exactly one NAME" in capsys.readouterr().err


def test_a_declared_fixtures_class_runs_the_store_suite(capfd: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("troy_demo", reason="examples/troy-demo is not installed")
    # troy-demo declares "store.memory" under troy.conformance (its pyproject.toml).
    assert main(["plugins", "--check", "store.memory", "--suite", "-k", "put"]) == 0
    out = capfd.readouterr().out
    assert "on store 'memory' with troy_demo.conformance:MemoryStoreFixtures" in out
    assert " passed, " in out and "failed" not in out


def test_a_builtin_without_declared_fixtures_points_to_troys_own_tests(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["plugins", "--check", "store.file", "--suite"]) == 2
    assert "troy's own tests/conformance/ runs it" in capsys.readouterr().err


def test_a_plugin_that_is_not_healthy_is_not_tested(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    old = STORES + 'ScratchStore.name = "old_scratch"\nScratchStore.contract_version = "0.9"\n'
    site = tmp_path / "site"
    entry_points = "[troy.stores]\nold_scratch = troy_old_scratch:ScratchStore\n"
    write_distribution(site, "troy-old-scratch", "0.1", {"troy_old_scratch": old}, entry_points)
    monkeypatch.syspath_prepend(str(site))
    registry.refresh()
    try:
        assert main(["plugins", "--check", "old_scratch", "--suite"]) == 1
    finally:
        monkeypatch.undo()
        registry.refresh()
    out = capsys.readouterr().out
    assert "OUTDATED" in out and "not running the store suite" in out
