"""The store conformance suite: what every ``troy.stores`` plugin must do.

Run it against a store with one subclass that says where the store lives::

    import pytest
    from troy.testing.stores import StoreSuite

    class TestMyStore(StoreSuite):
        @pytest.fixture
        def store_url(self, tmp_path):
            return f"mystore://bucket/{tmp_path.name}"

A store that needs options (keys, an endpoint) also overrides ``store_options``.
The store is opened through the registry, exactly as troy opens it, so the
plugin must be installed (its entry point in ``troy.stores``). Each test uses
fresh data-unit ids and deletes its units afterwards, so a long-lived store can
be shared. Tests that need a capability (``"glob"``) skip, with the reason,
when the store's class does not declare it.

``StoreSafetyTests`` hold every store to what the agent relies on when it stages
a unit into a sandbox: ``get`` writes only inside its destination, and replaces
(never writes through) a link already there.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from troy.model.errors import StoreError
from troy.plugins import registry
from troy.plugins.stores.base import Store, safe_name
from troy.testing.overrides import fixture_needed

#: Makes a local file: (name, content) -> its path as a string.
MakeFile = Callable[[str, bytes], str]
#: Gives a fresh data-unit id that is deleted after the test.
NewUnit = Callable[[], str]


def _require(store: Store, capability: str) -> None:
    if capability not in type(store).capabilities:
        pytest.skip(f"{type(store).__name__} does not declare capability {capability!r}")


def check_returned(store: Store, call: str, value: object, expected: str) -> None:
    """Assert ``value``, what ``call`` returned, is a list of str; else say what was expected."""
    name = getattr(type(store), "name", type(store).__name__)
    assert isinstance(value, list) and all(isinstance(item, str) for item in value), (
        f"store {name!r}'s {call} returned {type(value).__name__} {value!r:.80}, "
        f"expected {expected}"
    )


def _read_all(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in directory.iterdir() if path.is_file()}


class StoreFixtures:
    """Fixtures of the store suite; a subclass must override ``store_url``."""

    @pytest.fixture
    def store_url(self) -> str:
        """The URL of an empty (or shared) store location; override this."""
        fixture_needed(
            "StoreSuite",
            "store_url",
            "the URL of a location your store may write (the tests use fresh data-unit ids, "
            "so it may be shared; override 'store_options' for credentials)",
            'f"mystore://bucket/{tmp_path.name}"',
            "self, tmp_path",
        )

    @pytest.fixture
    def store_options(self) -> dict[str, Any]:
        """Options the store is opened with (credentials, endpoint); none unless overridden."""
        return {}

    @pytest.fixture
    def store(self, store_url: str, store_options: dict[str, Any]) -> Store:
        """The store plugin for ``store_url``, found by URL scheme through the registry."""
        plugin: type[Store] = registry.for_url("store", store_url)
        return plugin(store_url, store_options)

    @pytest.fixture
    def make_file(self, tmp_path: Path) -> MakeFile:
        """Writes local files to put, each in its own directory (so names may repeat)."""
        made = 0

        def make(name: str, content: bytes) -> str:
            nonlocal made
            made += 1
            folder = tmp_path / "local" / str(made)
            folder.mkdir(parents=True)
            path = folder / name
            path.write_bytes(content)
            return str(path)

        return make

    @pytest.fixture
    def new_unit(self, store: Store) -> Iterator[NewUnit]:
        """Hands out fresh unit ids, and deletes those units when the test ends."""
        ids: list[str] = []

        def new() -> str:
            ids.append(f"du-{uuid.uuid4().hex[:12]}")
            return ids[-1]

        yield new
        for unit_id in ids:
            store.delete(unit_id)

    @pytest.fixture
    def destination(self, tmp_path: Path) -> Path:
        """A local directory to get files into; not created, get must create it."""
        return tmp_path / "fetched" / "here"


class StoreRoundTripTests(StoreFixtures):
    """Files put into a unit come back, listed and whole."""

    def test_put_list_get_round_trip(
        self, store: Store, make_file: MakeFile, new_unit: NewUnit, destination: Path
    ) -> None:
        unit = new_unit()
        contents = {"a.txt": b"alpha\n", "b.bin": bytes(range(256)) * 4, "empty": b""}
        paths = [make_file(name, data) for name, data in contents.items()]

        assert sorted(store.put(unit, paths)) == sorted(contents)
        assert store.list(unit) == sorted(contents)
        assert store.get(unit, str(destination)) == sorted(contents)
        assert _read_all(destination) == contents

    def test_operations_return_the_contracts_types(
        self, store: Store, make_file: MakeFile, new_unit: NewUnit, destination: Path
    ) -> None:
        unit = new_unit()
        name = getattr(type(store), "name", type(store).__name__)

        put = store.put(unit, [make_file("b.txt", b"bb"), make_file("a.txt", b"a")])
        check_returned(store, "put", put, "the list of the names of the files put (str)")
        listed = store.list(unit)
        check_returned(store, "list", listed, "the sorted list of the unit's file names (str)")
        got = store.get(unit, str(destination))
        check_returned(store, "get", got, "the sorted list of the names of the files copied (str)")
        size = store.size(unit)
        assert isinstance(size, int) and not isinstance(size, bool), (
            f"store {name!r}'s size returned {type(size).__name__} {size!r}, expected the "
            "total bytes of the unit's files (int)"
        )
        url = store.unit_url(unit)
        assert isinstance(url, str), (
            f"store {name!r}'s unit_url returned {type(url).__name__}, expected a URL (str)"
        )
        assert (listed, got, size) == (["a.txt", "b.txt"], ["a.txt", "b.txt"], 3)

    def test_put_adds_to_an_existing_unit_and_replaces_same_names(
        self, store: Store, make_file: MakeFile, new_unit: NewUnit, destination: Path
    ) -> None:
        unit = new_unit()
        store.put(unit, [make_file("keep.txt", b"kept"), make_file("swap.txt", b"old")])
        store.put(unit, [make_file("swap.txt", b"new!"), make_file("more.txt", b"more")])

        assert store.list(unit) == ["keep.txt", "more.txt", "swap.txt"]
        store.get(unit, str(destination))
        assert _read_all(destination) == {
            "keep.txt": b"kept",
            "more.txt": b"more",
            "swap.txt": b"new!",
        }

    def test_file_names_with_spaces(
        self, store: Store, make_file: MakeFile, new_unit: NewUnit, destination: Path
    ) -> None:
        unit = new_unit()
        store.put(unit, [make_file("my input file.txt", b"spaced out")])

        assert store.list(unit) == ["my input file.txt"]
        assert store.get(unit, str(destination)) == ["my input file.txt"]
        assert (destination / "my input file.txt").read_bytes() == b"spaced out"

    def test_missing_unit_is_an_error(
        self, store: Store, new_unit: NewUnit, destination: Path
    ) -> None:
        unit = new_unit()
        with pytest.raises(StoreError):
            store.list(unit)
        with pytest.raises(StoreError):
            store.size(unit)
        with pytest.raises(StoreError):
            store.get(unit, str(destination))


class StoreGlobTests(StoreFixtures):
    """``get`` copies only the files whose names match one of the patterns."""

    def test_get_by_glob(
        self, store: Store, make_file: MakeFile, new_unit: NewUnit, destination: Path
    ) -> None:
        _require(store, "glob")
        unit = new_unit()
        names = ["a.txt", "b.txt", "c.dat", "notes.md"]
        store.put(unit, [make_file(name, name.encode()) for name in names])

        assert store.get(unit, str(destination), ["*.txt"]) == ["a.txt", "b.txt"]
        assert sorted(os.listdir(destination)) == ["a.txt", "b.txt"]

    def test_get_by_several_globs_returns_each_match_once(
        self, store: Store, make_file: MakeFile, new_unit: NewUnit, destination: Path
    ) -> None:
        _require(store, "glob")
        unit = new_unit()
        names = ["a.txt", "b.txt", "c.dat", "notes.md"]
        store.put(unit, [make_file(name, name.encode()) for name in names])

        copied = store.get(unit, str(destination), ["*.dat", "a*", "?.txt"])

        assert copied == ["a.txt", "b.txt", "c.dat"]
        assert _read_all(destination) == {name: name.encode() for name in copied}

    def test_glob_matching_nothing_copies_nothing(
        self, store: Store, make_file: MakeFile, new_unit: NewUnit, destination: Path
    ) -> None:
        _require(store, "glob")
        unit = new_unit()
        store.put(unit, [make_file("a.txt", b"a")])

        assert store.get(unit, str(destination), ["*.csv"]) == []
        assert not destination.exists() or not os.listdir(destination)

    def test_glob_with_spaces_in_names(
        self, store: Store, make_file: MakeFile, new_unit: NewUnit, destination: Path
    ) -> None:
        _require(store, "glob")
        unit = new_unit()
        store.put(unit, [make_file("run 1.log", b"1"), make_file("run 2.log", b"2")])
        store.put(unit, [make_file("run1.log", b"x")])

        assert store.get(unit, str(destination), ["run *.log"]) == ["run 1.log", "run 2.log"]


class StoreSizeTests(StoreFixtures):
    """``size`` is the total of the unit's file sizes in bytes."""

    def test_size_is_the_sum_of_file_sizes(
        self, store: Store, make_file: MakeFile, new_unit: NewUnit
    ) -> None:
        unit = new_unit()
        store.put(unit, [make_file("ten", b"0123456789"), make_file("zero", b"")])
        assert store.size(unit) == 10

        store.put(unit, [make_file("more", b"x" * 1234)])
        assert store.size(unit) == 1244


