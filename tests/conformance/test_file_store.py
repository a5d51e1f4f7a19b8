"""The file store: the store conformance suite (by URL and by plain path), then what is special."""

import os
from pathlib import Path

import pytest

from troy.model.errors import StoreError
from troy.plugins import registry
from troy.plugins.stores.file import FileStore
from troy.testing.stores import StoreSuite


class TestFileStoreByUrl(StoreSuite):
    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return (tmp_path / "pilot data").as_uri()


class TestFileStoreByPath(StoreSuite):
    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return str(tmp_path / "pd")


# What only the file store does; kept here because tests/unit/test_file_store.py is not ours to add.


def _store(root: Path) -> FileStore:
    return FileStore(root.as_uri())


def _source(tmp_path: Path, name: str, content: bytes = b"data") -> str:
    folder = tmp_path / "src"
    folder.mkdir(exist_ok=True)
    (folder / name).write_bytes(content)
    return str(folder / name)


class TestFileStoreLayout:
    @pytest.mark.parametrize(
        "url", ["file://{root}", "file://localhost{root}", "{root}", "file://{quoted}"]
    )
    def test_url_forms_name_the_same_root(self, tmp_path: Path, url: str) -> None:
        root = tmp_path / "pilot data"
        quoted = root.as_uri().removeprefix("file://")
        store = FileStore(url.format(root=root, quoted=quoted))

        store.put("du-1", [_source(tmp_path, "a.txt", b"abc")])

        assert (root / "du-1" / "a.txt").read_bytes() == b"abc"
        assert store.unit_url("du-1") == (root / "du-1").as_uri()

    def test_relative_path_is_made_absolute(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        store = FileStore("relative/pd")

        assert store.unit_url("du-1") == (tmp_path / "relative" / "pd" / "du-1").as_uri()

    def test_registry_picks_it_for_file_urls_and_plain_paths(self, tmp_path: Path) -> None:
        assert registry.for_url("store", tmp_path.as_uri()) is FileStore
        assert registry.for_url("store", str(tmp_path)) is FileStore
        assert registry.load("store", "file") is FileStore

    def test_remote_host_is_refused(self) -> None:
        with pytest.raises(StoreError, match="elsewhere"):
            FileStore("file://elsewhere/data")

    @pytest.mark.parametrize("bad_id", ["", ".", "..", "a/b", "../escape", "a/../b", "x..y"])
    def test_unit_ids_that_are_not_one_plain_name_are_refused(
        self, tmp_path: Path, bad_id: str
    ) -> None:
        store = _store(tmp_path / "pd")
        source = _source(tmp_path, "a.txt")

        for call in (
            lambda: store.put(bad_id, [source]),
            lambda: store.get(bad_id, str(tmp_path / "out")),
            lambda: store.list(bad_id),
            lambda: store.size(bad_id),
            lambda: store.delete(bad_id),
            lambda: store.unit_url(bad_id),
        ):
            with pytest.raises(StoreError, match="invalid data unit id"):
                call()
        assert not (tmp_path / "escape").exists()


class TestFileStoreWrites:
    def test_no_temporary_files_are_left_after_put_get_and_delete(self, tmp_path: Path) -> None:
        root, out = tmp_path / "pd", tmp_path / "out"
        store = _store(root)
        store.put("du-1", [_source(tmp_path, "a.txt")])
        store.get("du-1", str(out))
        store.put("du-2", [_source(tmp_path, "b.txt")])
        store.delete("du-2")

        assert sorted(p.name for p in root.iterdir()) == ["du-1"]
        assert [p.name for p in (root / "du-1").iterdir()] == ["a.txt"]
        assert [p.name for p in out.iterdir()] == ["a.txt"]

    def test_failed_put_leaves_no_temporary_files(self, tmp_path: Path) -> None:
        root = tmp_path / "pd"
        store = _store(root)
        store.put("du-1", [_source(tmp_path, "a.txt")])

        with pytest.raises(StoreError):
            store.put("du-1", [_source(tmp_path, "b.txt"), str(tmp_path / "missing")])

        assert sorted(p.name for p in root.iterdir()) == ["du-1"]

    def test_put_keeps_modification_times(self, tmp_path: Path) -> None:
        source = _source(tmp_path, "old.txt")
        os.utime(source, (1_000_000_000, 1_000_000_000))
        store = _store(tmp_path / "pd")

        store.put("du-1", [source])

        assert os.stat(tmp_path / "pd" / "du-1" / "old.txt").st_mtime == 1_000_000_000

    def test_get_keeps_modification_times(self, tmp_path: Path) -> None:
        source = _source(tmp_path, "old.txt")
        os.utime(source, (1_000_000_000, 1_000_000_000))
        store = _store(tmp_path / "pd")
        store.put("du-1", [source])

        store.get("du-1", str(tmp_path / "out"))

        assert os.stat(tmp_path / "out" / "old.txt").st_mtime == 1_000_000_000

    def test_put_of_a_directory_is_refused(self, tmp_path: Path) -> None:
        store = _store(tmp_path / "pd")

        with pytest.raises(StoreError, match="is not a file"):
            store.put("du-1", [str(tmp_path)])

    def test_two_sources_with_one_name_are_refused(self, tmp_path: Path) -> None:
        (tmp_path / "x").mkdir()
        (tmp_path / "x" / "a.txt").write_bytes(b"x")
        store = _store(tmp_path / "pd")

        with pytest.raises(StoreError, match=r"two files named 'a\.txt'"):
            store.put("du-1", [_source(tmp_path, "a.txt"), str(tmp_path / "x" / "a.txt")])
        with pytest.raises(StoreError):
            store.list("du-1")

    def test_os_errors_become_store_errors_naming_the_path(self, tmp_path: Path) -> None:
        blocker = tmp_path / "not-a-dir"
        blocker.write_bytes(b"")
        store = _store(tmp_path / "pd")
        store.put("du-1", [_source(tmp_path, "a.txt")])

        with pytest.raises(StoreError, match="not-a-dir"):
            store.get("du-1", str(blocker / "out"))
        with pytest.raises(StoreError, match="not-a-dir"):
            _store(blocker).put("du-1", [_source(tmp_path, "a.txt")])

    def test_subdirectories_in_a_unit_are_not_files(self, tmp_path: Path) -> None:
        store = _store(tmp_path / "pd")
        store.put("du-1", [_source(tmp_path, "a.txt", b"12345")])
        (tmp_path / "pd" / "du-1" / "stray").mkdir()

        assert store.list("du-1") == ["a.txt"]
        assert store.size("du-1") == 5


class TestFileStoreLinks:
    """A link inside a unit could point anywhere on the host: never followed."""

    def test_a_link_planted_in_a_unit_is_refused_on_get(self, tmp_path: Path) -> None:
        root, out = tmp_path / "pd", tmp_path / "out"
        secret = tmp_path / "secret.txt"
        secret.write_bytes(b"not for the sandbox")
        store = _store(root)
        store.put("du-1", [_source(tmp_path, "a.txt", b"a")])
        (root / "du-1" / "planted").symlink_to(secret)

        with pytest.raises(StoreError, match=r"planted.*symbolic link"):
            store.get("du-1", str(out))
        assert not out.exists() or not any(out.iterdir())

        assert store.get("du-1", str(out), ["a.txt"]) == ["a.txt"]
        assert [p.name for p in out.iterdir()] == ["a.txt"]

    def test_a_link_is_listed_but_its_target_not_counted(self, tmp_path: Path) -> None:
        root = tmp_path / "pd"
        big = tmp_path / "big"
        big.write_bytes(b"x" * 100_000)
        store = _store(root)
        store.put("du-1", [_source(tmp_path, "a.txt", b"12345")])
        (root / "du-1" / "planted").symlink_to(big)

        assert store.list("du-1") == ["a.txt", "planted"]
        assert store.size("du-1") == 5
