"""Another local user can neither read what a run keeps nor slip work into it (issue 17).

Real runs (``troy run`` in a process of its own, under umask 000 and 022;
real local pilots through the API), attacked by real processes of the local
user ``nobody``.  Needs root, to start those processes.
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from other_user import as_nobody, needs_root, open_to_others, write_as_nobody

import troy
from troy import State
from troy.testing.backends import wait_until

pytestmark = needs_root

BATCH = """\
pilots:
  - resource: fork://localhost
    number_of_processes: 2
units:
  - executable: /bin/echo
    arguments: ["unit $TROY_INDEX"]
    output: stdout.txt
    count: 3
"""


def others_may_touch(home: Path) -> list[str]:
    """What under ``home`` is not 0700 (directories) or 0600 (files).

    Unit sandboxes (``pilots/<pilot>/<unit>/``) hold what the units write,
    with the user's umask, as any program of theirs would: they are reached
    only through their pilot's directory, which must be private.
    """
    found = []
    for path in [home, *home.rglob("*")]:
        relative = path.relative_to(home).parts
        if (
            len(relative) > 2
            and relative[0] == "pilots"
            and (home.joinpath(*relative[:3]).is_dir())
        ):
            continue
        mode = stat.S_IMODE(path.lstat().st_mode)
        if mode != (0o700 if path.is_dir() else 0o600):
            found.append(f"{mode:04o} {path.relative_to(home)}")
    return found


@pytest.mark.parametrize("umask", [0o000, 0o022], ids=lambda m: f"umask{m:03o}")
def test_a_run_keeps_nothing_another_user_can_read_or_write(reachable: Path, umask: int) -> None:
    home = reachable / "home"
    batch = reachable / "batch.yaml"
    batch.write_text(BATCH)
    env = dict(os.environ, TROY_HOME=str(home))
    env.pop("TROY_COORDINATION", None)

    run = subprocess.run(
        [sys.executable, "-m", "troy", "run", str(batch)],
        capture_output=True, text=True, env=env, umask=umask, timeout=180,
    )  # fmt: skip

    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 units: 3 Done" in run.stdout
    assert len(list(home.glob("pilots/*/*/stdout.txt"))) == 3
    assert others_may_touch(home) == []
    records = list(home.glob("runs/*.json")) + list(home.glob("coordination/records/**/*.json"))
    pending = list(home.glob("coordination/queues/pilot/*/@pending"))
    assert records and pending
    for record in records:
        assert as_nobody("/bin/cat", str(record)).returncode != 0, record
    dropped = pending[0] / "00000000000000000001-evil-000001.000000000.jsonl"
    attempt = write_as_nobody(dropped, b"{}\n")
    assert attempt.returncode != 0 and not dropped.exists()


def test_an_agent_never_runs_a_unit_another_user_queued(
    reachable: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = reachable / "home"
    monkeypatch.setenv("TROY_HOME", str(home))
    pwned = reachable / "PWNED"
    url = (home / "coordination").as_uri()
    with troy.PilotJobService(coordination=url) as pilots, troy.WorkUnitService(
        coordination=url
    ) as units:  # fmt: skip
        units.add(pilots)
        pilot = pilots.create("fork://localhost", {"number_of_processes": 1})
        try:
            first = units.submit({"executable": "/bin/true"})
            assert first.wait(timeout=60) == State.Done
            pending = home / "coordination/queues/pilot" / pilot.id / "@pending"
            open_to_others(reachable, pending)
            # Named to sort before every item troy queues: the first one a claim takes.
            foreign = "00000000000000000001-evil-000001.000000000.jsonl"
            item = (
                f'{{"id":"wu-0123456789ab","service":"{units.id}","a":0,'
                f'"d":{{"executable":"/bin/touch","arguments":["{pwned}"]}}}}\n'
            )
            dropped = write_as_nobody(pending / foreign, item.encode())
            assert dropped.returncode == 0, dropped.stderr

            second = units.submit({"executable": "/bin/true"})
            assert second.wait(timeout=60) == State.Done
            set_aside = pending.parent / "@foreign" / foreign
            wait_until(lambda: set_aside.exists() or pwned.exists(), 30, "the bundle claimed")
            time.sleep(1.0)  # what the agent claimed would have started by now
        finally:
            pilots.cancel()
    assert not pwned.exists(), "the agent ran a unit another user queued"
    assert (set_aside.stat().st_uid, set_aside.read_text()) == (pwd.getpwnam("nobody").pw_uid, item)