class StoreDeleteTests(StoreFixtures):
    """``delete`` removes a unit; deleting what is not there is fine."""

    def test_deleted_unit_is_gone(
        self, store: Store, make_file: MakeFile, new_unit: NewUnit
    ) -> None:
        unit = new_unit()
        store.put(unit, [make_file("a.txt", b"a")])

        store.delete(unit)

        with pytest.raises(StoreError):
            store.list(unit)

    def test_deleting_a_missing_unit_is_not_an_error(
        self, store: Store, make_file: MakeFile, new_unit: NewUnit
    ) -> None:
        never_made, deleted = new_unit(), new_unit()
        store.put(deleted, [make_file("a.txt", b"a")])
        store.delete(deleted)

        store.delete(never_made)
        store.delete(deleted)

        with pytest.raises(StoreError):
            store.list(deleted)


class StoreFailureTests(StoreFixtures):
    """A put that fails says which file, and leaves the unit as it was."""

    def test_put_of_a_missing_file_fails_and_leaves_the_unit_unchanged(
        self, store: Store, make_file: MakeFile, new_unit: NewUnit, tmp_path: Path
    ) -> None:
        unit = new_unit()
        store.put(unit, [make_file("a.txt", b"original")])
        missing = str(tmp_path / "no-such-input.dat")

        with pytest.raises(StoreError, match=r"no-such-input\.dat"):
            store.put(unit, [make_file("a.txt", b"changed"), make_file("b.txt", b"b"), missing])

        assert store.list(unit) == ["a.txt"]
        assert store.size(unit) == len(b"original")

    def test_put_of_a_missing_file_does_not_create_the_unit(
        self, store: Store, make_file: MakeFile, new_unit: NewUnit, tmp_path: Path
    ) -> None:
        unit = new_unit()
        missing = str(tmp_path / "no-such-input.dat")

        with pytest.raises(StoreError, match=r"no-such-input\.dat"):
            store.put(unit, [make_file("a.txt", b"a"), missing])

        with pytest.raises(StoreError):
            store.list(unit)


