"""Every docstring example in the core library runs (ops, quantizers, nn, calibrate, evaluate,
fold, accounting, errors and the package docstring)."""

import doctest
import importlib
import pkgutil

import pytest

# import_module, not attribute access: ``lowbit.quantizers`` is also a function exported by
# ``lowbit/__init__.py`` (from lowbit.nn), which shadows the subpackage as an attribute
PACKAGES = [importlib.import_module(f"lowbit.{name}") for name in ("ops", "quantizers", "nn")]
MODULES = sorted(
    [p.__name__ for p in PACKAGES]
    + [f"{p.__name__}.{m.name}" for p in PACKAGES for m in pkgutil.iter_modules(p.__path__)]
    + ["lowbit", "lowbit.calibrate", "lowbit.evaluate", "lowbit.fold", "lowbit.accounting", "lowbit.errors",
       "lowbit.schema", "lowbit.files", "lowbit.plotting", "lowbit.methods.select",
       "lowbit.train.checkpoint"])


def test_the_core_modules_are_all_collected():
    assert {"lowbit.ops.kernels", "lowbit.quantizers.learned_range", "lowbit.nn.convert"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
