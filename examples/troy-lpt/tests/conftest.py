"""Every test gets its own troy home, so nothing lands in ~/.troy."""

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def troy_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "troy-home"
    monkeypatch.setenv("TROY_HOME", str(home))
    monkeypatch.delenv("TROY_COORDINATION", raising=False)
    return home
