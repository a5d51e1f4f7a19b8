"""docs/plugins.md's option tables are what the built-ins declare, so they cannot go stale."""

from __future__ import annotations

import re
from pathlib import Path

from troy.cli.describe import markdown_options
from troy.plugins import registry

DOCS = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"
BLOCK = re.compile(r"<!-- options (\w+)\.(\w+) -->\n(.*?)\n<!-- end options -->", re.DOTALL)


def documented() -> dict[tuple[str, str], str]:
    return {(kind, name): body for kind, name, body in BLOCK.findall(DOCS.read_text())}


def built_ins() -> list[tuple[str, str]]:
    return [
        (kind, info.name)
        for kind in registry.KINDS
        for info in registry.installed(kind)
        if info.distribution == "troy"
    ]


def test_every_built_in_plugin_has_an_option_table_and_no_other_plugin_has() -> None:
    assert sorted(documented()) == sorted(built_ins())


def test_each_option_table_is_what_the_plugin_declares() -> None:
    for (kind, name), body in documented().items():
        expected = "\n".join(markdown_options(kind, registry.load(kind, name)))
        assert body == expected, (
            f"docs/plugins.md: the options of {kind} '{name}' differ from its option_specs;"
            f" put this between its markers:\n{expected}"
        )


def test_secret_options_are_marked_secret_in_tables_and_descriptions() -> None:
    from troy.cli.describe import describe

    table = "\n".join(markdown_options("store", registry.load("store", "s3")))
    assert "| `secret_access_key` | Pilot-Data description (secret) |" in table
    assert "| `region` | Pilot-Data description | text |" in table
    text = "\n".join(describe("coordination", "zmq"))
    line = next(row for row in text.splitlines() if row.strip().startswith("curve_secretkey"))
    assert line.endswith("secret: never shown or recorded)")
