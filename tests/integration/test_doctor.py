"""`troy doctor` on real setups: each check's ok line, and its fail line saying what to fix."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fake_dists import write_distribution
from redis_fixtures import running_server

from troy.api.services import PilotJobService
from troy.cli.doctor import check_private

REPO = Path(__file__).resolve().parents[2]


def doctor(
    *args: str, troy_home: Path, **env: str
) -> tuple[int, dict[str, list[tuple[str, str]]], str]:
    """Run ``troy doctor``: its exit code, its lines by check as (mark, message), its stderr."""
    environment = dict(os.environ, TROY_HOME=str(troy_home), **env)
    if "TROY_COORDINATION" not in env:
        environment.pop("TROY_COORDINATION", None)
    result = subprocess.run(
        [sys.executable, "-m", "troy", "doctor", "--timeout", "30", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env=environment,
    )
    lines: dict[str, list[tuple[str, str]]] = {}
    for line in result.stdout.splitlines():
        mark, check, message = line.split(None, 2)
        lines.setdefault(check, []).append((mark, message))
    return result.returncode, lines, result.stderr


def made_coordination(tmp_path: Path) -> Path:
    """A file coordination made by troy (so private), with one service in it."""
    directory = tmp_path / "coordination"
    PilotJobService(coordination=str(directory)).close()
    return directory


def test_a_healthy_setup_is_all_ok_and_exits_0(tmp_path: Path, troy_home: Path) -> None:
    directory = made_coordination(tmp_path)
    code, lines, err = doctor("--coordination", str(directory), troy_home=troy_home)
    assert code == 0, (lines, err)
    assert lines["coordination"] == [("ok", f"{directory.as_uri()} answers (1 services recorded)")]
    assert lines["private"][0][0] == "ok" and "(mode 0700)" in lines["private"][0][1]
    assert lines["plugins"][0][0] == "ok" and "plugins healthy" in lines["plugins"][0][1]
    assert lines["backend"][0][0] == "ok", lines["backend"]
    assert "started an agent that ran a unit" in lines["backend"][0][1]
    assert lines["environment"][0][0] == "ok"
    assert not list(troy_home.glob("pilots/*"))  # the test pilot is cleaned up


@pytest.mark.parametrize(
    ("mode", "fix", "opened"),
    [
        (0o777, "chmod go-w {directory}", "warn"),  # not opened: troy would refuse it
        (0o755, "chmod -R go-rwx {directory}", "ok"),  # opened, but others read its secrets
    ],
)
def test_a_coordination_others_can_write_or_read_fails_naming_the_chmod(
    tmp_path: Path, troy_home: Path, mode: int, fix: str, opened: str
) -> None:
    directory = made_coordination(tmp_path)
    directory.chmod(mode)
    code, lines, _ = doctor("--coordination", str(directory), troy_home=troy_home)
    assert code == 1
    mark, message = lines["private"][0]
    assert mark == "fail" and fix.format(directory=directory) in message, message
    assert f"{mode:04o}" in message
    assert lines["coordination"][0][0] == opened


def test_a_named_coordination_that_is_not_there_fails(tmp_path: Path, troy_home: Path) -> None:
    missing = tmp_path / "typo"
    code, lines, _ = doctor("--coordination", str(missing), troy_home=troy_home)
    assert code == 1
    mark, message = lines["coordination"][0]
    assert mark == "fail" and str(missing) in message
    assert not missing.exists()  # looking creates nothing


@pytest.mark.redis
def test_redis_on_this_host_without_a_password_warns_and_with_one_is_ok(
    troy_home: Path,
) -> None:
    with running_server() as server:
        code, lines, _ = doctor("--coordination", server.url, troy_home=troy_home)
        assert lines["coordination"][0][0] == "ok", lines
        mark, message = lines["private"][0]
        assert mark == "warn" and "give a password" in message and code == 0
    with running_server({"--requirepass": "doctor-secret"}) as server:
        url = server.url.replace("redis://", "redis://:doctor-secret@")
        code, lines, _ = doctor("--coordination", url, troy_home=troy_home)
        assert code == 0, lines
        assert lines["coordination"][0][0] == "ok"
        assert lines["private"] == [("ok", "redis on this host (password yes, TLS no)")]
        assert "doctor-secret" not in str(lines)
        wrong = server.url.replace("redis://", "redis://:wrong@")
        code, lines, _ = doctor("--coordination", wrong, troy_home=troy_home)
        assert code == 1 and lines["coordination"][0][0] == "fail"
        assert "wrong" not in str(lines)  # the password is never shown


@pytest.mark.redis
def test_a_redis_that_does_not_answer_fails_quickly(troy_home: Path) -> None:
    with running_server() as server:
        url = server.url
    code, lines, _ = doctor("--coordination", url, troy_home=troy_home)
    assert code == 1
    mark, message = lines["coordination"][0]
    assert mark == "fail" and "does not answer" in message


def test_redis_or_zmq_off_this_host_must_be_tls_with_a_password_or_curve() -> None:
    plain = check_private("redis://:pw@10.1.2.3:6379/0")
    assert plain.mark == "fail" and "rediss://" in plain.message
    open_server = check_private("rediss://10.1.2.3:6379/0")
    assert open_server.mark == "fail" and "give a password" in open_server.message
    assert check_private("rediss://:pw@10.1.2.3:6379/0").mark == "ok"
    assert check_private("tcp://10.1.2.3:5555?curve=off").mark == "fail"
    assert check_private("tcp://127.0.0.1:5555?curve=off").mark == "warn"
    assert check_private("tcp://10.1.2.3:5555").mark == "ok"


BROKEN_SCHEDULER = """
from troy.plugins.schedulers.base import Scheduler


