"""What only the file coordination plugin does: URLs, its files, and torn or corrupt lines.

Everything every coordination plugin must do is in tests/conformance/.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from troy.model.errors import CoordinationError
from troy.plugins.coordination.file import FileCoordination, root_of
from troy.plugins.registry import open_coordination


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file())


def _items(first: int, count: int) -> list[dict[str, Any]]:
    return [{"id": f"u{i:05d}"} for i in range(first, first + count)]


# -- URLs and the directory ----------------------------------------------------


@pytest.mark.parametrize(
    ("url", "root"),
    [
        ("file:///data/coord", "/data/coord"),
        ("file://localhost/data/coord", "/data/coord"),
        ("file:///data/with%20space/", "/data/with space"),
        ("/data/coord", "/data/coord"),
        ("/data/../data/coord/", "/data/coord"),
    ],
)
def test_root_of_urls_and_plain_paths(url: str, root: str) -> None:
    assert root_of(url) == root


def test_relative_path_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    coordination = FileCoordination("run/coord", serve=True)

    assert coordination.root == str(tmp_path / "run" / "coord")
    assert (tmp_path / "run" / "coord" / "records").is_dir()


@pytest.mark.parametrize(
    "url", ["file://otherhost/data", "file:///data?x=1", "file://", "redis://localhost/0"]
)
def test_root_of_refuses_what_is_not_a_local_directory(url: str) -> None:
    with pytest.raises(CoordinationError):
        root_of(url)


def test_registry_opens_a_plain_path(tmp_path: Path) -> None:
    coordination = open_coordination(str(tmp_path / "coord"), serve=True)

    assert isinstance(coordination, FileCoordination)
    assert coordination.root == str(tmp_path / "coord")


def test_missing_directories_are_created(tmp_path: Path) -> None:
    FileCoordination((tmp_path / "a" / "b" / "c").as_uri(), serve=True)

    assert sorted(os.listdir(tmp_path / "a" / "b" / "c")) == ["queues", "records", "streams"]


def test_directory_that_cannot_be_made_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "plain-file").write_text("not a directory")
    below = tmp_path / "plain-file" / "coord"

    with pytest.raises(CoordinationError, match=re.escape(str(tmp_path / "plain-file"))):
        FileCoordination(str(below), serve=True)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_directory_is_an_error_naming_it(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    (locked / "records").mkdir(parents=True)
    (locked / "streams").mkdir()
    (locked / "queues").mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(CoordinationError, match=re.escape(str(locked))):
            FileCoordination(str(locked), serve=True)
    finally:
        locked.chmod(0o700)


def test_dot_words_are_refused(tmp_path: Path) -> None:
    coordination = FileCoordination(str(tmp_path), serve=True)

    with pytest.raises(CoordinationError):
        coordination.put_record("a/./b", {})
    with pytest.raises(CoordinationError):
        coordination.append(".", [{"n": 1}])


# -- records -------------------------------------------------------------------


def test_records_are_json_files_and_listing_skips_temp_files(tmp_path: Path) -> None:
    coordination = FileCoordination(str(tmp_path), serve=True)
    coordination.put_record("service/a", {"id": "a"})
    (tmp_path / "records" / "service" / ".writer-1.tmp").write_text("{")
    (tmp_path / "records" / "service" / "notes.txt").write_text("")

    assert json.loads((tmp_path / "records" / "service" / "a.json").read_text()) == {"id": "a"}
    assert coordination.list_records("service") == ["service/a"]
    assert _files(tmp_path / "records" / "service") == [".writer-1.tmp", "a.json", "notes.txt"]


def test_corrupt_or_non_json_records_are_errors(tmp_path: Path) -> None:
    coordination = FileCoordination(str(tmp_path), serve=True)
    (tmp_path / "records" / "bad.json").write_text("{not json")

    with pytest.raises(CoordinationError, match=r"bad\.json"):
        coordination.get_record("bad")
    with pytest.raises(CoordinationError):
        coordination.put_record("r", {"when": object()})
    assert coordination.get_record("r") is None


# -- streams -------------------------------------------------------------------


def _stream_file(tmp_path: Path, stream: str) -> Path:
    (path,) = (tmp_path / "streams" / stream).glob("*.jsonl")
    return path


def test_each_connection_and_each_process_writes_its_own_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = (
        FileCoordination(str(tmp_path), serve=True),
        FileCoordination(str(tmp_path), serve=True),
    )
    first.append("s", [{"n": 1}])
    second.append("s", [{"n": 2}])
    assert len(_files(tmp_path / "streams" / "s")) == 2

    monkeypatch.setattr(os, "getpid", lambda: 4242)  # as in a forked child
    first.append("s", [{"n": 3}])

    assert len(_files(tmp_path / "streams" / "s")) == 3
    assert "-4242-" in first.writer


def test_a_batch_is_one_line(tmp_path: Path) -> None:
    coordination = FileCoordination(str(tmp_path), serve=True)
    coordination.append("s", [{"n": 1}, {"n": "two\nlines"}])

    assert _stream_file(tmp_path, "s").read_bytes() == b'[{"n":1},{"n":"two\\nlines"}]\n'


def test_torn_last_line_is_left_for_later(tmp_path: Path) -> None:
    coordination = FileCoordination(str(tmp_path), serve=True)
    coordination.append("s", [{"n": 1}])
    path = _stream_file(tmp_path, "s")
    with path.open("ab") as file:
        file.write(b'[{"n":2},{"n"')

    events, cursor = coordination.read("s")
    assert events == [{"n": 1}]
    assert cursor == {path.name: len(b'[{"n":1}]\n')}

    with path.open("ab") as file:
        file.write(b":3}]\n")
    assert coordination.read("s", cursor)[0] == [{"n": 2}, {"n": 3}]


def test_a_file_without_any_complete_line_reads_empty(tmp_path: Path) -> None:
    coordination = FileCoordination(str(tmp_path), serve=True)
    (tmp_path / "streams" / "s").mkdir()
    (tmp_path / "streams" / "s" / "other-1-aa.jsonl").write_bytes(b'[{"n":1}')

    assert coordination.read("s") == ([], {})


def test_lines_holding_one_event_are_read_too(tmp_path: Path) -> None:
    coordination = FileCoordination(str(tmp_path), serve=True)
    (tmp_path / "streams" / "s").mkdir()
    (tmp_path / "streams" / "s" / "tool.jsonl").write_bytes(b'{"n":1}\n[{"n":2}]\n\n')

    assert coordination.read("s")[0] == [{"n": 1}, {"n": 2}]


def test_a_corrupt_complete_line_is_an_error_naming_the_file(tmp_path: Path) -> None:
    coordination = FileCoordination(str(tmp_path), serve=True)
    (tmp_path / "streams" / "s").mkdir()
    (tmp_path / "streams" / "s" / "w.jsonl").write_bytes(b"[{broken\n")

    with pytest.raises(CoordinationError, match=r"w\.jsonl"):
        coordination.read("s")


@pytest.mark.parametrize(
    "cursor", ["abc", [1], {"w.jsonl": -1}, {"w.jsonl": "3"}, {"w.jsonl": 1.5}]
)
def test_foreign_cursors_are_refused(tmp_path: Path, cursor: object) -> None:
    with pytest.raises(CoordinationError, match="cursor"):
        FileCoordination(str(tmp_path), serve=True).read("s", cursor)


def test_a_failed_write_leaves_no_torn_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    coordination = FileCoordination(str(tmp_path), serve=True)
    coordination.append("s", [{"n": 1}])
    real_write, calls = os.write, []

    def write_half_then_fail(fd: int, data: bytes) -> int:
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", write_half_then_fail)
    with pytest.raises(CoordinationError, match="No space left"):
        coordination.append("s", [{"n": 2, "pad": "x" * 100}])
    monkeypatch.undo()
    coordination.append("s", [{"n": 3}])

    assert len(calls) == 2
    assert coordination.read("s")[0] == [{"n": 1}, {"n": 3}]


# -- queues --------------------------------------------------------------------


def test_claimed_file_holds_exactly_the_claimed_items(tmp_path: Path) -> None:
    coordination = FileCoordination(str(tmp_path), serve=True)
    coordination.enqueue("q", _items(0, 1000))

    assert coordination.claim("q", "agent-1", 10) == _items(0, 10)

    queue = tmp_path / "queues" / "q"
    (claimed,) = (queue / "@claimed" / "agent-1").iterdir()
    assert [json.loads(line) for line in claimed.read_text().splitlines()] == _items(0, 10)
    # The rest went back in pieces of 10, 10, 20, 40, ...: few files, oldest first by name.
    pending = _files(queue / "@pending")
    assert [name.split(".")[1] for name in pending] == [
        f"{start:09d}" for start in (10, 20, 30, 50, 90, 170, 330, 650)
    ]
    assert _files(queue / "@tmp") == []


def test_bundles_are_named_in_enqueue_order(tmp_path: Path) -> None:
    coordination = FileCoordination(str(tmp_path), serve=True)
    for n in range(50):
        coordination.enqueue("q", _items(n, 1))

    pending = tmp_path / "queues" / "q" / "@pending"
    names = _files(pending)
    assert [json.loads((pending / name).read_text())["id"] for name in names] == [
        f"u{n:05d}" for n in range(50)
    ]


def test_stray_files_in_pending_are_ignored(tmp_path: Path) -> None:
    coordination = FileCoordination(str(tmp_path), serve=True)
    coordination.enqueue("q", _items(0, 2))
    (tmp_path / "queues" / "q" / "@pending" / "README.txt").write_text("hi")

    assert coordination.claim("q", "c", 10) == _items(0, 2)
    assert coordination.withdraw("q", ["u00000"]) == []


def test_withdraw_leaves_no_private_files(tmp_path: Path) -> None:
    coordination = FileCoordination(str(tmp_path), serve=True)
    coordination.enqueue("q", _items(0, 5))

    assert coordination.withdraw("q", ["u00002"]) == ["u00002"]
    assert _files(tmp_path / "queues" / "q" / "@tmp") == []
    assert coordination.claim("q", "c", 10) == _items(0, 2) + _items(3, 2)


def test_items_need_a_string_id(tmp_path: Path) -> None:
    coordination = FileCoordination(str(tmp_path), serve=True)

    with pytest.raises(CoordinationError, match="id"):
        coordination.enqueue("q", [{"id": "a"}, {"name": "no id"}])
    with pytest.raises(CoordinationError, match="id"):
        coordination.enqueue("q", [{"id": 7}])
    assert coordination.claim("q", "c", 10) == []


def test_claim_of_no_items_takes_nothing(tmp_path: Path) -> None:
    coordination = FileCoordination(str(tmp_path), serve=True)
    coordination.enqueue("q", _items(0, 2))

    assert coordination.claim("q", "c", 0) == []
    assert coordination.claim("q", "c", 5) == _items(0, 2)


def test_queue_folders_removed_underneath_are_made_again(tmp_path: Path) -> None:
    coordination = FileCoordination(str(tmp_path), serve=True)
    coordination.enqueue("q", _items(0, 1))
    assert coordination.claim("q", "c", 5) == _items(0, 1)
    for folder in ("@pending", "@tmp", "@claimed/c"):
        for path in (tmp_path / "queues" / "q" / folder).iterdir():
            path.unlink()
        (tmp_path / "queues" / "q" / folder).rmdir()

    coordination.enqueue("q", _items(1, 1))

    assert coordination.claim("q", "c", 5) == _items(1, 1)


#: Commits in a process that dies (os._exit, no cleanup) at the step named by argv[2].
COMMIT_AND_DIE = """
import os, sys
from troy.plugins.coordination import file as plugin
from troy.plugins.coordination.file import FileCoordination

