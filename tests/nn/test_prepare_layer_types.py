"""Overrides by layer type (``@conv``, ``@linear`` / ``@dense``) and on biases: per-type nested
thresholds (the thesis's lambda for dense and for convolutional layers) reach the right layers."""

import pytest
import torch
from torch import nn

from lowbit import QuantSpec, QuantizerConfig, prepare
from lowbit.errors import ConfigError
from lowbit.fold import fold_batchnorm
from lowbit.models import create_model
from lowbit.nn.spec import LayerOverride
from lowbit.train.recipe import recipe_from_dict

NESTED = QuantizerConfig(kind="nested", bits=None, granularity="row", threshold=1e-3)


def per_type_spec(conv=1e-4, dense=1e-2, dense_alias="@linear"):
    return QuantSpec(weight=NESTED, act=None, bias=NESTED, overrides=(
        LayerOverride("@conv", weight={"threshold": conv}, bias={"threshold": conv}),
        LayerOverride(dense_alias, weight={"threshold": dense}, bias={"threshold": dense})))


@pytest.mark.parametrize("alias", ["@linear", "@dense"])
def test_per_type_thresholds_reach_weights_and_biases_of_each_type(alias):
    cnn = create_model("cnn", widths=[4, 4, 4], hidden=8).eval()
    fold_batchnorm(cnn, torch.zeros(1, 3, 32, 32), inplace=True)  # convs get the biases to quantize
    model = prepare(cnn, per_type_spec(dense_alias=alias))
    seen = {"conv": 0, "linear": 0}
    for name, mod in model.named_modules():
        if isinstance(mod, (nn.Conv2d, nn.Linear)):
            want = 1e-4 if isinstance(mod, nn.Conv2d) else 1e-2
            assert mod.weight_quantizer.config.threshold == want, name
            assert mod.bias_quantizer.config.threshold == want, name
            seen["conv" if isinstance(mod, nn.Conv2d) else "linear"] += 1
    assert seen == {"conv": 6, "linear": 2}


def test_a_name_override_after_a_type_override_wins():
    spec = QuantSpec(weight=NESTED, act=None, overrides=(
        LayerOverride("@linear", weight={"threshold": 1e-2}),
        LayerOverride("fc2", weight={"threshold": 5e-2})))
    model = prepare(create_model("mlp", hidden=8), spec)
    assert model.fc1.weight_quantizer.config.threshold == 1e-2
    assert model.fc2.weight_quantizer.config.threshold == 5e-2


def test_a_type_the_model_lacks_is_an_error():
    with pytest.raises(ConfigError, match="pattern '@conv' matches no layer"):
        prepare(create_model("mlp", hidden=8), per_type_spec())


def test_recipe_threshold_per_type_and_a_bad_one():
    data = {"model": {"name": "mlp"}, "data": {"dataset": "mnist"},
            "quant": {"weight": {"kind": "nested", "bits": None}, "act": None,
                      "overrides": [{"pattern": "@dense", "weight": {"threshold": 1e-2}}]}}
    r = recipe_from_dict(data)
    assert r.quant.overrides[0].weight == {"threshold": 1e-2}
    with pytest.raises(ConfigError, match="unknown bias override field 'treshold'"):
        recipe_from_dict(data, ["quant.overrides.0.bias={treshold: 1}"])
    model = create_model("mlp", hidden=8)
    bad = QuantSpec(weight=NESTED, act=None, overrides=(LayerOverride("@linear", weight={"threshold": 0}),))
    with pytest.raises(ConfigError, match="nested threshold \\(lambda\\) must be > 0, got 0"):
        prepare(model, bad)
