"""Fixtures for the benchmark drivers' tests."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from benchmarks.results_md import update_section

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results.md"


@pytest.fixture
def results_copy(tmp_path, monkeypatch):
    """Point a render module at a copy of benchmarks/results.md, with no plots written.

    ``copy = results_copy(pareto)`` then ``pareto.render(...)`` rewrites ``copy`` only; compare
    its sections with ``RESULTS``'s.
    """
    def redirect(module) -> Path:
        copy = tmp_path / "results.md"
        copy.write_text(RESULTS.read_text())
        monkeypatch.setattr(module, "update_section", functools.partial(update_section, path=copy))
        monkeypatch.setattr(module, "save_pareto_plot", lambda *a, **k: None)
        return copy

    return redirect
