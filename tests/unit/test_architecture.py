"""troy's layers point one way, and the check that says so catches a cycle.

The contracts live in pyproject.toml ([tool.importlinter]); `scripts/test.sh`
runs them with lint-imports, and so do these tests.  Imports made only under
TYPE_CHECKING count: a reader still meets the cycle.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _troy_contracts() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]


def _lint(config: Path, pythonpath: Path) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(pythonpath)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(config), "--no-cache"],
        capture_output=True,
        text=True,
        env=environment,
        cwd=pythonpath,
        timeout=120,
    )


def _write_package(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _config_for(package: str, tmp_path: Path) -> Path:
    """troy's own contracts, with troy's name replaced by ``package``."""
    settings = _troy_contracts()
    lines = ["[importlinter]", f"root_package = {package}"]
    lines.append(f"exclude_type_checking_imports = {settings['exclude_type_checking_imports']}")
    for contract in settings["contracts"]:
        lines.append(f"[importlinter:contract:{contract['id']}]")
        for key, value in contract.items():
            if key == "id":
                continue
            if isinstance(value, list):
                items = "".join(f"\n    {item.replace('troy', package)}" for item in value)
                lines.append(f"{key} ={items}")
            elif key == "name":
                lines.append(f"{key} = {value}")
            else:
                lines.append(f"{key} = {value.replace('troy', package)}")
    config = tmp_path / "importlinter.ini"
    config.write_text("\n".join(lines) + "\n")
    return config


#: A package laid out as troy is, whose layers do not yet break any contract.
_CLEAN = {
    "fix/__init__.py": "",
    "fix/model/__init__.py": "",
    "fix/model/states.py": "STATES = ('New', 'Done')\n",
    "fix/plugins/__init__.py": "",
    "fix/plugins/base.py": "from fix.model.states import STATES\n",
    "fix/agent/__init__.py": "",
    "fix/agent/agent.py": "from fix.plugins import base\n",
    "fix/sim/__init__.py": "",
    "fix/sim/engine.py": "from fix.plugins import base\n",
    "fix/core/__init__.py": "",
    "fix/core/manager.py": "from fix.model import states\n",
    "fix/core/placement.py": "from fix.model import states\n",
    "fix/api/__init__.py": "",
    "fix/api/objects.py": "from fix.core import manager\n",
    "fix/pilot.py": "from fix.api import objects\n",
    "fix/testing/__init__.py": "from fix.api import objects\n",
    "fix/cli/__init__.py": "from fix.api import objects\n",
}


def test_troy_keeps_its_layers_and_has_no_cycles() -> None:
    result = _lint(ROOT / "pyproject.toml", ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_contracts_pass_a_package_that_keeps_them(tmp_path: Path) -> None:
    _write_package(tmp_path, _CLEAN)
    result = _lint(_config_for("fix", tmp_path), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "text", "named"),
    [
        # The cycle of the first wave: the leaf imports the facade, only for type checkers.
        (
            "fix/model/states.py",
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n"
            "    from fix.api import objects\n",
            "fix.model.states -> fix.api.objects",
        ),
        # Core calls back up into the API instead of naming a Protocol.
        ("fix/core/manager.py", "from fix.api import objects\n", "fix.core.manager -> fix.api"),
        # The agent reaches into the manager side.
        ("fix/agent/agent.py", "from fix.core import manager\n", "fix.agent.agent -> fix.core"),
        # Two modules of one layer import each other (placement <-> manager).
        (
            "fix/core/manager.py",
            "from fix.core import placement\n",
            ".placement -> .manager",
        ),
    ],
    ids=["type-checking-cycle", "core-imports-api", "agent-imports-core", "sibling-cycle"],
)
def test_the_check_fails_on_a_cycle_and_names_the_import(
    tmp_path: Path, module: str, text: str, named: str
) -> None:
    files = dict(_CLEAN)
    files[module] = text
    if named == ".placement -> .manager":
        files["fix/core/placement.py"] = "from fix.core import manager\n"
    _write_package(tmp_path, files)
    result = _lint(_config_for("fix", tmp_path), tmp_path)
    assert result.returncode != 0, result.stdout
    assert "BROKEN" in result.stdout
    assert named in result.stdout, result.stdout
