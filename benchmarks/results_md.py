"""benchmarks/results.md is assembled from sections, each owned by one script.

A section lives between ``<!-- BEGIN name -->`` and ``<!-- END name -->``; updating one leaves
the others untouched, so each benchmark rewrites only its own table.
"""

from __future__ import annotations

import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results.md"
HEADER = """# lowbit benchmark results

Every number here was produced by the command written next to it, on the machine described in
each section (2 CPU cores, no GPU, unless it says otherwise). CIFAR-10 here is the JPEG-q75 copy
in ../shared/data, so accuracies differ from published numbers on the lossless originals.
"""


def update_section(name: str, markdown: str, path: Path = RESULTS) -> None:
    """Replace (or append) section ``name`` of results.md with ``markdown``."""
    text = path.read_text() if path.exists() else HEADER
    block = f"<!-- BEGIN {name} -->\n{markdown.rstrip()}\n<!-- END {name} -->"
    pattern = re.compile(rf"<!-- BEGIN {re.escape(name)} -->.*?<!-- END {re.escape(name)} -->", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


def section_rows(name: str, path: Path = RESULTS) -> dict:
    """{first cell: row} of the table rows already in section ``name`` (empty if none), so a
    script that re-renders from the runs it finds keeps the rows of runs measured earlier."""
    if not path.exists():
        return {}
    m = re.search(rf"<!-- BEGIN {re.escape(name)} -->(.*?)<!-- END {re.escape(name)} -->", path.read_text(), re.S)
    rows = {}
    for line in (m.group(1).splitlines() if m else []):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells and not set(cells[0]) <= set("-") and cells[0] != "recipe":
            rows[cells[0].split(" ")[0]] = line  # keyed by the name, without a trailing note
    return rows
