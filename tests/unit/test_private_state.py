"""troy's state is private whatever the umask, and only the user running troy writes it (issue 17).

Each umask is set in a child process (the umask is process-wide): what the
child makes is then looked at here.  The tests that play another local user
need root (they write files as ``nobody``).
"""

from __future__ import annotations

import json
import logging
import os
import pwd
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from other_user import needs_root, open_to_others, write_as_nobody

from troy.cli import main
from troy.model.errors import CoordinationError, NoCoordination
from troy.plugins.coordination.file import FileCoordination
from troy.plugins.coordination.file_format import BUNDLE
from troy.plugins.registry import open_coordination

UMASKS = [0o000, 0o022]


def run_with_umask(umask: int, code: str, *args: str) -> None:
    """Run python ``code`` (argv: ``args``) in a child process with ``umask``."""
    subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        check=True,
        umask=umask,
        timeout=120,
    )


def not_private(top: Path) -> list[str]:
    """Everything at or below ``top`` that group or others may touch: 'mode path'."""
    found = []
    for path in [top, *top.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        wanted = 0o700 if path.is_dir() else 0o600
        if mode != wanted:
            found.append(f"{mode:04o} {path.relative_to(top.parent)}")
    return found


def snapshot(top: Path) -> list[str]:
    return sorted(str(path.relative_to(top)) for path in top.rglob("*"))


@pytest.mark.parametrize("umask", UMASKS, ids=lambda m: f"umask{m:03o}")
def test_private_helpers_make_0700_directories_and_0600_files(tmp_path: Path, umask: int) -> None:
    run_with_umask(
        umask,
        """
        import os, sys
        from troy.model.private import private_mkdir, private_open, private_write
        private_mkdir(sys.argv[1] + "/a/b/c")
        os.close(private_open(sys.argv[1] + "/a/new", os.O_WRONLY | os.O_CREAT | os.O_EXCL))
        private_write(sys.argv[1] + "/a/b/record.json", b"{}")
        """,
        str(tmp_path),
    )

    assert not_private(tmp_path / "a") == []
    assert sorted(snapshot(tmp_path / "a")) == ["b", "b/c", "b/record.json", "new"]


def test_private_mkdir_leaves_directories_that_existed_as_they_were(tmp_path: Path) -> None:
    from troy.model.private import private_mkdir

    tmp_path.chmod(0o755)
    private_mkdir(tmp_path / "x")

    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "x").stat().st_mode) == 0o700


@pytest.mark.parametrize("umask", UMASKS, ids=lambda m: f"umask{m:03o}")
def test_every_file_and_folder_of_the_file_coordination_is_private(
    tmp_path: Path, umask: int
) -> None:
    run_with_umask(
        umask,
        """
        import sys
        from troy.plugins.coordination.file import FileCoordination
        c = FileCoordination(sys.argv[1], serve=True)
        c.put_record("service/s", {"a": 1})
        c.create_record("pilot/p", {"b": 2})
        c.allocate("ids", 3)
        c.append("service/s", [{"ev": "x"}])
        c.commit("service/s", [{"ev": "y"}], {"pilot/p": [{"id": "u1"}, {"id": "u2"}]})
        c.enqueue("pilot/p", [{"id": f"u{n}"} for n in range(3, 9)])
        c.claim("pilot/p", "agent", 3)  # the rest of a bundle is published back
        c.ack("pilot/p", "agent", ["u1"])
        c.withdraw("pilot/p", ["u7"])
        c.compact("service/s", [{"ev": "z"}])
        c.append("service/s", [{"ev": "after"}])
        """,
        str(tmp_path / "home" / "coordination"),
    )

    home = tmp_path / "home"
    assert {"records", "streams", "queues", "commits"} <= set(os.listdir(home / "coordination"))
    assert any(
        name.startswith("~summary.") for name in os.listdir(home / "coordination/streams/service/s")
    )
    assert not_private(home) == []


@pytest.mark.parametrize("umask", UMASKS, ids=lambda m: f"umask{m:03o}")
def test_an_agent_that_makes_the_troy_home_first_makes_it_private(
    tmp_path: Path, umask: int
) -> None:
    run_with_umask(
        umask,
        """
        import sys
        from pathlib import Path
        from troy.agent.guard import registry_directory
        registry_directory(Path(sys.argv[1]))
        """,
        str(tmp_path / "home"),
    )

    assert not_private(tmp_path / "home") == []


@pytest.mark.parametrize("mode", [0o775, 0o757, 0o777], ids=lambda m: f"{m:04o}")
@pytest.mark.parametrize("folder", ["", "records", "queues", "streams"], ids=lambda f: f or "root")
def test_a_coordination_directory_others_can_write_is_refused(
    tmp_path: Path, folder: str, mode: int
) -> None:
    root = tmp_path / "coordination"
    FileCoordination(str(root), serve=True).close()
    (root / folder).chmod(mode)

    for serve in (True, False):
        with pytest.raises(CoordinationError) as refused:
            FileCoordination(str(root), serve=serve)
        message = str(refused.value)
        assert f"refusing coordination directory {root}" in message
        assert f"chmod go-w {root / folder}".rstrip("/") in message
        assert f"mode {mode:04o}" in message


def test_a_manager_warns_of_a_coordination_others_can_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "coordination"
    root.mkdir(mode=0o755)
    root.chmod(0o755)  # as an older troy left it under umask 022

    with caplog.at_level(logging.WARNING, logger="troy.coordination"):
        FileCoordination(str(root), serve=True).close()

    assert "can be read by other users (mode 0755)" in caplog.text
    assert f"chmod -R go-rwx {root}" in caplog.text


