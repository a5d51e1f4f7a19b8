"""Throwaway plugin distributions, written to a directory on sys.path as pip would install them."""

from __future__ import annotations

import textwrap
from pathlib import Path


def write_distribution(
    site: Path, name: str, version: str, modules: dict[str, str], entry_points: str
) -> Path:
    """A distribution ``name`` with top-level ``modules`` (name -> source) and ``entry_points``.

    ``entry_points`` is the text of its ``entry_points.txt`` (``[group]`` sections).
    """
    site.mkdir(parents=True, exist_ok=True)
    for module, source in modules.items():
        (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    return info
