"""Every docstring example in lowbit.data runs."""

import doctest
import importlib
import pkgutil

import pytest

import lowbit.data

MODULES = sorted(m.name for m in pkgutil.iter_modules(lowbit.data.__path__))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"lowbit.data.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0
