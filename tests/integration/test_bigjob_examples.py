"""BigJob's documentation examples run on troy with only the import line changed.

The examples in examples/bigjob/ are BigJob's, with ``from pilot import`` made
``from troy.pilot import``. Each runs here as a program, in a directory of its
own with HOME pointing there (they put their pilots under ``$HOME/agent``),
with one more change made by this test: the coordination URL
(``redis://localhost:6379`` in BigJob's text) points at the test's own Redis.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from redis_fixtures import RedisServer, redis_server
from services import ssh_url

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "bigjob"
BIGJOB_URL = 'COORDINATION_URL = "redis://localhost:6379"'

__all__ = ["redis_server"]  # a fixture, used by name


def run_example(name: str, server: RedisServer, home: Path) -> subprocess.CompletedProcess[str]:
    source = (EXAMPLES / name).read_text()
    assert "from troy.pilot import" in source and "from pilot import" not in source
    assert source.count(BIGJOB_URL) == 1, f"{name} should name BigJob's Redis once"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(EXAMPLES / "test.txt", home / "test.txt")
    program = home / name
    program.write_text(source.replace(BIGJOB_URL, f'COORDINATION_URL = "{server.url}"'))
    environment = {**os.environ, "HOME": str(home)}
    run = subprocess.run(
        [sys.executable, str(program)],
        cwd=home,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, f"{name} failed:\n{run.stdout}\n{run.stderr}"
    return run


def unit_outputs(home: Path) -> list[str]:
    return sorted(path.read_text() for path in (home / "agent").glob("*/stdout.txt"))


@pytest.mark.redis
def test_echo_units(redis_server: RedisServer, tmp_path: Path) -> None:
    run_example("echo_units.py", redis_server, tmp_path)
    assert unit_outputs(tmp_path) == [f"Hello World I am CU number {n}\n" for n in range(4)]


@pytest.mark.redis
def test_date_with_affinity_labels(redis_server: RedisServer, tmp_path: Path) -> None:
    run = run_example("date_affinity.py", redis_server, tmp_path)
    [output] = unit_outputs(tmp_path)
    assert re.search(r"\b(19|20)\d\d\b", output), output  # /bin/date names the year
    assert "Terminate Pilot Compute/Data Service" in run.stdout


@pytest.mark.redis
@pytest.mark.ssh
def test_cat_of_a_staged_data_unit(redis_server: RedisServer, tmp_path: Path) -> None:
    ssh_url()  # the example's Pilot-Data is ssh://localhost/$HOME/pilotdata
    run_example("cat_data_unit.py", redis_server, tmp_path)
    # The unit's std* were staged out to a data unit and exported to the current directory.
    assert (tmp_path / "stdout.txt").read_text() == (EXAMPLES / "test.txt").read_text()
    assert (tmp_path / "stderr.txt").read_text() == ""
    assert len(list((tmp_path / "pilotdata").iterdir())) == 2  # input and output units
