"""Reading troy's Markdown pages as tests need them: sections, tables, code blocks.

The pages are README.md and docs/*.md.  Two kinds of test read them: one holds
the lists of shipped plugins in the pages against the entry points troy registers
(tests/unit/test_docs.py), the other runs their ```python blocks
(tests/integration/test_doc_examples.py).

A ```python block is a program that runs as it is written.  An HTML comment on
the line right above its fence says otherwise (it does not show on the page):

- ``<!-- illustrative: REASON -->``: the block is not run.  REASON (required) says
  why: it needs a remote resource, it is a signature or a fragment, ...
- ``<!-- requires: MODULE -->``: the block runs only where MODULE can be imported,
  for the example plugin packages (``troy_demo``, ``troy_lpt``), which
  scripts/test.sh installs.  Elsewhere its test skips, or fails under
  ``TROY_REQUIRE_SERVICES=1``.
- ``<!-- arguments: output of the block above -->``: the block runs right after the
  python block above it, in the same directory and troy home, with the words that
  block printed as its command-line arguments (``python reconnect.py $(cat ids)``).

A ```console block that follows a python block that runs (nothing but blank lines
between them) shows its run: what follows its last ``$ ... python ...`` line must
be what the block printed, the same lines in any order, with ids (``pilot-…``,
``wus-…``, ...) and paths under /tmp standing for any.  Where what it prints
depends on timing, ``<!-- varies: REASON -->`` right above the console fence says
so, and the output is not compared.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The pages whose ```python blocks run and whose plugin lists are checked.
PAGES = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))

FENCE = re.compile(r"^(```+|~~~+)\s*([^`\s]*)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")
MARKER = re.compile(r"^<!--\s*([a-z-]+)\s*:\s*(.*?)\s*-->\s*$")
MARKERS = ("illustrative", "requires", "arguments")
#: The one marker of a console block.
OUTPUT_VARIES = "varies"
ARGUMENTS_FROM_ABOVE = "output of the block above"


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: Path
    line: int  # of the opening fence, counted from 1
    language: str
    text: str
    #: The marker comment right above the fence: (name, value), or None.
    marker: tuple[str, str] | None

    @property
    def where(self) -> str:
        return f"{relative(self.page)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """Every fenced code block of the page, in order."""
    lines = page.read_text().splitlines()
    found = []
    number = 0
    while number < len(lines):
        opening = FENCE.match(lines[number])
        if not opening:
            number += 1
            continue
        fence = opening.group(1)
        end = number + 1
        while end < len(lines) and not lines[end].startswith(fence):
            end += 1
        above = MARKER.match(lines[number - 1]) if number else None
        found.append(
            Block(
                page,
                number + 1,
                opening.group(2),
                "\n".join(lines[number + 1 : end]) + "\n",
                (above.group(1), above.group(2)) if above else None,
            )
        )
        number = end + 1
    return found


def prose(page: Path) -> list[tuple[int, str]]:
    """The page's lines outside fenced code blocks, as (line number, text)."""
    inside: str | None = None
    kept = []
    for number, line in enumerate(page.read_text().splitlines(), 1):
        opening = FENCE.match(line)
        if inside is None and opening:
            inside = opening.group(1)
        elif inside is not None and line.startswith(inside):
            inside = None
        elif inside is None:
            kept.append((number, line))
    return kept


def span(page: Path, heading: str) -> range:
    """The page's line numbers under the heading whose text is ``heading``, up to the
    next heading (outside code blocks) of the same or a higher level."""
    lines = prose(page)
    for index, (first, line) in enumerate(lines):
        match = HEADING.match(line)
        if match and match.group(2) == heading:
            level = len(match.group(1))
            last = len(page.read_text().splitlines()) + 1
            for number, text in lines[index + 1 :]:
                later = HEADING.match(text)
                if later and len(later.group(1)) <= level:
                    last = number
                    break
            return range(first + 1, last)
    raise AssertionError(f"{relative(page)} has no heading {heading!r}")


def section(page: Path, heading: str) -> list[tuple[int, str]]:
    """The lines outside code blocks under a heading (see ``span``)."""
    lines = span(page, heading)
    return [(number, text) for number, text in prose(page) if number in lines]


def section_blocks(page: Path, heading: str) -> list[Block]:
    """The code blocks under a heading (see ``span``)."""
    lines = span(page, heading)
    return [block for block in blocks(page) if block.line in lines]


def tables(lines: list[tuple[int, str]]) -> list[list[list[str]]]:
    """The Markdown tables among the lines: rows of cells, header first, without the
    ``|---|`` rule."""
    found: list[list[list[str]]] = []
    current: list[list[str]] = []
    for _, line in [*lines, (0, "")]:
        if line.startswith("|"):
            cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if not all(re.fullmatch(r":?-+:?", cell) for cell in cells):
                current.append(cells)
        elif current:
            found.append(current)
            current = []
    return found


def names(cell: str) -> list[str]:
    """The plugin names in a table cell: ```local`, `saga``` or ``local, saga``."""
    return [name.strip().strip("`") for name in cell.split(",") if name.strip()]


def shown_output(block: Block) -> tuple[Block, list[str]] | None:
    """The console block right after ``block`` and the output it shows for it, if any."""
    page_blocks = blocks(block.page)
    index = page_blocks.index(block)
    if index + 1 == len(page_blocks) or page_blocks[index + 1].language != "console":
        return None
    console = page_blocks[index + 1]
    lines = block.page.read_text().splitlines()
    closing = block.line + block.text.count("\n")  # 0-based index of the closing fence
    if any(
        line.strip() and not MARKER.match(line) for line in lines[closing + 1 : console.line - 1]
    ):
        return None
    shown = console.text.splitlines()
    runs = [n for n, line in enumerate(shown) if line.startswith("$ ") and "python" in line]
    if not runs:
        return None
    output = []
    for line in shown[runs[-1] + 1 :]:
        if line.startswith("$ "):
            break
        output.append(line)
    return console, output


IDS = re.compile(r"\b(pilot|wus|pjs|pds|pd|du)-[0-9a-f]{12}\b")
TEMPORARY = re.compile(r"(file://)?/tmp/\S*")


def normalized(lines: list[str]) -> list[str]:
    """Output lines as the console blocks are compared: ids and temporary paths made
    alike, order left out."""
    return sorted(TEMPORARY.sub("/tmp/…", IDS.sub(r"\1-…", line)).rstrip() for line in lines)
