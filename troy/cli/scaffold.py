"""``troy plugins new KIND NAME``: a pip-installable package for a new plugin, from its contract.

The plugin class is written from the kind's contract (`troy.plugins.contracts`):
every abstract method with its signature, as `inspect` reads it, and the first
paragraph of its docstring, so a generated package stays true when a contract
changes.  A scheduler gets a working least-loaded strategy (its suite passes
as generated); the other kinds raise NotImplementedError saying what to write, so
their generated tests fail with exactly that.
"""

from __future__ import annotations

import inspect
import keyword
import re
import shutil
import sys
import tempfile
import textwrap
from pathlib import Path

from troy.model.errors import TroyError
from troy.plugins import registry
from troy.plugins.contracts import CONTRACTS
from troy.testing.declared import SUITES

#: An entry-point name a plugin may take: lowercase letters, digits, underscores.
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*")
#: The class-name suffix and module of each kind's plugin.
SUFFIX = {
    "backend": "Backend",
    "scheduler": "Scheduler",
    "store": "Store",
    "coordination": "Coordination",
    "launcher": "Launcher",
}

#: The kinds chosen by URL scheme: their name is the scheme, so it takes no underscore.
URL_KINDS = ("backend", "store", "coordination")


class ScaffoldError(TroyError):
    """``troy plugins new`` refuses its arguments (exit 2, nothing written)."""


def check(kind: str, name: str, directory: Path) -> None:
    """ScaffoldError, in one line, unless a package for ``kind`` ``name`` may go into directory."""
    if kind not in SUFFIX:
        raise ScaffoldError(f"unknown plugin kind {kind!r}; kinds: {', '.join(SUFFIX)}")
    if not NAME_PATTERN.fullmatch(name) or keyword.iskeyword(name):
        raise ScaffoldError(
            f"plugin name {name!r} is not an entry-point name troy takes: lowercase letters, "
            "digits and underscores, starting with a letter"
        )
    if "_" in name and kind in URL_KINDS:
        raise ScaffoldError(
            f"a {kind}'s name is also its URL scheme ({name}://...), which cannot hold '_': "
            f"say {name.replace('_', '')!r}"
        )
    shipped = sorted(
        info.name
        for info in registry.installed(kind)
        if registry.canonical(info.distribution) == registry.TROY
    )
    if name in shipped:
        raise ScaffoldError(
            f"troy ships a {kind} named {name!r} and would ignore yours; "
            f"pick another name (troy's: {', '.join(shipped)})"
        )
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise ScaffoldError(f"{directory} exists and is not an empty directory")


def create(kind: str, name: str, directory: Path) -> list[str]:
    """Write the package into ``directory`` (checked first); the files written, sorted."""
    check(kind, name, directory)
    files = render(kind, name)
    directory.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the target, then moved into place: a failure leaves nothing behind.
    with tempfile.TemporaryDirectory(prefix=".troy-new-", dir=directory.parent) as staging:
        root = Path(staging) / "package"
        for relative, text in files.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        if directory.exists():
            directory.rmdir()  # empty, as check() made sure
        shutil.move(str(root), str(directory))
    return sorted(files)


def render(kind: str, name: str) -> dict[str, str]:
    """The package's files: relative path -> text."""
    package = f"troy_{name}"
    files = {
        "pyproject.toml": _pyproject(kind, name),
        "README.md": _readme(kind, name),
        f"src/{package}/__init__.py": (
            f'"""troy-{name}: the {kind} plugin {name!r} for troy."""\n\n'
            f"from {package}.{kind} import {_class_name(kind, name)}\n\n"
            f'__all__ = ["{_class_name(kind, name)}"]\n'
        ),
        f"src/{package}/py.typed": "",
        f"src/{package}/{kind}.py": _plugin_module(kind, name),
        "tests/conftest.py": CONFTEST,
        "tests/test_conformance.py": _test_module(kind, name),
    }
    if SUITES[kind][2]:
        files[f"src/{package}/conformance.py"] = _fixtures_module(kind, name)
    return files


