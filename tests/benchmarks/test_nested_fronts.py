"""benchmarks/nested_fronts.py: the recorded studies re-render to the sections of results.md,
and every study's arguments load into its recipe (a typo would only show an hour into a run)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from benchmarks import nested_fronts, nested_render
from benchmarks.nested_studies import STUDIES
from lowbit.sweep import parse_param
from lowbit.train.recipe import load_recipe

REPO = Path(__file__).resolve().parents[2]
SECTIONS = ("nested-fronts", "nested-study", "nested-terms", "nested-guidance")


def _section(text: str, name: str) -> str:
    return re.search(rf"<!-- BEGIN {name} -->(.*?)<!-- END {name} -->", text, re.S).group(1)


def test_recorded_studies_rerender_to_the_sections_of_results_md(results_copy):
    results = REPO / "benchmarks" / "results.md"
    copy = results_copy(nested_render)
    nested_render.render(nested_fronts.load, nested_fronts.command)
    for name in SECTIONS:
        assert _section(copy.read_text(), name) == _section(results.read_text(), name), name


def _sets(args: list) -> list:
    """The ``--set`` overrides of one trial of a study: each --param at its first value."""
    out = []
    for flag, value in zip(args[::2], args[1::2]):
        if flag == "--set":
            out.append(value)
        else:
            param = parse_param(value)
            out += param.sets(param.values[0])
    return out


@pytest.mark.parametrize("dataset,study", [(d, s) for d in STUDIES for s in STUDIES[d]])
def test_every_study_loads_into_its_recipe(dataset, study):
    recipe, *args = STUDIES[dataset][study]
    assert len(args) % 2 == 0 and set(args[::2]) <= {"--set", "--param"}
    load_recipe(recipe, _sets(args))
