"""Every ```python block of README.md and docs/*.md runs, as it is written.

Each block is a program by itself.  It runs in a fresh ``python`` process, in an
empty temporary directory that is also its ``TROY_HOME``, so on troy's embedded
default (local pilots, ``file`` coordination under that home), with a timeout of
``TIMEOUT`` seconds, and must exit 0.  A failure names the page, the line of the
block's fence and what the block printed.  Afterwards every pilot still alive in
that home is canceled, so a block that leaves pilots running (as the reconnect
example does on purpose) leaves no agent behind.

Where a ```console block right after a block shows its run, what the block prints
must be what the console block shows (see tests/doc_pages.py for how they are
compared).  The markers that keep a block from running, make it depend on an
installed module, pass it the output of the block above, or say that its output
varies, are described in tests/doc_pages.py; tests/unit/test_docs.py checks that
they are well formed.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from doc_pages import (
    ARGUMENTS_FROM_ABOVE,
    OUTPUT_VARIES,
    PAGES,
    Block,
    blocks,
    normalized,
    shown_output,
)
from services import unavailable

from troy import PilotJobService
from troy.plugins.registry import open_coordination

TIMEOUT = 50  # below pytest-timeout's 120 s, so that the pilots are still canceled


def runs() -> list[list[Block]]:
    """The blocks to run, one list per test: a block with the ``arguments`` marker runs
    in the test of the block above it."""
    found: list[list[Block]] = []
    for page in PAGES:
        for block in blocks(page):
            if block.language != "python" or (block.marker or ("", ""))[0] == "illustrative":
                continue
            if block.marker == ("arguments", ARGUMENTS_FROM_ABOVE):
                found[-1].append(block)
            else:
                found.append([block])
    return found


RUNS = runs()


def run_block(block: Block, directory: Path, arguments: list[str]) -> str:
    """Runs one block as a program in ``directory``; returns what it printed."""
    program = directory / f"block_{block.line}.py"
    program.write_text(block.text)
    environment = {**os.environ, "TROY_HOME": str(directory), "PYTHONUNBUFFERED": "1"}
    environment.pop("TROY_COORDINATION", None)
    try:
        done = subprocess.run(
            [sys.executable, program.name, *arguments],
            cwd=directory,
            env=environment,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        printed = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else exc.stdout
        pytest.fail(f"{block.where}: still running after {TIMEOUT} s; printed:\n{printed}")
    assert done.returncode == 0, (
        f"{block.where}: exited {done.returncode}\n"
        f"--- stdout\n{done.stdout}--- stderr\n{done.stderr}"
    )
    shown = shown_output(block)
    if shown is not None:
        console, output = shown
        if not (console.marker and console.marker[0] == OUTPUT_VARIES):
            printed = done.stdout.splitlines()
            assert normalized(printed) == normalized(output), (
                f"{block.where} printed what {console.where} does not show "
                "(compared as lines in any order, ids and /tmp paths alike):\n"
                f"--- printed\n{done.stdout}--- shown\n" + "\n".join(output)
            )
    return done.stdout


def cancel_every_pilot(home: Path) -> None:
    """Cancels the pilots of every pilot-job service recorded in the home's coordination."""
    url = (home / "coordination").as_uri()
    if not (home / "coordination").exists():
        return
    coordination = open_coordination(url)
    try:
        keys = coordination.list_records("service")
        services = [
            key for key in keys if (coordination.get_record(key) or {}).get("kind") == "pilotjob"
        ]
    finally:
        coordination.close()
    for key in services:
        with PilotJobService(id=key.split("/", 1)[1], coordination=url) as pilots:
            pilots.cancel()


@pytest.mark.parametrize("blocks_to_run", RUNS, ids=[run[0].where for run in RUNS])
def test_the_block_runs(blocks_to_run: list[Block], tmp_path: Path) -> None:
    for block in blocks_to_run:
        if block.marker and block.marker[0] == "requires":
            module = block.marker[1]
            if importlib.util.find_spec(module) is None:
                unavailable(
                    f"{block.where} needs the module {module}: pip install -e "
                    "examples/troy-demo -e examples/troy-lpt (scripts/test.sh does)"
                )
    home = tmp_path / "home"
    home.mkdir()
    words: list[str] = []  # what the block before printed: the next one's arguments
    try:
        for block in blocks_to_run:
            words = run_block(block, home, words).split()
    finally:
        cancel_every_pilot(home)