def _class_name(kind: str, name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_") if part) + SUFFIX[kind]


def _fixtures_class(kind: str, name: str) -> str:
    return _class_name(kind, name) + "Fixtures"


def _pyproject(kind: str, name: str) -> str:
    package = f"troy_{name}"
    text = f"""\
        [build-system]
        requires = ["setuptools>=77"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "troy-{name.replace("_", "-")}"
        version = "0.1.0"
        description = "The troy {kind} plugin '{name}'."
        readme = "README.md"
        requires-python = ">=3.11"
        dependencies = ["troy"]

        [project.optional-dependencies]
        test = ["pytest>=8"]

        [project.entry-points."{registry.KINDS[kind]}"]
        {name} = "{package}.{kind}:{_class_name(kind, name)}"
        """
    if SUITES[kind][2]:
        text += f"""
        # What troy's {kind} suite needs to reach the plugin (src/{package}/conformance.py):
        # `troy plugins --check {kind}.{name} --suite` uses it.
        [project.entry-points."{registry.CONFORMANCE_GROUP}"]
        "{kind}.{name}" = "{package}.conformance:{_fixtures_class(kind, name)}"
        """
    text += f"""
        [tool.setuptools.package-data]
        {package} = ["py.typed"]

        [tool.ruff]
        line-length = 100
        """
    return textwrap.dedent(text)


def _abstract_methods(kind: str) -> list[str]:
    base = CONTRACTS[kind].base
    abstract: frozenset[str] = base.__abstractmethods__  # type: ignore[attr-defined]
    return sorted(
        abstract,
        key=lambda method: inspect.getsourcelines(getattr(base, method))[1],
    )


#: What a parameter's name is written after, by its kind.
STARS: dict[inspect._ParameterKind, str] = {
    inspect.Parameter.VAR_POSITIONAL: "*",
    inspect.Parameter.VAR_KEYWORD: "**",
}


def _signature(function: object) -> tuple[str, set[str]]:
    """``(self, a: int) -> str`` as the contract writes it, and the names its annotations use."""
    signature = inspect.signature(function)  # type: ignore[arg-type]
    names: set[str] = set()

    def annotation(value: object) -> str:
        text = value if isinstance(value, str) else inspect.formatannotation(value)
        names.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))
        return text

    parameters = []
    star_done = False
    for parameter in signature.parameters.values():
        if parameter.kind is parameter.KEYWORD_ONLY and not star_done:
            parameters.append("*")
            star_done = True
        if parameter.kind is parameter.VAR_POSITIONAL:
            star_done = True
        prefix = STARS.get(parameter.kind, "")
        text = prefix + parameter.name
        if parameter.annotation is not parameter.empty:
            text += f": {annotation(parameter.annotation)}"
            if parameter.default is not parameter.empty:
                text += f" = {_literal(parameter.default)}"
        elif parameter.default is not parameter.empty:
            text += f"={_literal(parameter.default)}"
        parameters.append(text)
    returned = ""
    if signature.return_annotation is not signature.empty:
        returned = f" -> {annotation(signature.return_annotation)}"
    return f"({', '.join(parameters)}){returned}", names


def _imports(kind: str, names: set[str]) -> list[str]:
    """``from module import Name`` for each annotation name the contract's module defines."""
    contract = CONTRACTS[kind].base
    namespace = vars(inspect.getmodule(contract))
    by_module: dict[str, set[str]] = {}
    for used in sorted(names):
        if used not in namespace or used == "None":
            continue  # a builtin (str, dict, ...)
        value = namespace[used]
        module = str(getattr(value, "__module__", ""))
        if getattr(sys.modules.get(module), used, None) is not value:
            module = contract.__module__  # a type alias, say: import it from the contract
        by_module.setdefault(module, set()).add(used)
    return [
        f"from {module} import {', '.join(sorted(found))}"
        for module, found in sorted(by_module.items())
    ]


def _summary(function: object) -> str:
    """The docstring's first paragraph, one line."""
    doc = inspect.getdoc(function) or ""
    return " ".join(doc.split("\n\n")[0].split())


def _literal(value: object) -> str:
    """``repr`` with double quotes, as ruff format writes it."""
    text = repr(value)
    return text.replace("'", '"') if '"' not in text else text


def _message(class_name: str, method: str, function: object) -> str:
    """``raise NotImplementedError(...)`` saying what to implement, in lines that fit."""
    words = f"{class_name}.{method}: {_summary(function)}"
    fits = 12 + len(_literal(words)) <= 100
    pieces = [words] if fits else textwrap.wrap(words, 84, drop_whitespace=False)
    lines = "\n".join(f"    {_literal(piece)}" for piece in pieces)
    return f"raise NotImplementedError(\n{lines}\n)"