root, step = sys.argv[1], sys.argv[2]


def die(*args, **kwargs):
    os._exit(3)


if step == "after the stream line":
    FileCoordination.enqueue = die  # a commit that appends, then enqueues
    plugin.roll_forward = die  # a commit that stages, then moves into the queues
else:
    FileCoordination._commit_hook = lambda at: at == step and die()
items = [{"id": f"u{i}"} for i in range(3)]
FileCoordination(root, serve=True).commit("svc", [{"n": 1}], {"q1": items[:2], "q2": items[2:]})
"""


@pytest.mark.parametrize("step", ["staged", "intent", "after the stream line"])
def test_a_commit_cut_short_by_a_crash_is_all_or_nothing(tmp_path: Path, step: str) -> None:
    root = tmp_path / "coordination"
    died = subprocess.run(
        [sys.executable, "-c", COMMIT_AND_DIE, str(root), step], capture_output=True, text=True
    )
    assert died.returncode == 3, died.stderr

    survivor = FileCoordination(str(root), serve=True)
    events, _ = survivor.read("svc")
    items = survivor.claim("q1", "c", 10) + survivor.claim("q2", "c", 10)
    assert (events, items) in (
        ([], []),
        ([{"n": 1}], [{"id": "u0"}, {"id": "u1"}, {"id": "u2"}]),
    ), f"after a crash at {step}: events {events}, items {items}"
    assert survivor.withdraw("q1", ["u0"]) == []


def test_a_commit_crashed_after_its_line_is_finished_by_a_withdraw_too(tmp_path: Path) -> None:
    root = tmp_path / "coordination"
    died = subprocess.run(
        [sys.executable, "-c", COMMIT_AND_DIE, str(root), "after the stream line"],
        capture_output=True,
        text=True,
    )
    assert died.returncode == 3, died.stderr

    survivor = FileCoordination(str(root), serve=True)
    assert survivor.withdraw("q1", ["u1"]) == ["u1"]
    assert survivor.claim("q1", "c", 10) == [{"id": "u0"}]
    assert os.listdir(root / "commits") == []


def test_a_compaction_cut_short_by_a_full_disk_leaves_the_stream_readable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: the marker was written first, the summary failed (ENOSPC), and every
    read after that raised "kept changing" for ever (found by the chaos campaign,
    seed 306)."""
    from troy.plugins.coordination.file_format import MARKER

    store = FileCoordination(str(tmp_path / "c"), serve=True)
    store.append("service/s", [{"ev": "unit", "id": "s.0"}, {"ev": "unit", "id": "s.1"}])
    publish = store._publish

    def full_disk(path: str, data: bytes, tmp_dir: str) -> None:
        raise CoordinationError(f"cannot write {path}: [Errno 28] No space left on device")

    monkeypatch.setattr(store, "_publish", full_disk)
    with pytest.raises(CoordinationError, match="No space left"):
        store.compact("service/s", [{"ev": "unit", "id": "s.0"}])
    folder = tmp_path / "c" / "streams" / "service" / "s"
    assert not (folder / MARKER).exists()
    reader = FileCoordination(str(tmp_path / "c"), serve=True)
    assert [e["id"] for e in reader.read("service/s")[0]] == ["s.0", "s.1"]
    monkeypatch.setattr(store, "_publish", publish)
    assert store.compact("service/s", [{"ev": "unit", "id": "s.0"}])
    assert [e["id"] for e in reader.read("service/s")[0]] == ["s.0"]


