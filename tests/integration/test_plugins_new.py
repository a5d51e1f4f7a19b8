"""The packages `troy plugins new` writes, installed with pip and tested as their authors would.

One package of each kind, generated into a temporary directory and installed
(built by pip from its pyproject.toml, like any pip install) into a directory
put on PYTHONPATH only for the processes that test it, so the shared venv stays
clean.  Then, as its README says: ``pytest tests/`` and ``troy plugins --check``.
The scheduler passes its suite as generated; every other kind's tests run and
fail with the NotImplementedError messages saying what to implement, never with
an import or fixture error.  This is the CI step of scripts/test.sh's
"troy plugins new" comment.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from troy.cli.scaffold import render

KINDS = ["backend", "scheduler", "store", "coordination", "launcher"]
CLASSES = {
    "backend": "NewbackendBackend",
    "scheduler": "NewschedulerScheduler",
    "store": "NewstoreStore",
    "coordination": "NewcoordinationCoordination",
    "launcher": "NewlauncherLauncher",
}
#: What a generated test must never fail with: the package, or the suite's fixtures, not reached.
NOT_REACHED = ["ImportError", "ModuleNotFoundError", "fixture '", "needs the '", "NoSuchPlugin"]


def plugin_name(kind: str) -> str:
    return f"new{kind}"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One package per kind, written by the CLI and installed by pip into a target directory."""
    root = tmp_path_factory.mktemp("plugins-new")
    packages: dict[str, Path] = {}
    for kind in KINDS:
        packages[kind] = root / f"troy-{plugin_name(kind)}"
        troy(["plugins", "new", kind, plugin_name(kind), "--dir", str(packages[kind])], {})
    target = root / "site"
    install = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
    install += ["--target", str(target), *map(str, packages.values())]
    done = subprocess.run(install, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    packages["site"] = target
    return packages


def environment(site: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    env.pop("TROY_COORDINATION", None)
    return env


def troy(arguments: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "troy", *arguments]
    done = subprocess.run(command, capture_output=True, text=True, env=env or None, check=False)
    if not env:  # generating: must succeed
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def run_tests(package: Path, site: Path) -> subprocess.CompletedProcess[str]:
    # A basetemp of its own: a pytest in the default one would rotate this test's directories away.
    basetemp = package.parent / f"basetemp-{package.name}"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"]
    command += ["--basetemp", str(basetemp)]
    return subprocess.run(
        command,
        cwd=package,
        env=environment(site),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_the_generated_scheduler_passes_its_suite(generated: dict[str, Path]) -> None:
    done = run_tests(generated["scheduler"], generated["site"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert " passed" in done.stdout and "failed" not in done.stdout


def test_the_generated_scheduler_is_healthy_and_passes_the_suite_through_troy(
    generated: dict[str, Path],
) -> None:
    env = environment(generated["site"])
    done = troy(["plugins", "--check", plugin_name("scheduler")], env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{plugin_name('scheduler')} HEALTHY   troy-newscheduler 0.1.0" in done.stdout
    done = troy(["plugins", "--check", plugin_name("scheduler"), "--suite"], env)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("kind", [kind for kind in KINDS if kind != "scheduler"])
def test_the_other_kinds_tests_fail_saying_what_to_implement(
    kind: str, generated: dict[str, Path]
) -> None:
    done = run_tests(generated[kind], generated["site"])
    output = done.stdout + done.stderr
    assert done.returncode == 1, output  # tests failed (not: interrupted, usage error)
    assert f"NotImplementedError: {CLASSES[kind]}." in output
    # The first method the suite calls is named with what it must do, as the module says.
    source = render(kind, plugin_name(kind))[f"src/troy_{plugin_name(kind)}/{kind}.py"]
    messages = [line for line in output.splitlines() if "NotImplementedError: " in line]
    assert all(line.split("NotImplementedError: ")[1][:60] in source for line in messages)
    for wrong in NOT_REACHED:
        assert wrong not in output, f"{wrong!r} in:\n{output}"


@pytest.mark.parametrize("kind", [kind for kind in KINDS if kind != "scheduler"])
def test_the_other_kinds_are_healthy_to_troy(kind: str, generated: dict[str, Path]) -> None:
    env = environment(generated["site"])
    done = troy(["plugins", "--check", f"{kind}.{plugin_name(kind)}"], env)
    assert done.returncode == 0, done.stdout + done.stderr
