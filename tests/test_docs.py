"""The user-facing docs stay a guide: every relative link (and its #anchor) resolves to a file in
the repository, the README stays short and speaks of the project only, the papers are cited by
name, and the README's quickstart is the code that examples/quickstart.py runs."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = [README, *sorted((REPO / "docs").glob("*.md")), REPO / "benchmarks" / "results.md"]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
# "seed" followed by a paper's file number, internal work rounds and issue numbers
PAPER_NUMBER = re.compile(r"\bseeds? ?0\d\d\b", re.I)
ROUNDS = re.compile(r"\b(stops? \d+|issues? #?\d+|work rounds?)\b", re.I)


def _prose(path: Path) -> str:
    """The Markdown text without fenced code blocks (whose `#` lines are not headings)."""
    return FENCE.sub("", path.read_text(encoding="utf-8"))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens.

    >>> slug("Pareto front: mixed precision vs uniform (resnet20-res8-mse, seeds 0,1,2)")
    'pareto-front-mixed-precision-vs-uniform-resnet20-res8-mse-seeds-012'
    """
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set:
    found, seen = set(), {}
    for line in _prose(path).splitlines():
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            base = slug(m.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
    return found


def tracked_files() -> set | None:
    """Paths git tracks (None outside a git checkout: then existence is checked alone)."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return {p for p in out.decode().split("\0") if p}


def relative_links(path: Path):
    for target in LINK.findall(_prose(path)):
        if not re.match(r"^[a-z][a-z0-9+.-]*:", target):  # skip http:, mailto: and the like
            yield target


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve_to_committed_files(doc):
    tracked = tracked_files()
    bad = []
    for target in relative_links(doc):
        file_part, _, anchor = target.partition("#")
        dest = (doc.parent / file_part).resolve() if file_part else doc
        rel = dest.relative_to(REPO).as_posix() if dest.is_relative_to(REPO) else None
        if rel is None or not dest.exists():
            bad.append(f"{target}: no such file")
        elif tracked is not None and dest.is_file() and rel not in tracked:
            bad.append(f"{target}: not committed")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(f"{target}: no heading with anchor #{anchor} in {rel}")
    assert not bad, f"{doc.relative_to(REPO)}: " + "; ".join(bad)


def test_readme_is_a_short_guide():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 220, "README.md is a user guide of about 200 lines: move details to docs/"
    assert not re.search(r"\bsessions?\b", text, re.I), "the README speaks of the project, not of sessions"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_docs_cite_papers_by_name_and_tell_no_work_rounds(doc):
    text = doc.read_text(encoding="utf-8")
    assert not PAPER_NUMBER.findall(text), "cite a paper by its authors/title, not by its file number"
    assert not ROUNDS.findall(text), "docs speak of the project, never of work rounds or issues"


def test_sources_cite_papers_by_name():
    roots = ["src", "tests", "recipes", "benchmarks", "examples", "scripts"]
    hits = [f"{p.relative_to(REPO)}:{n}" for root in roots for p in sorted((REPO / root).rglob("*"))
            if p.suffix in {".py", ".yaml", ".yml", ".md", ".sh"} and p.is_file()
            for n, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
            if PAPER_NUMBER.search(line)]
    assert not hits, "cite a paper by its authors/title, not as 'seed 00x': " + ", ".join(hits)


def test_readme_quickstart_is_the_tested_example():
    blocks = re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), re.S | re.M)
    example = (REPO / "examples" / "quickstart.py").read_text(encoding="utf-8")
    tested = re.search(r"# README quickstart begins\n(.*?)# README quickstart ends", example, re.S)
    assert tested, "examples/quickstart.py lost its README markers"
    assert tested.group(1) in blocks, "the README's quickstart and examples/quickstart.py differ"
