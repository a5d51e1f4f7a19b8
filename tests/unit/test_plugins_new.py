"""`troy plugins new KIND NAME`: the files it writes, and the input it refuses.

tests/integration/test_plugins_new.py installs the generated packages and runs their tests.
"""

from __future__ import annotations

import ast
import inspect
import tomllib
from pathlib import Path

import pytest

from troy.cli import main
from troy.cli.scaffold import render
from troy.plugins import registry
from troy.plugins.contracts import CONTRACTS

KINDS = ["backend", "scheduler", "store", "coordination", "launcher"]
#: The kinds whose suite needs fixtures the package declares under troy.conformance.
WITH_FIXTURES = ["backend", "store", "coordination"]
CLASSES = {
    "backend": "MineBackend",
    "scheduler": "MineScheduler",
    "store": "MineStore",
    "coordination": "MineCoordination",
    "launcher": "MineLauncher",
}


def new(*words: str) -> int:
    return main(["plugins", "new", *words])


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_gets_a_package_with_its_entry_point_tests_and_readme(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "out"
    assert new(kind, "mine", "--dir", str(target)) == 0
    written = sorted(str(path.relative_to(target)) for path in target.rglob("*") if path.is_file())
    expected = [
        "README.md",
        "pyproject.toml",
        "src/troy_mine/__init__.py",
        f"src/troy_mine/{kind}.py",
        "src/troy_mine/py.typed",
        "tests/conftest.py",
        "tests/test_conformance.py",
    ]
    if kind in WITH_FIXTURES:
        expected.append("src/troy_mine/conformance.py")
    assert written == sorted(expected)
    out = capsys.readouterr().out
    assert out.startswith(f"wrote the {kind} plugin 'mine' into {target}:\n")
    assert all(f"  {path}\n" in out for path in expected)

    project = tomllib.loads((target / "pyproject.toml").read_text())["project"]
    assert project["name"] == "troy-mine"
    assert project["dependencies"] == ["troy"]
    entry_points = project["entry-points"]
    assert entry_points[registry.KINDS[kind]] == {"mine": f"troy_mine.{kind}:{CLASSES[kind]}"}
    if kind in WITH_FIXTURES:
        assert entry_points["troy.conformance"] == {
            f"{kind}.mine": f"troy_mine.conformance:{CLASSES[kind]}Fixtures"
        }
    else:
        assert "troy.conformance" not in entry_points
    for path in target.rglob("*.py"):
        ast.parse(path.read_text(), str(path))
    assert f"troy plugins --check {kind}.mine --suite" in (target / "README.md").read_text()


@pytest.mark.parametrize("kind", KINDS)
def test_the_class_has_every_abstract_method_of_its_contract_with_its_signature(
    kind: str,
) -> None:
    source = render(kind, "mine")[f"src/troy_mine/{kind}.py"]
    contract = CONTRACTS[kind]
    assert f'contract_version: ClassVar[str] = "{contract.version}"' in source
    assert 'name: ClassVar[str] = "mine"' in source
    assert "option_specs: ClassVar[Mapping[str, Option]] = {}" in source
    assert "#:     " in source  # the commented example Option
    tree = ast.parse(source)
    (plugin,) = [node for node in tree.body if isinstance(node, ast.ClassDef)]
    methods = {node.name: node for node in plugin.body if isinstance(node, ast.FunctionDef)}
    abstract = contract.base.__abstractmethods__  # type: ignore[attr-defined]
    assert set(methods) == set(abstract)
    for name in abstract:
        wanted = list(inspect.signature(getattr(contract.base, name)).parameters)
        got = [a.arg for a in (*methods[name].args.args, *methods[name].args.kwonlyargs)]
        assert got == wanted, name
        assert ast.get_docstring(methods[name]), name
    if kind != "scheduler":
        assert source.count("raise NotImplementedError(") == len(abstract)


def test_the_package_goes_into_troy_name_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert new("launcher", "wrapper") == 0
    assert (tmp_path / "troy-wrapper" / "src" / "troy_wrapper" / "launcher.py").is_file()
    assert [path.name for path in tmp_path.iterdir()] == ["troy-wrapper"]  # no staging left


def test_an_empty_target_directory_is_used(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert new("store", "vault", "--dir", str(tmp_path / "empty")) == 0
    assert (tmp_path / "empty" / "pyproject.toml").is_file()


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["bogus", "mine"], "unknown plugin kind 'bogus'; kinds: backend, scheduler, store"),
        (["scheduler", "Mine"], "plugin name 'Mine' is not an entry-point name troy takes"),
        (["scheduler", "my-sched"], "plugin name 'my-sched' is not an entry-point name"),
        (["scheduler", "2fast"], "plugin name '2fast' is not an entry-point name"),
        (["scheduler", "class"], "plugin name 'class' is not an entry-point name"),
        (["scheduler", "round_robin"], "troy ships a scheduler named 'round_robin'"),
        (["coordination", "file"], "troy ships a coordination named 'file'"),
        (["store", "my_store"], "a store's name is also its URL scheme (my_store://...)"),
        (["scheduler"], "usage: troy plugins new KIND NAME [--dir D]"),
        (["scheduler", "a", "b"], "usage: troy plugins new KIND NAME [--dir D]"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(
    words: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert new(*words) == 2
    err = capsys.readouterr().err
    assert err.startswith("troy plugins new: ") and message in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_a_non_empty_target_is_refused_and_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "taken"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    assert new("scheduler", "mine", "--dir", str(target)) == 2
    err = capsys.readouterr().err
    assert err == f"troy plugins new: {target} exists and is not an empty directory\n"
    assert [path.name for path in target.iterdir()] == ["keep.txt"]
    assert [path.name for path in tmp_path.iterdir()] == ["taken"]


def test_new_goes_alone(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["plugins", "new", "store", "x", "--dir", str(tmp_path / "x"), "--check"]) == 2
    assert "new goes alone" in capsys.readouterr().err
    assert main(["plugins", "list"]) == 2
    assert "usage: troy plugins new KIND NAME" in capsys.readouterr().err
