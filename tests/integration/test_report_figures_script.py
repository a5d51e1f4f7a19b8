"""scripts/report_figures.py still makes docs/operating.md's figures from a real run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "report_figures.py"
DOCS_IMAGES = SCRIPT.parents[1] / "docs" / "images"
PNG = b"\x89PNG\r\n\x1a\n"


def test_the_docs_figures_are_made_again_from_a_real_run(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path / "images"),
         "--work", str(tmp_path / "work")],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stdout + done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))
    names = sorted(Path(path).name for path in result["figures"])
    assert names == sorted(p.name for p in DOCS_IMAGES.glob("report-*.png"))  # the docs' set
    for path in result["figures"]:
        assert Path(path).read_bytes()[:8] == PNG
    first, second = result["services"]
    assert f"{first}: 12 units (11 Done, 1 Failed)" in done.stdout
    figures = json.loads((tmp_path / "work" / "one" / "figures.json").read_text())
    gantt = figures["gantt-round_robin-real-0.png"]
    assert len(gantt["rows"]) == 4 and all(row.rsplit("/", 1)[1] in "01" for row in gantt["rows"])
    assert {bar["state"] for bar in gantt["bars"]} == {"Done", "Failed", "run again"}
    both = json.loads((tmp_path / "work" / "both" / "figures.json").read_text())
    assert [run["scheduler"] for run in both["comparison.png"]["runs"]] == [first, second]
    exported = json.loads((tmp_path / "work" / "units.json").read_text())
    assert [row["name"] for row in exported["units"]][-2:] == ["fails", "retried"]
    assert exported["units"][-1]["tries"] == 1