def _def(method: str, signature: str) -> str:
    """``def method(...) -> ...:``, its parameters one a line when the line would be long."""
    line = f"    def {method}{signature}:"
    if len(line) <= 100:
        return line
    inside, _, returned = signature[1:].rpartition(")")
    parameters = [part.strip() for part in _split_parameters(inside)]
    listed = "".join(f"        {parameter},\n" for parameter in parameters)
    return f"    def {method}(\n{listed}    ){returned}:"


def _split_parameters(text: str) -> list[str]:
    """Split at the commas outside brackets."""
    parts, depth, current = [], 0, ""
    for character in text:
        depth += character in "([{"
        depth -= character in ")]}"
        if character == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += character
    return [*parts, current] if current.strip() else parts


def _import_lines(kind: str, names: set[str]) -> str:
    """The module's imports, grouped and sorted as ruff's isort does."""
    by_module: dict[str, set[str]] = {"typing": {"ClassVar"}}
    for line in _imports(kind, names):
        module, _, found = line[len("from ") :].partition(" import ")
        by_module.setdefault(module, set()).update(found.split(", "))
    base = CONTRACTS[kind].base
    by_module.setdefault(base.__module__, set()).add(base.__name__)
    standard = sorted(m for m in by_module if not m.startswith("troy"))
    troy = sorted(m for m in by_module if m.startswith("troy"))
    groups = [
        "\n".join(f"from {m} import {', '.join(sorted(by_module[m]))}" for m in group)
        for group in (standard, troy)
        if group
    ]
    return "from __future__ import annotations\n\n" + "\n\n".join(groups) + "\n"


def _plugin_module(kind: str, name: str) -> str:
    contract = CONTRACTS[kind]
    base = contract.base
    class_name = _class_name(kind, name)
    methods: list[str] = []
    names: set[str] = {"Mapping", "Option"}
    for method in _abstract_methods(kind):
        function = getattr(base, method)
        signature, used = _signature(function)
        names |= used
        doc = inspect.getdoc(function) or ""
        if "\n" in doc:
            docstring = textwrap.indent(f'"""{doc}\n"""', " " * 8).rstrip() + "\n"
            docstring = docstring.replace("\n        \n", "\n\n")
        else:
            docstring = f'        """{doc}"""\n'
        if kind == "scheduler" and method == "place":
            body = SCHEDULER_PLACE.strip("\n")
        else:
            body = _message(class_name, method, function)
        methods.append(
            _def(method, signature) + "\n" + docstring + textwrap.indent(body, " " * 8) + "\n"
        )
    names.discard("None")
    schemes = (
        ""
        if kind in ("scheduler", "launcher")
        else f"    schemes: ClassVar[tuple[str, ...]] = ({_literal(name)},)\n"
    )
    what = (
        "places each unit on the least loaded pilot that can hold it"
        if kind == "scheduler"
        else f"a {kind} for troy; implement the methods below"
    )
    header = (
        f'"""The {kind} plugin {_literal(name)}: {what}."""\n\n'
        + _import_lines(kind, names)
        + "\n\n"
    )
    body = (
        f"class {class_name}({base.__name__}):\n"
        f'    """{what[0].upper() + what[1:]}."""\n\n'
        f"    #: Entry-point name (pyproject.toml: {registry.KINDS[kind]}).\n"
        f"    name: ClassVar[str] = {_literal(name)}\n"
        + schemes
        + "    #: The contract version this plugin was written for.\n"
        f"    contract_version: ClassVar[str] = {_literal(contract.version)}\n"
        "    #: The options it takes: name -> Option (troy.plugins.options), e.g.\n"
        '    #:     "retries": Option(3, "how often to retry a failed call", int),\n'
        "    option_specs: ClassVar[Mapping[str, Option]] = {}\n\n" + "\n".join(methods)
    )
    return header + body


SCHEDULER_PLACE = """
placement: dict[str, str | None] = {}
# Units on each pilot, counting those this call places: the load spreads.
load = {pilot.id: pilot.load for pilot in pilots}
for unit in units:
    fitting = [pilot for pilot in pilots if pilot.can_hold(unit.cores)]
    if not fitting:
        placement[unit.id] = None  # waiting_reason says why
        continue
    # min() keeps the first of equals: ties go by offer order, the same in every process.
    chosen = min(fitting, key=lambda pilot: load[pilot.id])
    placement[unit.id] = chosen.id
    load[chosen.id] += 1
return placement
"""