class StoreUnitTests(StoreFixtures):
    """Units are addressed by id: each has its own URL and its own files."""

    def test_unit_url_names_the_unit(self, store: Store, store_url: str, new_unit: NewUnit) -> None:
        unit, other = new_unit(), new_unit()

        url = store.unit_url(unit)

        assert unit in url
        assert url != store.unit_url(other)
        assert registry.scheme_of(url) == registry.scheme_of(store_url)

    def test_two_units_are_independent(
        self, store: Store, make_file: MakeFile, new_unit: NewUnit, destination: Path
    ) -> None:
        first, second = new_unit(), new_unit()
        store.put(first, [make_file("same.txt", b"first"), make_file("only-first", b"1")])
        store.put(second, [make_file("same.txt", b"second")])

        assert store.list(first) == ["only-first", "same.txt"]
        assert store.list(second) == ["same.txt"]
        store.delete(first)

        assert store.get(second, str(destination)) == ["same.txt"]
        assert (destination / "same.txt").read_bytes() == b"second"
        with pytest.raises(StoreError):
            store.list(first)


def _tree(root: Path) -> list[str]:
    """Every path under ``root``, relative to it, sorted (links not followed)."""
    return sorted(str(path.relative_to(root)) for path in root.rglob("*"))


class StoreSafetyTests(StoreFixtures):
    """Names cannot climb out of a directory; ``get`` writes only inside its destination."""

    @pytest.mark.parametrize(
        "name", ["", ".", "..", "../x", "a/b", "/etc/passwd", "a\\b", "..\\x", "a\0b"]
    )
    def test_safe_name_refuses_names_that_leave_a_directory(self, name: str) -> None:
        with pytest.raises(StoreError, match="unsafe file name"):
            safe_name(name)

    @pytest.mark.parametrize("name", ["a.txt", "my file", ".hidden", "..a", "a..", "-rf", "ü"])
    def test_safe_name_keeps_plain_names(self, name: str) -> None:
        assert safe_name(name) == name

    def test_put_refuses_paths_without_a_plain_file_name(
        self, store: Store, make_file: MakeFile, new_unit: NewUnit, tmp_path: Path
    ) -> None:
        unit = new_unit()
        folder = Path(make_file("a.txt", b"a")).parent
        backslashed = make_file("up\\x", b"a name Windows would split")

        for path in (f"{folder}/..", f"{folder}/", str(folder), backslashed):
            with pytest.raises(StoreError):
                store.put(unit, [path])

        with pytest.raises(StoreError):
            store.list(unit)

    def test_get_writes_only_inside_the_destination(
        self, store: Store, make_file: MakeFile, new_unit: NewUnit, tmp_path: Path
    ) -> None:
        unit = new_unit()
        names = ["a.txt", "b.bin", ".hidden"]
        store.put(unit, [make_file(name, name.encode()) for name in names])
        parent = tmp_path / "sandbox"
        destination = parent / "unit"

        assert store.get(unit, str(destination)) == sorted(names)
        store.get(unit, str(destination))  # again, over the files of the first get

        # Nothing beside the destination, no partial files left inside it.
        assert _tree(parent) == ["unit", *(f"unit/{name}" for name in sorted(names))]

    def test_get_replaces_links_in_the_destination_instead_of_writing_through_them(
        self, store: Store, make_file: MakeFile, new_unit: NewUnit, tmp_path: Path
    ) -> None:
        unit = new_unit()
        store.put(unit, [make_file("a.txt", b"from the store"), make_file("b.txt", b"b")])
        precious = tmp_path / "precious.txt"
        precious.write_bytes(b"must not change")
        not_there = tmp_path / "must-not-appear.txt"
        destination = tmp_path / "sandbox"
        destination.mkdir()
        (destination / "a.txt").symlink_to(precious)
        (destination / "b.txt").symlink_to(not_there)

        store.get(unit, str(destination))

        assert precious.read_bytes() == b"must not change"
        assert not not_there.exists()
        for name, content in (("a.txt", b"from the store"), ("b.txt", b"b")):
            assert not (destination / name).is_symlink()
            assert (destination / name).read_bytes() == content


class StoreSuite(
    StoreRoundTripTests,
    StoreGlobTests,
    StoreSizeTests,
    StoreDeleteTests,
    StoreFailureTests,
    StoreUnitTests,
    StoreSafetyTests,
):
    """Every store test; subclass it (as ``Test...``) and override ``store_url``."""
