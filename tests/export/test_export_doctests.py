"""Every docstring example of lowbit.export runs."""

import doctest
import importlib
import pkgutil

import pytest

import lowbit.export

MODULES = ["lowbit.export"] + [f"lowbit.export.{m.name}" for m in pkgutil.iter_modules(lowbit.export.__path__)]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