CONFTEST = '''"""Every test gets its own troy home, so nothing lands in ~/.troy."""

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def troy_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "troy-home"
    monkeypatch.setenv("TROY_HOME", str(home))
    monkeypatch.delenv("TROY_COORDINATION", raising=False)
    return home
'''


def _test_module(kind: str, name: str) -> str:
    module, suite, needed = SUITES[kind]
    class_name = _class_name(kind, name)
    if needed:
        fixtures = _fixtures_class(kind, name)
        return (
            f'"""troy\'s {kind} conformance suite, run on {class_name}."""\n\n'
            f"from {module} import {suite}\n\n"
            f"from troy_{name}.conformance import {fixtures}\n\n\n"
            f"class Test{class_name}({fixtures}, {suite}):\n"
            "    pass\n"
        )
    fixture = registry_name_fixture(kind)
    return (
        f'"""troy\'s {kind} conformance suite, run on {class_name}."""\n\n'
        "import pytest\n"
        f"from {module} import {suite}\n\n\n"
        f"class Test{class_name}({suite}):\n"
        "    @pytest.fixture\n"
        f"    def {fixture}(self) -> str:\n"
        f"        return {_literal(name)}\n"
    )


def registry_name_fixture(kind: str) -> str:
    """The suite fixture that names the plugin under test (scheduler_name, launcher_name)."""
    return f"{kind}_name"


#: For each kind with a fixtures class: its fixtures' source (``{name}`` filled in).
FIXTURES = {
    "backend": """
    @pytest.fixture
    def backend_rm(self) -> str:
        # A resource URL your backend serves; change it to one of your resources.
        return "{name}://localhost"

    @pytest.fixture
    def backend_pj_type(self) -> str | None:
        return "{name}"
""",
    "store": """
    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        # An empty location of your store; change it to one the tests may write.
        return f"{name}://{{tmp_path}}"
""",
    "coordination": """
    @pytest.fixture
    def coordination_url(self, tmp_path: Path) -> str:
        # A service (or location) your plugin reaches; change it to one the tests may write.
        return f"{name}://{{tmp_path}}"
""",
}


def _fixtures_module(kind: str, name: str) -> str:
    module, suite, _ = SUITES[kind]
    return (
        f'"""What troy\'s {kind} suite ({module}.{suite}) needs to reach the plugin.\n\n'
        f"Declared under the entry-point group ``{registry.CONFORMANCE_GROUP}``"
        " (pyproject.toml), so\n"
        f"``troy plugins --check {kind}.{name} --suite`` uses it too.\n"
        '"""\n\n'
        + ("from pathlib import Path\n\n" if kind != "backend" else "")
        + "import pytest\n\n\n"
        f"class {_fixtures_class(kind, name)}:" + FIXTURES[kind].format(name=name)
    )


def _readme(kind: str, name: str) -> str:
    class_name = _class_name(kind, name)
    module, suite, needed = SUITES[kind]
    if kind == "scheduler":
        todo = (
            f"`{class_name}.place` is a working strategy (each unit to the least loaded "
            "pilot that can hold it, ties by offer order), so the suite passes as generated; "
            "change it into your strategy and keep the suite passing."
        )
    else:
        todo = (
            f"Every method of `{class_name}` raises NotImplementedError saying what it must "
            "do (its docstring is the contract's): implement them until the suite passes."
        )
    todo += " Declare its options in `option_specs` (see the commented example)."
    paragraphs = [
        f"# troy-{name.replace('_', '-')}",
        f"The troy {kind} plugin `{name}` (`src/troy_{name}/{kind}.py`), registered under "
        f"the entry-point group `{registry.KINDS[kind]}`.",
        "## What to implement",
        todo,
    ]
    if needed:
        paragraphs.append(
            f"`src/troy_{name}/conformance.py` gives the suite {', '.join(needed)}: change "
            "the default to a location your plugin reaches and the tests may write."
        )
    paragraphs += [
        "## Tests",
        f"    pip install -e '.[test]'\n    pytest tests/\n    troy plugins --check {name}\n"
        f"    troy plugins --check {kind}.{name} --suite",
        f"`tests/test_conformance.py` runs troy's {kind} conformance suite "
        f"(`{module}.{suite}`) on the plugin; `troy plugins --check` says whether troy can "
        "load it, `--suite` runs the same suite through troy.",
    ]
    filled = [
        text if text.startswith(("#", "    ")) else textwrap.fill(text, 79) for text in paragraphs
    ]
    return "\n\n".join(filled) + "\n"