def test_a_marker_left_by_a_compaction_killed_mid_swap_goes_stale(tmp_path: Path) -> None:
    """A process killed between the marker and the summary's rename: once the marker is
    older than a swap can take, readers read the stream's files as they are."""
    from troy.plugins.coordination import file_streams
    from troy.plugins.coordination.file_format import MARKER

    store = FileCoordination(str(tmp_path / "c"), serve=True)
    store.append("service/s", [{"ev": "unit", "id": "s.0"}])
    marker = tmp_path / "c" / "streams" / "service" / "s" / MARKER
    marker.touch()
    old = marker.stat().st_mtime - file_streams.STALE_MARKER - 1
    os.utime(marker, (old, old))
    assert [
        e["id"] for e in FileCoordination(str(tmp_path / "c"), serve=True).read("service/s")[0]
    ] == ["s.0"]


# -- what someone else dropped into a queue (issue 17) ----------------------------------------


def test_a_claim_drops_lines_and_files_that_are_not_items_and_keeps_the_good_ones(
    tmp_path: Path,
) -> None:
    """Lines that are not JSON, a FIFO (reading it would block for good), a folder and a
    symbolic link named like bundles: dropped with a warning; the items around them are
    claimed, acknowledged and withdrawn as ever."""
    coordination = open_coordination(str(tmp_path / "c"), serve=True)
    coordination.enqueue("q", _items(0, 2))
    pending = tmp_path / "c" / "queues" / "q" / "@pending"
    bundle = sorted(pending.iterdir())[0].name
    stem = bundle.split("-", 1)[1]
    planted = [f"{int(bundle[:20]) + n:020d}-{stem}" for n in range(1, 5)]
    (pending / planted[0]).write_bytes(b'not JSON\n{"id": "u-half\n["a list"]\n')
    os.mkfifo(pending / planted[1])
    (pending / planted[2]).mkdir()
    (pending / planted[3]).symlink_to(tmp_path / "secret")
    (tmp_path / "secret").write_text('{"id": "from a link"}\n')
    coordination.enqueue("q", _items(2, 2))

    claimed = coordination.claim("q", "me", 100)
    assert claimed == [*_items(0, 2), ["a list"], *_items(2, 2)]
    coordination.ack("q", "me", ["u00000", "u00001", "u00002", "u00003"])
    aside = tmp_path / "c" / "queues" / "q" / "@foreign"
    assert sorted(path.name for path in aside.iterdir()) == planted[1:]
    coordination.enqueue("q", _items(4, 1))
    (pending / planted[2]).mkdir()  # in the queue again, before a withdraw
    assert coordination.withdraw("q", ["u00004"]) == ["u00004"]


def test_a_read_parses_many_batches_in_runs_and_keeps_their_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from troy.plugins.coordination import file_streams

    monkeypatch.setattr(file_streams, "PARSE_CHUNK", 64)  # a few lines a run
    writer = FileCoordination(tmp_path.as_uri(), serve=True)
    for first in range(0, 60, 3):
        writer.append("s", [{"ev": "x", "n": n} for n in range(first, first + 3)])
    writer.commit("s", [{"ev": "x", "n": n} for n in range(60, 2060)], {})  # one large line
    events, _ = FileCoordination(tmp_path.as_uri()).read("s")
    assert [event["n"] for event in events] == list(range(2060))
