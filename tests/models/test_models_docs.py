"""Doctests of lowbit.models and the docs/models.md table."""

import doctest
import importlib
import pathlib
import re

import pytest

from lowbit.models import list_models

MODULES = ["lowbit.models", "lowbit.models.layers", "lowbit.models.factory",
           "lowbit.models._checks", "lowbit.models.mlp", "lowbit.models.cnn",
           "lowbit.models.resnet", "lowbit.models.mobilenet", "lowbit.models.efficientnet"]

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "models.md"


@pytest.mark.parametrize("module", MODULES)
def test_doctests(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_docs_table_lists_every_model_with_its_count():
    text = DOC.read_text()
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(\w+)` \| ([\d,]+) \|", text, re.M)}
    for entry in list_models():
        assert rows.get(entry["name"]) == f"{entry['params']:,}", entry["name"]
