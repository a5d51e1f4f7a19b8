"""`troy plugins --check NAME --suite`: a kind's conformance suite on one installed plugin."""

from __future__ import annotations

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