class Half(Scheduler):
    name = "half"
"""


def test_a_broken_plugin_fails_naming_it(tmp_path: Path, troy_home: Path) -> None:
    site = tmp_path / "site"
    write_distribution(
        site,
        "troy-half",
        "0.1",
        {"troy_half": BROKEN_SCHEDULER},
        "[troy.schedulers]\nhalf = troy_half:Half\n",
    )
    path = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
    code, lines, _ = doctor(troy_home=troy_home, PYTHONPATH=path)
    assert code == 1
    [(mark, message)] = lines["plugins"]
    assert mark == "fail" and "scheduler half from troy-half 0.1 is BROKEN" in message
    assert "troy plugins --check scheduler.half" in message


def test_a_backend_that_cannot_start_an_agent_fails_saying_why(troy_home: Path) -> None:
    troy_home.mkdir(parents=True)
    (troy_home / "pilots").write_text("not a directory")  # where pilots make their sandboxes
    code, lines, _ = doctor(troy_home=troy_home)
    assert code == 1
    mark, message = lines["backend"][0]
    assert mark == "fail" and "local backend" in message, message
    assert str(troy_home / "pilots") in message


def test_troy_coordination_in_the_environment_is_checked_too(
    tmp_path: Path, troy_home: Path
) -> None:
    directory = made_coordination(tmp_path)
    missing = tmp_path / "elsewhere"
    code, lines, _ = doctor(
        "--coordination", str(directory), troy_home=troy_home, TROY_COORDINATION=str(missing)
    )
    assert code == 1
    mark, message = lines["environment"][-1]
    assert mark == "fail" and message.startswith("TROY_COORDINATION: ") and str(missing) in message


def test_a_zmq_broker_that_does_not_answer_fails_quickly(troy_home: Path) -> None:
    from zmq_fixtures import free_port

    started = time.monotonic()
    url = f"tcp://127.0.0.1:{free_port()}"
    code, lines, _ = doctor("--coordination", url, troy_home=troy_home)
    assert code == 1
    mark, message = lines["coordination"][0]
    assert mark == "fail" and "does not answer" in message, message
    assert lines["private"][0][0] == "ok"  # CURVE is on unless curve=off
    assert time.monotonic() - started < 60  # not the default 30 s retry per call