@needs_root
def test_a_coordination_directory_of_another_user_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "coordination"
    FileCoordination(str(root), serve=True).close()
    nobody = pwd.getpwnam("nobody")
    os.chown(root / "queues", nobody.pw_uid, nobody.pw_gid)

    with pytest.raises(
        CoordinationError, match=r"owned by uid \d+, not by this process's uid 0 \(chown 0 "
    ):
        FileCoordination(str(root), serve=False)


@needs_root
def test_queue_items_another_user_drops_are_never_claimed_and_set_aside(
    reachable: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = reachable / "coordination"
    coordination = FileCoordination(str(root), serve=True)
    coordination.enqueue("pilot/p", [{"id": "mine-1"}])
    pending = root / "queues/pilot/p/@pending"
    open_to_others(root, pending)
    # Named to sort first: it would be the first item taken.
    foreign = "00000000000000000001-evil-000001.000000000.jsonl"
    assert BUNDLE.fullmatch(foreign)
    dropped = write_as_nobody(pending / foreign, b'{"id":"evil","d":{"executable":"/bin/touch"}}\n')
    assert dropped.returncode == 0, dropped.stderr
    coordination.enqueue("pilot/p", [{"id": "mine-2"}])

    with caplog.at_level(logging.WARNING, logger="troy.coordination"):
        for _ in range(2):
            assert coordination.withdraw("pilot/p", ["evil"]) == []
        taken = coordination.claim("pilot/p", "agent", 10)
        assert coordination.claim("pilot/p", "agent", 10) == []

    assert [item["id"] for item in taken] == ["mine-1", "mine-2"]
    assert os.listdir(root / "queues/pilot/p/@foreign") == [foreign]
    assert os.listdir(pending) == []
    assert "belongs to uid" in caplog.text and foreign in caplog.text
    assert caplog.text.count(f"{pending / foreign}:") == 1  # once, however often it is met


@needs_root
def test_records_streams_and_intents_of_another_user_are_not_read(reachable: Path) -> None:
    root = reachable / "coordination"
    coordination = FileCoordination(str(root), serve=True)
    coordination.append("service/s", [{"ev": "mine"}])
    coordination.put_record("pilot/p", {"mine": True})
    reader = FileCoordination(str(root))  # opened first: it would refuse the tree made below
    for folder in (root / "records/pilot", root / "streams/service/s"):
        open_to_others(root, folder)
    forged = [
        write_as_nobody(root / "records/pilot/q.json", b'{"forged": true}'),
        write_as_nobody(root / "streams/service/s/forger.jsonl", b'[{"ev": "forged"}]\n'),
    ]
    (root / "commits").mkdir()
    open_to_others(root, root / "commits")
    (root / "queues/pilot/p/@tmp").mkdir(parents=True)
    open_to_others(root, root / "queues/pilot/p/@tmp")
    staged = "queues/pilot/p/@tmp/commit.forged.00000000000000000001-x-1.000000000.jsonl"
    forged.append(write_as_nobody(root / staged, b'{"id":"evil"}\n'))
    intent = {"stream": "service/s", "file": None, "offset": None,
              "bundles": [[staged, "records/pilot/p.json"]]}  # fmt: skip
    forged.append(write_as_nobody(root / "commits/forged.json", json.dumps(intent).encode()))
    assert [process.returncode for process in forged] == [0, 0, 0, 0]

    assert reader.get_record("pilot/q") is None
    assert reader.get_record("pilot/p") == {"mine": True}
    assert [event["ev"] for event in reader.read("service/s")[0]] == ["mine"]
    assert reader.claim("pilot/p", "agent", 5) == []
    assert reader.get_record("pilot/p") == {"mine": True}  # the forged intent moved nothing


def test_opening_a_missing_coordination_to_read_creates_nothing(tmp_path: Path) -> None:
    typo = tmp_path / "coordinaton"
    (tmp_path / "empty").mkdir()
    before = snapshot(tmp_path)

    for path in (typo, tmp_path / "empty"):
        with pytest.raises(NoCoordination, match=f"no troy coordination at {path} "):
            open_coordination(path.as_uri())

    assert snapshot(tmp_path) == before


def test_troy_status_and_report_of_a_missing_coordination_create_nothing(
    tmp_path: Path, troy_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    typo = tmp_path / "coordinaton"
    before = snapshot(tmp_path)

    assert main(["status", "--coordination", str(typo)]) == 2
    assert main(["status", "--coordination", typo.as_uri(), "wus-1"]) == 2
    assert main(["report", "--coordination", str(typo), "wus-1"]) == 2
    assert main(["status"]) == 0  # troy's own default, before anything ran: empty

    out, err = capsys.readouterr()
    assert err.count(f"no troy coordination at {typo}") == 3
    assert "Traceback" not in err
    assert "no services in" in out
    assert snapshot(tmp_path) == before
    assert not troy_home.exists()


def test_a_data_unit_url_naming_another_directory_creates_nothing_there(tmp_path: Path) -> None:
    from troy.api.data_objects import DataUnit

    other = tmp_path / "other"
    other.mkdir()
    before = snapshot(tmp_path)

    with pytest.raises(NoCoordination, match=f"no troy coordination at {other}"):
        DataUnit.open(f"{other.as_uri()}#du-0123456789ab")

    assert snapshot(tmp_path) == before
