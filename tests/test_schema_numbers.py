"""Numbers in exponent form without a dot (``1e-5``), which YAML 1.1 reads as strings, are numbers
in recipes, ``--set`` and sweep grids alike."""

import pytest

from lowbit.errors import ConfigError
from lowbit.sweep import parse_param
from lowbit.train.recipe import recipe_from_dict

BASE = {"model": {"name": "mlp"}, "data": {"dataset": "mnist"},
        "quant": {"weight": {"kind": "nested", "bits": None}, "act": None}}


def test_exponent_without_a_dot_is_a_number():
    r = recipe_from_dict(BASE, ["optim.quant_lr=1e-6", "quant.weight.threshold=3E-5"])
    assert r.optim.quant_lr == 1e-6 and r.quant.weight.threshold == 3e-5
    grid = parse_param("quant.weight.threshold=1e-5,1e-4")
    r = recipe_from_dict(BASE, grid.sets(grid.values[0]))
    assert r.quant.weight.threshold == 1e-5


@pytest.mark.parametrize("bad", ["fast", "1e", "e-5", "inf"])
def test_other_strings_are_still_errors(bad):
    with pytest.raises(ConfigError, match="optim.lr: expected a number"):
        recipe_from_dict(BASE, [f"optim.lr={bad}"])
