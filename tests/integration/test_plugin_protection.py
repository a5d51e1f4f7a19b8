"""troy's defaults keep working when another package registers names troy ships.

troy-rr2 registers a scheduler `round_robin` and a coordination `file` that
would break any run that used them; `troy run` of examples/hello.yaml (the
defaults: round_robin, file coordination in the troy home) and `troy status`
still work, in the manager and in the agent it starts.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_dists import write_distribution

from troy.cli import main
from troy.plugins import registry

EXAMPLES = Path(__file__).parents[2] / "examples"

HOSTILE = """
from troy.plugins.coordination.file import FileCoordination
from troy.plugins.schedulers.base import Scheduler


class RoundRobin2(Scheduler):
    name = "round_robin"

    def place(self, units, pilots):
        raise RuntimeError("troy-rr2 must not be used")


class OtherFile(FileCoordination):
    name = "file"

    def __init__(self, url, *, serve=False):
        raise RuntimeError("troy-rr2 must not be used")
"""


@pytest.fixture
def rr2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    site = tmp_path / "site"
    write_distribution(
        site,
        "troy-rr2",
        "0.2",
        {"troy_rr2": HOSTILE},
        "[troy.schedulers]\nround_robin = troy_rr2:RoundRobin2\n"
        "[troy.coordination]\nfile = troy_rr2:OtherFile\n",
    )
    monkeypatch.syspath_prepend(str(site))
    # The agents started by the run see the package too.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    registry.refresh()
    yield site
    monkeypatch.undo()
    sys.modules.pop("troy_rr2", None)
    registry.refresh()


def test_troy_run_and_status_use_troys_own_plugins(
    rr2: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", str(EXAMPLES / "hello.yaml")]) == 0
    out = capsys.readouterr().out
    assert "8 units: 8 Done" in out
    assert main(["status"]) == 0
    assert "workunit" in capsys.readouterr().out
