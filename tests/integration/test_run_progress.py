"""`troy run` shows its progress as it goes: plain lines in a log, a live display on a terminal."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

#: One slot, four units of a second each: a run of about four seconds.
SLOW_BATCH = (
    "pilots:\n  - resource: fork://localhost\n    number_of_processes: 1\n"
    "units:\n  - executable: /bin/sleep\n    arguments: ['1']\n    count: 4\n"
)


def _environment(troy_home: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, TROY_HOME=str(troy_home), TROY_PROGRESS_INTERVAL="0.5", **extra)
    env.pop("TROY_COORDINATION", None)
    return env


def _batch(tmp_path: Path) -> Path:
    batch = tmp_path / "slow.yaml"
    batch.write_text(SLOW_BATCH)
    return batch


def test_without_a_terminal_progress_lines_appear_while_the_run_goes_on(
    tmp_path: Path, troy_home: Path
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "troy", "run", str(_batch(tmp_path))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=_environment(troy_home),
    )
    assert process.stderr is not None and process.stdout is not None
    seen: list[tuple[str, bool]] = []  # (line, whether the run was still going)
    for line in process.stderr:
        seen.append((line.rstrip("\n"), process.poll() is None))
    out = process.stdout.read()
    assert process.wait(timeout=60) == 0, out + "".join(line for line, _ in seen)
    progress = [line for line, _ in seen if line.startswith("troy run: ")]
    early = [line for line, running in seen if running and line.startswith("troy run: ")]
    assert early, seen  # in the log before the run ended, not only at its end
    assert any("Running 1" in line and "units/s" in line for line in progress), progress
    assert progress[-1].startswith("troy run: 4/4 final (Done 4)"), progress
    assert "4 units: 4 Done" in out  # the summary stays on stdout, the progress on stderr
    assert "troy run: " not in out


def test_quiet_shows_no_progress(tmp_path: Path, troy_home: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "troy", "run", "--quiet", str(_batch(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env=_environment(troy_home),
    )
    assert result.returncode == 0, result.stderr
    assert "troy run: " not in result.stderr
    assert "4 units: 4 Done" in result.stdout


def test_on_a_terminal_a_live_display_shows_counts_rate_and_eta(
    tmp_path: Path, troy_home: Path
) -> None:
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "troy", "run", str(_batch(tmp_path))],
        stdout=subprocess.PIPE,
        stderr=terminal,
        cwd=REPO,
        env=_environment(troy_home, TERM="xterm", COLUMNS="160"),
    )
    os.close(terminal)
    shown = bytearray()
    chunks: list[tuple[bytes, bool]] = []

    def read() -> None:
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: the run closed the terminal
                return
            if not chunk:
                return
            chunks.append((chunk, process.poll() is None))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert process.wait(timeout=60) == 0
    reader.join(timeout=5)
    os.close(controller)
    for chunk, _ in chunks:
        shown += chunk
    text = shown.decode(errors="replace")
    assert "troy run" in text and "units/s" in text and "ETA" in text, text
    assert "Running 1" in text, text  # counts per state, redrawn while the units run
    assert "4/4" in text, text
    redraws = text.count("\r") + text.count("\x1b[")
    assert redraws > 2, text  # drawn again and again in place, not printed line after line
    assert "troy run: " not in text  # not the plain lines
